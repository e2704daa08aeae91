-- Access hardening (issue 15, items 5, 6, 8, 9).

-- Photos of a vehicle's 随车清单/行驶证. The key is made by the server at upload and kept here, never in the
-- client-writable vehicles.extra: a key a client could write let a kiosk read any blob (another gate's video).
CREATE TABLE vehicle_documents (
    id bigserial PRIMARY KEY,
    plate text NOT NULL REFERENCES vehicles (plate) ON UPDATE CASCADE,
    storage_key text NOT NULL UNIQUE CHECK (storage_key LIKE 'documents/%'),
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png')),
    bytes bigint,
    sha256 text,
    uploaded_at timestamptz NOT NULL DEFAULT now(),
    uploaded_by text NOT NULL,
    token_id bigint REFERENCES api_tokens (id)
);
CREATE INDEX vehicle_documents_plate_idx ON vehicle_documents (plate, uploaded_at DESC, id DESC);

-- Documents uploaded before: the audit log, written by the server at each upload, is the only trustworthy
-- record of their keys (extra.document_ref may have been rewritten by any registry write since).
INSERT INTO vehicle_documents (plate, storage_key, content_type, bytes, uploaded_at, uploaded_by, token_id)
SELECT DISTINCT ON (a.detail->>'ref') a.target, a.detail->>'ref',
       CASE WHEN a.detail->>'ref' LIKE '%.png' THEN 'image/png' ELSE 'image/jpeg' END,
       (a.detail->>'bytes')::bigint, a.at, a.actor, a.token_id
  FROM audit_log a JOIN vehicles v ON v.plate = a.target
 WHERE a.action = 'vehicle.document' AND a.detail->>'ref' LIKE 'documents/%'
 ORDER BY a.detail->>'ref', a.at;

-- The old copies in extra mean nothing any more; left there they would look authoritative.
UPDATE vehicles SET extra = extra - 'document_ref' - 'document_sha256' - 'document_bytes'
                                  - 'document_uploaded_at' - 'document_uploaded_by'
 WHERE extra ?| ARRAY['document_ref', 'document_sha256', 'document_bytes', 'document_uploaded_at',
                      'document_uploaded_by'];
