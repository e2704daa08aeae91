-- The electronic ledger (三(一)3: kept >= 24 months) and heavy-pollution alerts.
--
-- passages is range-partitioned by month so that retention drops whole partitions instead of deleting
-- rows. Rows are never updated or deleted by the service (a trigger refuses it); each row carries the
-- hash of the previous row of the same gate, so an edited, inserted or missing row breaks the chain.

CREATE TABLE passages (
    id uuid NOT NULL,
    at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    gate_id text NOT NULL,
    gate_seq bigint NOT NULL,
    -- Copied from the gate at the time: reports and a future distribution by enterprise need no join.
    enterprise_id text,
    zone_id text NOT NULL,
    direction text NOT NULL CHECK (direction IN ('in', 'out')),
    plate text NOT NULL,
    plate_color text,
    source text NOT NULL CHECK (source IN ('camera', 'manual', 'override', 'import')),
    -- The read: text, colour, confidence, frames that voted, box.
    read jsonb,
    -- The vehicle as the registry knew it at that moment (stage, fuel, class, VIN, engine no., ...).
    vehicle jsonb,
    registered boolean NOT NULL,
    emission_stage smallint,
    fuel_type text,
    vehicle_class text,
    cargo text,
    tonnes numeric(10, 1) CHECK (tonnes IS NULL OR tonnes >= 0),
    decision text NOT NULL CHECK (decision IN ('allow', 'deny')),
    reasons jsonb NOT NULL DEFAULT '[]'::jsonb,
    rules text[] NOT NULL DEFAULT '{}',
    policy_id text,
    alert_level text CHECK (alert_level IN ('yellow', 'orange', 'red')),
    blacklisted boolean NOT NULL DEFAULT false,
    -- Counts as clean transport under the policy in force at that moment (for the bureau's ratio).
    clean boolean NOT NULL DEFAULT false,
    snapshot_ref text,
    crop_ref text,
    video_segment_id bigint,
    video_offset_ms integer,
    -- A guard's manual override is a new row pointing at the one it overrides.
    overrides uuid,
    override_reason text,
    token_id bigint,
    actor text,
    client_ref text,
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);

CREATE INDEX passages_gate_at_idx ON passages (gate_id, at);
CREATE INDEX passages_enterprise_at_idx ON passages (enterprise_id, at);
CREATE INDEX passages_plate_at_idx ON passages (plate, at);
CREATE INDEX passages_gate_seq_idx ON passages (gate_id, gate_seq);

CREATE TRIGGER passages_append_only BEFORE UPDATE OR DELETE ON passages
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- One month's partition, named passages_YYYYMM; a no-op when it exists.
CREATE FUNCTION ensure_passage_partition(month date) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    first_day date := date_trunc('month', month)::date;
    name text := 'passages_' || to_char(first_day, 'YYYYMM');
BEGIN
    IF to_regclass(name) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF passages FOR VALUES FROM (%L) TO (%L)',
            -- Explicit UTC bounds: the session's TimeZone must not move a month's edges.
            name, first_day::text || ' 00:00:00+00', (first_day + interval '1 month')::date::text || ' 00:00:00+00'
        );
    END IF;
    RETURN name;
END;
$$;

-- The head of each gate's chain: serialises appends per gate and makes gate_seq gap-free.
CREATE TABLE gate_chain_heads (
    gate_id text PRIMARY KEY,
    seq bigint NOT NULL,
    hash bytea NOT NULL,
    at timestamptz NOT NULL
);

-- Daily record of each chain head, so that a rewrite of the whole history after that day is detectable.
CREATE TABLE ledger_anchors (
    gate_id text NOT NULL,
    day date NOT NULL,
    seq bigint NOT NULL,
    hash bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gate_id, day)
);
CREATE TRIGGER ledger_anchors_append_only BEFORE UPDATE OR DELETE ON ledger_anchors
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Idempotency of kiosk retries: the first answer for a (gate, client_ref) is returned again.
CREATE TABLE passage_refs (
    gate_id text NOT NULL,
    client_ref text NOT NULL,
    passage_id uuid NOT NULL,
    at timestamptz NOT NULL,
    response jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gate_id, client_ref)
);

CREATE TABLE alerts (
    id bigserial PRIMARY KEY,
    level text NOT NULL CHECK (level IN ('yellow', 'orange', 'red')),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    note text,
    declared_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    cancelled_at timestamptz,
    CHECK (ends_at > starts_at)
);
CREATE INDEX alerts_span_idx ON alerts (starts_at, ends_at);
