-- 联网 (issue 14), what the first link left out: video clips on request or hold, vehicle document photos, and
-- resolving a broken chain.

-- The registry downlink and the site's vehicle stream page by (updated_at, plate).
CREATE INDEX IF NOT EXISTS vehicles_updated_plate_idx ON vehicles (updated_at, plate);

-- ---- document photos from a site ---------------------------------------------------------------------
-- A photo registered at a site is stored at the platform under a key the platform makes (never the site's);
-- (origin_site, origin_document_id) makes a resend an acknowledgement, not a second copy.
ALTER TABLE vehicle_documents ADD COLUMN origin_site bigint REFERENCES api_tokens (id);
ALTER TABLE vehicle_documents ADD COLUMN origin_document_id bigint;
CREATE UNIQUE INDEX vehicle_documents_origin_idx ON vehicle_documents (origin_site, origin_document_id)
    WHERE origin_site IS NOT NULL;

-- ---- video clips --------------------------------------------------------------------------------------
-- The platform's copy of a site's segment, once uploaded and checked against the index's sha256; gone_* when
-- the site said the segment no longer exists there (retention took it, the file was lost).
ALTER TABLE link_video_index ADD COLUMN storage_key text UNIQUE CHECK (storage_key LIKE 'video/%');
ALTER TABLE link_video_index ADD COLUMN stored_at timestamptz;
ALTER TABLE link_video_index ADD COLUMN gone_at timestamptz;
ALTER TABLE link_video_index ADD COLUMN gone_reason text;
ALTER TABLE link_video_index ADD COLUMN hold_reason text;
ALTER TABLE link_video_index ADD COLUMN held_by text;
CREATE INDEX link_video_index_gate_idx ON link_video_index (site_id, gate_id, started_at);

-- A period of a gate's video the platform wants from the site that runs the gate: asked for by the bureau
-- (source 'request') or made when the site put a segment under legal hold (source 'site_hold'). The site
-- learns of it on the downlink, uploads the segments, and reports; the state is what the requester sees.
CREATE TABLE link_video_requests (
    id bigserial PRIMARY KEY,
    site_id bigint NOT NULL REFERENCES api_tokens (id),
    gate_id text NOT NULL,
    from_at timestamptz NOT NULL,
    to_at timestamptz NOT NULL,
    source text NOT NULL CHECK (source IN ('request', 'site_hold')),
    reason text NOT NULL,
    case_ref text,
    passage_id uuid,
    requested_by text NOT NULL,
    requested_role text NOT NULL,
    token_id bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'uploading', 'done', 'failed', 'gone')),
    state_reason text,
    -- What the site reported per segment: [{"segment_id", "state": "stored"|"gone"|"failed", "reason"}].
    segments jsonb,
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CHECK (to_at > from_at)
);
CREATE INDEX link_video_requests_open_idx ON link_video_requests (site_id, id) WHERE state IN ('pending', 'uploading');
CREATE INDEX link_video_requests_gate_idx ON link_video_requests (gate_id, created_at DESC);
CREATE INDEX link_video_requests_updated_idx ON link_video_requests (updated_at);
CREATE UNIQUE INDEX link_video_requests_hold_idx ON link_video_requests (site_id, gate_id, from_at, to_at)
    WHERE source = 'site_hold';

-- ---- resolving a broken chain -------------------------------------------------------------------------
-- An epoch is a stretch of one gate's chain. A break resolved by accepting the site's new history starts a new
-- epoch at start_seq, linked to anchor_prev_hash (the site's own prev_hash there) instead of the row before;
-- the rows of the old epoch stay as they are, and previous_end_* pins where that epoch ended, so the verifier
-- checks both stretches and that nothing of the old one went missing. Append-only.
ALTER TABLE passages ADD COLUMN chain_epoch integer NOT NULL DEFAULT 0;
CREATE TABLE ledger_epochs (
    gate_id text NOT NULL,
    epoch integer NOT NULL CHECK (epoch > 0),
    start_seq bigint NOT NULL CHECK (start_seq > 0),
    anchor_prev_hash bytea NOT NULL,
    previous_end_seq bigint NOT NULL,
    previous_end_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gate_id, epoch)
);
CREATE TRIGGER ledger_epochs_append_only BEFORE UPDATE OR DELETE ON ledger_epochs
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Every resolved break, with the break as it was flagged and who decided what, why. Append-only: the
-- bureau never loses the record that a site's history once failed to match.
CREATE TABLE link_chain_resolutions (
    id bigserial PRIMARY KEY,
    site_id bigint NOT NULL REFERENCES api_tokens (id),
    gate_id text NOT NULL,
    epoch integer NOT NULL,
    first_bad_seq bigint NOT NULL,
    problem text,
    broken_at timestamptz,
    old_head_seq bigint NOT NULL,
    old_head_hash bytea NOT NULL,
    accepted_from_seq bigint NOT NULL,
    new_head_seq bigint NOT NULL,
    new_head_hash bytea NOT NULL,
    merged integer NOT NULL,
    kept_apart integer NOT NULL,
    reason text NOT NULL,
    resolved_by text NOT NULL,
    resolved_role text NOT NULL,
    token_id bigint,
    resolved_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX link_chain_resolutions_gate_idx ON link_chain_resolutions (gate_id, id);
CREATE TRIGGER link_chain_resolutions_append_only BEFORE UPDATE OR DELETE ON link_chain_resolutions
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

ALTER TABLE link_gate_heads ADD COLUMN epoch integer NOT NULL DEFAULT 0;
-- What became of a quarantined row when its break was resolved: merged into passages (the new epoch), or kept
-- apart because the platform already holds that passage (a rewritten copy of a row it received before).
ALTER TABLE link_quarantine ADD COLUMN resolution_id bigint REFERENCES link_chain_resolutions (id);
ALTER TABLE link_quarantine ADD COLUMN outcome text CHECK (outcome IN ('merged', 'kept_apart', 'superseded'));
