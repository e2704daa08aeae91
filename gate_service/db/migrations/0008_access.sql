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

-- Which enterprise owned each gate since when. A video segment belongs to the enterprise that owned its gate
-- when it was recorded (as a passage does, by its copied enterprise_id): moving a gate to another enterprise
-- must not hand over its past video.
CREATE TABLE gate_enterprise_history (
    gate_id text NOT NULL REFERENCES gates (id),
    since timestamptz NOT NULL,
    enterprise_id text REFERENCES enterprises (id),
    PRIMARY KEY (gate_id, since)
);
-- What was there before this table: owned "since ever" by its present enterprise (the segments already
-- recorded are given their owner below from the ledger, which copied it at each passage).
INSERT INTO gate_enterprise_history (gate_id, since, enterprise_id)
SELECT id, '-infinity', enterprise_id FROM gates;

CREATE FUNCTION gate_enterprise_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.enterprise_id IS DISTINCT FROM OLD.enterprise_id THEN
        INSERT INTO gate_enterprise_history (gate_id, since, enterprise_id)
        VALUES (NEW.id, CASE WHEN TG_OP = 'INSERT' THEN '-infinity'::timestamptz ELSE clock_timestamp() END,
                NEW.enterprise_id)
        ON CONFLICT (gate_id, since) DO UPDATE SET enterprise_id = EXCLUDED.enterprise_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER gates_enterprise_history AFTER INSERT OR UPDATE OF enterprise_id ON gates
    FOR EACH ROW EXECUTE FUNCTION gate_enterprise_track();

CREATE FUNCTION gate_enterprise_at(gate text, at timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT (coalesce(
        (SELECT ARRAY[h.enterprise_id] FROM gate_enterprise_history h
          WHERE h.gate_id = gate AND h.since <= at ORDER BY h.since DESC LIMIT 1),
        ARRAY[(SELECT g.enterprise_id FROM gates g WHERE g.id = gate)]))[1]
$$;

ALTER TABLE video_segments ADD COLUMN enterprise_id text;
-- Segments recorded before: the owner the ledger copied at the passage nearest in time at that gate (within
-- half a day), else the gate's present owner. The array tells "a passage of no enterprise" from "no passage".
UPDATE video_segments s SET enterprise_id = (coalesce(
    (SELECT ARRAY[p.enterprise_id] FROM passages p
      WHERE p.gate_id = s.gate_id AND p.at BETWEEN s.started_at - interval '12 hours'
                                               AND s.started_at + interval '12 hours'
      ORDER BY abs(extract(epoch FROM p.at - s.started_at)) LIMIT 1),
    ARRAY[(SELECT g.enterprise_id FROM gates g WHERE g.id = s.gate_id)]))[1];
CREATE INDEX video_segments_enterprise_started_idx ON video_segments (enterprise_id, started_at);

-- Set by the database at insert, from the owner at the segment's start (a segment recorded during an outage is
-- indexed later, maybe after a move), and never changed afterwards.
CREATE FUNCTION video_segment_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.enterprise_id := gate_enterprise_at(NEW.gate_id, NEW.started_at);
    ELSIF NEW.enterprise_id IS DISTINCT FROM OLD.enterprise_id THEN
        RAISE EXCEPTION 'video segment % enterprise cannot change', OLD.id USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER video_segments_owner BEFORE INSERT OR UPDATE ON video_segments
    FOR EACH ROW EXECUTE FUNCTION video_segment_owner();

