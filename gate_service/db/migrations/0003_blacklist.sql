-- Traffic-police blacklist (三(六)29).
--
-- blacklist_events is the record: every change is one appended row (who, role, token, when, why, case, where).
-- blacklist_entries is the current state, maintained by the writer in the same transaction as the event.
-- Why a maintained table and not a view over the events: the partial unique index below makes "one open entry
-- per plate" a database guarantee, the list/filter/export queries stay plain indexed reads, and the gates'
-- in-memory cache reloads it in one cheap SELECT. The events stay the truth: entry_id links each event to the
-- entry it opened, merged into or closed, so the entries can be rebuilt from them if ever needed.

CREATE TABLE blacklist_entries (
    id bigserial PRIMARY KEY,
    plate text NOT NULL,
    reason text NOT NULL CHECK (reason IN ('obd_tampering', 'device_removed', 'over_limit', 'other')),
    -- Last local (Asia/Shanghai) day on which the entry applies; NULL: until revoked.
    valid_until date,
    note text,
    case_ref text,
    checkpoint text,
    added_at timestamptz NOT NULL DEFAULT now(),
    added_by text NOT NULL,
    added_role text NOT NULL,
    added_token_id bigint REFERENCES api_tokens (id),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Set once, when the entry is revoked or marked expired; a later listing of the plate opens a new entry.
    closed_at timestamptz,
    closed_kind text CHECK (closed_kind IN ('revoked', 'expired')),
    closed_by text,
    close_reason text,
    CHECK ((closed_at IS NULL) = (closed_kind IS NULL))
);
CREATE UNIQUE INDEX blacklist_entries_open_plate_idx ON blacklist_entries (plate) WHERE closed_at IS NULL;
CREATE INDEX blacklist_entries_plate_idx ON blacklist_entries (plate);
CREATE INDEX blacklist_entries_added_at_idx ON blacklist_entries (added_at);

CREATE TABLE blacklist_events (
    id bigserial PRIMARY KEY,
    entry_id bigint NOT NULL REFERENCES blacklist_entries (id),
    plate text NOT NULL,
    -- add: a new entry; merge: the plate was reported again while listed (import or repeated add);
    -- revoke: lifted by the police; expire: past valid_until, marked by the daily job.
    kind text NOT NULL CHECK (kind IN ('add', 'merge', 'revoke', 'expire')),
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    role text NOT NULL,
    token_id bigint REFERENCES api_tokens (id),
    -- What the change said: the listing reason for add/merge, free text `why` for revoke.
    reason text CHECK (reason IN ('obd_tampering', 'device_removed', 'over_limit', 'other')),
    valid_until date,
    note text,
    case_ref text,
    checkpoint text,
    why text,
    source text NOT NULL CHECK (source IN ('api', 'import', 'scheduler')),
    import_batch text,
    import_line integer,
    CHECK (kind NOT IN ('add', 'merge') OR reason IS NOT NULL)
);
CREATE INDEX blacklist_events_plate_idx ON blacklist_events (plate, id);
CREATE INDEX blacklist_events_entry_idx ON blacklist_events (entry_id);

CREATE TRIGGER blacklist_events_append_only BEFORE UPDATE OR DELETE ON blacklist_events
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
-- TRUNCATE bypasses row triggers; refuse it too.
CREATE TRIGGER blacklist_events_no_truncate BEFORE TRUNCATE ON blacklist_events
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

-- Every replica caches the open entries; the notification tells them which plate to re-read. pg_notify is
-- delivered only at commit, so a listener never sees a change that is rolled back, and a writer cannot forget it.
CREATE FUNCTION blacklist_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('blacklist_changed', NEW.plate);
    RETURN NULL;
END;
$$;

CREATE TRIGGER blacklist_events_notify AFTER INSERT ON blacklist_events
    FOR EACH ROW EXECUTE FUNCTION blacklist_notify();
