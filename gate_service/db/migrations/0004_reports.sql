-- Clean-transport reports (issue 7): non-road volumes reported by enterprises, and daily roll-ups of the ledger
-- so that a report over 24 months of a whole city reads a few hundred thousand small rows, never raw passages.

-- Monthly tonnages moved by modes that never pass a gate (rail, waterway, pipeline, tubular belt conveyor).
-- They all count as clean (national ultra-low-emission guidance). One current row per enterprise and month;
-- every change is also in audit_log with the previous values.
CREATE TABLE transport_volumes (
    enterprise_id text NOT NULL REFERENCES enterprises (id),
    month date NOT NULL CHECK (month = date_trunc('month', month)::date),
    rail_tonnes numeric(14, 1) NOT NULL DEFAULT 0 CHECK (rail_tonnes >= 0),
    waterway_tonnes numeric(14, 1) NOT NULL DEFAULT 0 CHECK (waterway_tonnes >= 0),
    pipeline_tonnes numeric(14, 1) NOT NULL DEFAULT 0 CHECK (pipeline_tonnes >= 0),
    conveyor_tonnes numeric(14, 1) NOT NULL DEFAULT 0 CHECK (conveyor_tonnes >= 0),
    note text,
    reported_by text NOT NULL,
    reported_role text NOT NULL,
    reported_token_id bigint REFERENCES api_tokens (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_id, month)
);

-- Daily per-enterprise counters over the ledger. A day is an Asia/Shanghai day.
--   trips        allowed entries (direction 'in')
--   clean_trips  those by vehicles that counted as clean under the policy in force (passages.clean)
--   tonnes       cargo tonnes of allowed passages, both directions
--   clean_tonnes those moved by clean vehicles
-- Denied passages carried nothing and count nowhere.
--
-- Overrides (a guard lets a refused vehicle through): the ledger is append-only, so the override is a new row
-- with decision 'allow' and `overrides` = the refused row's id. The refused row never counted; the override row
-- counts as the trip (with its own tonnes, on its own day). Two safeguards keep a trip from counting twice:
-- an override of a row that was itself allowed counts nothing, and only the first override of a row counts
-- (a guard pressing the button twice is one truck). `passage_counts` is that rule; the trigger and the
-- rebuild both use it, so they cannot disagree.
CREATE TABLE transport_daily (
    enterprise_id text NOT NULL,
    day date NOT NULL,
    trips integer NOT NULL DEFAULT 0,
    clean_trips integer NOT NULL DEFAULT 0,
    tonnes numeric(16, 1) NOT NULL DEFAULT 0,
    clean_tonnes numeric(16, 1) NOT NULL DEFAULT 0,
    PRIMARY KEY (enterprise_id, day)
);
CREATE INDEX transport_daily_day_idx ON transport_daily (day);

-- Override rows are rare; this keeps "is there an earlier override of the same row" an index probe.
CREATE INDEX passages_overrides_idx ON passages (overrides) WHERE overrides IS NOT NULL;

-- The local (Asia/Shanghai, fixed UTC+8 since 1991) day of a moment. Spelled as an interval, not a zone
-- name: independent of the session TimeZone and of the server's tz database, and immutable.
CREATE FUNCTION shanghai_day(t timestamptz) RETURNS date LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ((t AT TIME ZONE 'UTC') + interval '8 hours')::date
$$;

CREATE FUNCTION passage_counts(p_decision text, p_overrides uuid, p_gate_id text, p_gate_seq bigint)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN p_decision <> 'allow' THEN false
        WHEN p_overrides IS NULL THEN true
        ELSE NOT EXISTS (SELECT 1 FROM passages o WHERE o.id = p_overrides AND o.decision = 'allow')
         AND NOT EXISTS (SELECT 1 FROM passages o WHERE o.overrides = p_overrides AND o.gate_id = p_gate_id
                                                   AND o.gate_seq < p_gate_seq)
    END
$$;

