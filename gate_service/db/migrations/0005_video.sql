-- Video segments (kept >= 6 months, 三(一)3), what ledger retention dropped, and the scheduled jobs' runs.
--
-- A segment's row exists from the moment the segment opens, so that a passage decided while it records can
-- reference it; closing it fills end, size and sha256. Rows are never deleted: retention marks deleted_at
-- (and removes the file), so a ledger row that points at an expired segment still finds out why it is gone.

CREATE TABLE video_segments (
    id bigserial PRIMARY KEY,
    gate_id text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    storage_key text NOT NULL UNIQUE,
    status text NOT NULL DEFAULT 'recording' CHECK (status IN ('recording', 'closed', 'incomplete')),
    fps real NOT NULL CHECK (fps > 0),
    width integer NOT NULL CHECK (width > 0),
    height integer NOT NULL CHECK (height > 0),
    frames integer CHECK (frames IS NULL OR frames >= 0),
    bytes bigint CHECK (bytes IS NULL OR bytes >= 0),
    sha256 text CHECK (sha256 IS NULL OR sha256 ~ '^[0-9a-f]{64}$'),
    -- Why a segment is incomplete (service stopped while recording, encoder failure).
    note text,
    recorder text,
    legal_hold boolean NOT NULL DEFAULT false,
    hold_reason text,
    hold_case_ref text,
    held_by text,
    held_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CHECK ((status = 'recording') = (ended_at IS NULL)),
    CHECK (ended_at IS NULL OR ended_at >= started_at),
    CHECK (NOT legal_hold OR hold_reason IS NOT NULL)
);
CREATE INDEX video_segments_gate_started_idx ON video_segments (gate_id, started_at);
CREATE INDEX video_segments_live_ended_idx ON video_segments (ended_at) WHERE deleted_at IS NULL;

-- Evidence guard: what identifies a segment and its content never changes, rows are never deleted, and a
-- segment under legal hold cannot be marked deleted (whatever code tries it).
CREATE FUNCTION video_segment_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'video_segments rows are never deleted' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.gate_id IS DISTINCT FROM OLD.gate_id OR NEW.started_at IS DISTINCT FROM OLD.started_at
       OR NEW.storage_key IS DISTINCT FROM OLD.storage_key
       OR (OLD.sha256 IS NOT NULL AND NEW.sha256 IS DISTINCT FROM OLD.sha256)
       OR (OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS DISTINCT FROM OLD.deleted_at) THEN
        RAISE EXCEPTION 'video segment % identity, hash or deletion cannot change', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL AND NEW.legal_hold THEN
        RAISE EXCEPTION 'video segment % is under legal hold', OLD.id USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER video_segments_guard BEFORE UPDATE OR DELETE ON video_segments
    FOR EACH ROW EXECUTE FUNCTION video_segment_guard();

-- Ledger retention drops whole monthly partitions. What went is recorded here, and for every gate each run
-- of consecutive gate_seq that went with it (first prev_hash, last hash), so the chain over what is left can
-- still be verified across the hole: prev_hash of the row after a run must equal that run's last_hash.
CREATE TABLE ledger_dropped_partitions (
    name text PRIMARY KEY,
    range_from timestamptz NOT NULL,
    range_to timestamptz NOT NULL,
    rows bigint NOT NULL,
    as_of date NOT NULL,
    dropped_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER ledger_dropped_partitions_append_only BEFORE UPDATE OR DELETE ON ledger_dropped_partitions
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

CREATE TABLE ledger_dropped_runs (
    gate_id text NOT NULL,
    first_seq bigint NOT NULL,
    last_seq bigint NOT NULL,
    rows bigint NOT NULL,
    first_prev_hash bytea NOT NULL,
    last_hash bytea NOT NULL,
    partition text NOT NULL REFERENCES ledger_dropped_partitions (name),
    PRIMARY KEY (gate_id, first_seq),
    CHECK (last_seq >= first_seq AND rows = last_seq - first_seq + 1)
);
CREATE TRIGGER ledger_dropped_runs_append_only BEFORE UPDATE OR DELETE ON ledger_dropped_runs
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- One row per scheduled job run (whichever replica ran it): when a job last succeeded decides whether a
-- restarted service catches up at once, and operators can see what housekeeping did.
CREATE TABLE job_runs (
    id bigserial PRIMARY KEY,
    job text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'failed')),
    runner text,
    detail jsonb
);
CREATE INDEX job_runs_job_started_idx ON job_runs (job, started_at DESC);