-- A revocation is announced at commit, whoever makes it (any replica, `gate-service token revoke`, plain SQL):
-- every replica then forgets the token in its outage cache and closes the WebSockets it opened.
CREATE FUNCTION api_token_revoked_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('token_revoked', NEW.id::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER api_tokens_revoked AFTER UPDATE OF revoked_at ON api_tokens
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION api_token_revoked_notify();

-- Overrides: a guard's override cites one passage, once. Derived from the ledger (rows go when ledger
-- retention drops the override's month). Written by the database itself at each ledger append
-- of an override (whatever path appends it), so "once" holds under concurrent requests: the second insert
-- waits on the unique index and fails, and its ledger row is rolled back with it.
-- plate_corrected: the guard entered another plate than the cited read - the label `crops export` trusts.
-- manual_release (人工放行): the override let through a vehicle that the rules deny, or a blacklisted one,
-- judged for the plate that passed at the override's moment (the reasons the ledger row keeps).
CREATE TABLE passage_overrides (
    override_id uuid PRIMARY KEY,
    override_at timestamptz NOT NULL,
    cited_id uuid NOT NULL,
    cited_at timestamptz NOT NULL,
    gate_id text NOT NULL,
    enterprise_id text,
    plate text NOT NULL,
    cited_plate text NOT NULL,
    cited_decision text NOT NULL,
    plate_corrected boolean NOT NULL,
    manual_release boolean NOT NULL,
    blacklisted boolean NOT NULL,
    denied_by text[] NOT NULL DEFAULT '{}',
    override_reason text,
    actor text,
    token_id bigint,
    -- A spooled override replayed after an outage whose passage was meanwhile overridden online: its answer was
    -- already given, so it is kept (never a lost row) and marked, instead of blocking the spool.
    late_replay boolean NOT NULL DEFAULT false,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX passage_overrides_once ON passage_overrides (cited_id) WHERE NOT late_replay;
CREATE INDEX passage_overrides_release_idx ON passage_overrides (override_at) WHERE manual_release;
CREATE INDEX passage_overrides_cited_at_idx ON passage_overrides (cited_at);
CREATE INDEX passage_overrides_override_at_idx ON passage_overrides (override_at);

CREATE FUNCTION passage_override_record() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cited record;
    denied text[];
    late boolean;
BEGIN
    SELECT id, at, plate, decision INTO cited FROM passages
     WHERE id = NEW.overrides AND gate_id = NEW.gate_id ORDER BY at LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'override of % cites no passage of gate %', NEW.id, NEW.gate_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'passage_overrides_cited';
    END IF;
    SELECT coalesce(array_agg(DISTINCT r->>'rule'), '{}') INTO denied
      FROM jsonb_array_elements(NEW.reasons) r WHERE r->>'effect' = 'deny';
    late := NEW.recorded_at < statement_timestamp() - interval '30 seconds';
    INSERT INTO passage_overrides (override_id, override_at, cited_id, cited_at, gate_id, enterprise_id, plate,
                                   cited_plate, cited_decision, plate_corrected, manual_release, blacklisted,
                                   denied_by, override_reason, actor, token_id)
    VALUES (NEW.id, NEW.at, cited.id, cited.at, NEW.gate_id, NEW.enterprise_id, NEW.plate, cited.plate,
            cited.decision, NEW.plate <> cited.plate, NEW.blacklisted OR cardinality(denied) > 0, NEW.blacklisted,
            denied, NEW.override_reason, NEW.actor, NEW.token_id)
    ON CONFLICT (cited_id) WHERE NOT late_replay DO NOTHING;
    IF NOT FOUND THEN
        IF NOT late THEN
            RAISE EXCEPTION 'passage % is already overridden', cited.id
                USING ERRCODE = 'unique_violation', CONSTRAINT = 'passage_overrides_once';
        END IF;
        INSERT INTO passage_overrides (override_id, override_at, cited_id, cited_at, gate_id, enterprise_id, plate,
                                       cited_plate, cited_decision, plate_corrected, manual_release, blacklisted,
                                       denied_by, override_reason, actor, token_id, late_replay)
        VALUES (NEW.id, NEW.at, cited.id, cited.at, NEW.gate_id, NEW.enterprise_id, NEW.plate, cited.plate,
                cited.decision, NEW.plate <> cited.plate, NEW.blacklisted OR cardinality(denied) > 0,
                NEW.blacklisted, denied, NEW.override_reason, NEW.actor, NEW.token_id, true);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER passages_override_record AFTER INSERT ON passages
    FOR EACH ROW WHEN (NEW.overrides IS NOT NULL) EXECUTE FUNCTION passage_override_record();

-- Overrides already in the ledger, oldest first (a second citation of a passage is kept, as a late replay).
DO $$
DECLARE
    o record;
    cited record;
    denied text[];
BEGIN
    FOR o IN SELECT * FROM passages WHERE overrides IS NOT NULL ORDER BY at, gate_seq LOOP
        SELECT id, at, plate, decision INTO cited FROM passages
         WHERE id = o.overrides AND gate_id = o.gate_id ORDER BY at LIMIT 1;
        CONTINUE WHEN NOT FOUND;
        SELECT coalesce(array_agg(DISTINCT r->>'rule'), '{}') INTO denied
          FROM jsonb_array_elements(o.reasons) r WHERE r->>'effect' = 'deny';
        INSERT INTO passage_overrides (override_id, override_at, cited_id, cited_at, gate_id, enterprise_id, plate,
                                       cited_plate, cited_decision, plate_corrected, manual_release, blacklisted,
                                       denied_by, override_reason, actor, token_id, late_replay, recorded_at)
        VALUES (o.id, o.at, cited.id, cited.at, o.gate_id, o.enterprise_id, o.plate, cited.plate, cited.decision,
                o.plate <> cited.plate, o.blacklisted OR cardinality(denied) > 0, o.blacklisted, denied,
                o.override_reason, o.actor, o.token_id,
                EXISTS (SELECT 1 FROM passage_overrides x WHERE x.cited_id = cited.id), o.recorded_at);
    END LOOP;
END;
$$;