-- Maintained per INSERT statement from the transition table: a kiosk's single row costs one upsert, and a bulk
-- COPY (an import of another system's ledger) is aggregated once instead of row by row. Writes must go through
-- the parent table `passages` (ledger.store.append and COPY do); a statement on a partition itself would not
-- fire this trigger — rebuild_transport_daily repairs that.
CREATE FUNCTION transport_daily_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO transport_daily AS d (enterprise_id, day, trips, clean_trips, tonnes, clean_tonnes)
    SELECT n.enterprise_id, shanghai_day(n.at),
           count(*) FILTER (WHERE n.direction = 'in'),
           count(*) FILTER (WHERE n.direction = 'in' AND n.clean),
           coalesce(sum(n.tonnes), 0),
           coalesce(sum(n.tonnes) FILTER (WHERE n.clean), 0)
    FROM new_passages n
    WHERE n.enterprise_id IS NOT NULL AND n.decision = 'allow'
      AND (n.overrides IS NULL OR passage_counts(n.decision, n.overrides, n.gate_id, n.gate_seq))
    GROUP BY 1, 2
    -- ORDER BY keeps the lock order of concurrent statements the same, so they cannot deadlock.
    ORDER BY 1, 2
    ON CONFLICT (enterprise_id, day) DO UPDATE SET
        trips = d.trips + EXCLUDED.trips,
        clean_trips = d.clean_trips + EXCLUDED.clean_trips,
        tonnes = d.tonnes + EXCLUDED.tonnes,
        clean_tonnes = d.clean_tonnes + EXCLUDED.clean_tonnes;
    RETURN NULL;
END;
$$;

CREATE TRIGGER passages_transport_daily AFTER INSERT ON passages
    REFERENCING NEW TABLE AS new_passages
    FOR EACH STATEMENT EXECUTE FUNCTION transport_daily_add();

-- The same figures straight from raw passages, for local days first_day..last_day (inclusive). The rebuild and
-- the tests' and benchmark's "raw scan" all call this, so the roll-up is checked against one definition.
CREATE FUNCTION transport_daily_raw(first_day date, last_day date)
RETURNS TABLE (enterprise_id text, day date, trips integer, clean_trips integer, tonnes numeric, clean_tonnes numeric)
LANGUAGE sql STABLE AS $$
    SELECT p.enterprise_id, shanghai_day(p.at),
           (count(*) FILTER (WHERE p.direction = 'in'))::integer,
           (count(*) FILTER (WHERE p.direction = 'in' AND p.clean))::integer,
           coalesce(sum(p.tonnes), 0),
           coalesce(sum(p.tonnes) FILTER (WHERE p.clean), 0)
    FROM passages p
    -- Bounds on `at` itself (not on shanghai_day(at)) so that partitions are pruned and indexes used.
    WHERE p.at >= (first_day::timestamp - interval '8 hours') AT TIME ZONE 'UTC'
      AND p.at < ((last_day + 1)::timestamp - interval '8 hours') AT TIME ZONE 'UTC'
      AND p.enterprise_id IS NOT NULL AND p.decision = 'allow'
      AND (p.overrides IS NULL OR passage_counts(p.decision, p.overrides, p.gate_id, p.gate_seq))
    GROUP BY 1, 2
$$;

-- Repair: recompute the roll-ups of local days first_day..last_day from raw passages; returns the rows written.
-- The EXCLUSIVE lock waits for writers that already touched the roll-ups and makes new ones wait, so a passage
-- committed during the rebuild is either in the recomputation or added by its trigger after it, never both.
CREATE FUNCTION rebuild_transport_daily(first_day date, last_day date) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    written integer;
BEGIN
    LOCK TABLE transport_daily IN EXCLUSIVE MODE;
    DELETE FROM transport_daily WHERE day BETWEEN first_day AND last_day;
    INSERT INTO transport_daily (enterprise_id, day, trips, clean_trips, tonnes, clean_tonnes)
    SELECT * FROM transport_daily_raw(first_day, last_day);
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END;
$$;
