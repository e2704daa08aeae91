-- Monthly roll-ups beside the daily ones (issue 17). The city-wide 24-month table summed ~365,000 daily rows
-- (500 enterprises x 730 days) on every request; whole months now come from ~12,000 monthly rows, and only the
-- partial months at a period's edges are summed from transport_daily.
--
-- Same discipline as transport_daily (0004): one statement trigger on passages, the same counting rule
-- (passage_counts), a raw definition built on transport_daily_raw so the two roll-ups cannot drift apart, and a
-- rebuild that repairs a range of months from raw passages.
CREATE TABLE transport_monthly (
    enterprise_id text NOT NULL,
    month date NOT NULL CHECK (month = date_trunc('month', month::timestamp)::date),
    trips integer NOT NULL DEFAULT 0,
    clean_trips integer NOT NULL DEFAULT 0,
    tonnes numeric(16, 1) NOT NULL DEFAULT 0,
    clean_tonnes numeric(16, 1) NOT NULL DEFAULT 0,
    PRIMARY KEY (enterprise_id, month),
    -- No NaN or infinity, like transport_daily (0006).
    CONSTRAINT transport_monthly_tonnes_finite
        CHECK (tonnes <> 'NaN' AND clean_tonnes <> 'NaN'
               AND tonnes NOT IN ('Infinity', '-Infinity') AND clean_tonnes NOT IN ('Infinity', '-Infinity'))
);
CREATE INDEX transport_monthly_month_idx ON transport_monthly (month);

-- The first day of a local day's month. On a plain timestamp, not timestamptz: immutable and free of the
-- session TimeZone (date_trunc on a date casts it to timestamptz, which is neither).
CREATE FUNCTION month_of(d date) RETURNS date LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT date_trunc('month', d::timestamp)::date
$$;

CREATE FUNCTION transport_monthly_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO transport_monthly AS m (enterprise_id, month, trips, clean_trips, tonnes, clean_tonnes)
    SELECT n.enterprise_id, month_of(shanghai_day(n.at)),
           count(*) FILTER (WHERE n.direction = 'in'),
           count(*) FILTER (WHERE n.direction = 'in' AND n.clean),
           -- As transport_daily_add since 0006: a NaN stored before that migration counts as "no tonnes".
           coalesce(sum(NULLIF(n.tonnes, 'NaN')), 0),
           coalesce(sum(NULLIF(n.tonnes, 'NaN')) FILTER (WHERE n.clean), 0)
    FROM new_passages n
    WHERE n.enterprise_id IS NOT NULL AND n.decision = 'allow'
      AND (n.overrides IS NULL OR passage_counts(n.decision, n.overrides, n.gate_id, n.gate_seq))
    GROUP BY 1, 2
    -- Same lock order for every statement (and this trigger fires after passages_transport_daily, by name, in
    -- every statement): concurrent writers cannot deadlock.
    ORDER BY 1, 2
    ON CONFLICT (enterprise_id, month) DO UPDATE SET
        trips = m.trips + EXCLUDED.trips,
        clean_trips = m.clean_trips + EXCLUDED.clean_trips,
        tonnes = m.tonnes + EXCLUDED.tonnes,
        clean_tonnes = m.clean_tonnes + EXCLUDED.clean_tonnes;
    RETURN NULL;
END;
$$;

CREATE TRIGGER passages_transport_monthly AFTER INSERT ON passages
    REFERENCING NEW TABLE AS new_passages
    FOR EACH STATEMENT EXECUTE FUNCTION transport_monthly_add();

-- Whole months first_month..last_month straight from raw passages, through the daily raw definition.
CREATE FUNCTION transport_monthly_raw(first_month date, last_month date)
RETURNS TABLE (enterprise_id text, month date, trips integer, clean_trips integer, tonnes numeric,
               clean_tonnes numeric)
LANGUAGE sql STABLE AS $$
    SELECT r.enterprise_id, month_of(r.day), sum(r.trips)::integer, sum(r.clean_trips)::integer,
           sum(r.tonnes), sum(r.clean_tonnes)
    FROM transport_daily_raw(month_of(first_month), (month_of(last_month) + interval '1 month - 1 day')::date) r
    GROUP BY 1, 2
$$;

-- Repair: recompute whole months from raw passages; returns the rows written. Same locking argument as
-- rebuild_transport_daily: a passage committed meanwhile is counted once, by the recomputation or its trigger.
CREATE FUNCTION rebuild_transport_monthly(first_month date, last_month date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    written integer;
BEGIN
    LOCK TABLE transport_monthly IN EXCLUSIVE MODE;
    DELETE FROM transport_monthly WHERE month BETWEEN month_of(first_month) AND month_of(last_month);
    INSERT INTO transport_monthly (enterprise_id, month, trips, clean_trips, tonnes, clean_tonnes)
    SELECT * FROM transport_monthly_raw(first_month, last_month);
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END;
$$;

-- Existing ledgers: the monthly roll-ups start as the sums of the daily ones (already checked against raw by
-- the nightly repair); a full raw rebuild is `SELECT rebuild_transport_monthly(<first>, <last>)`.
INSERT INTO transport_monthly (enterprise_id, month, trips, clean_trips, tonnes, clean_tonnes)
SELECT enterprise_id, month_of(day), sum(trips), sum(clean_trips), sum(tonnes), sum(clean_tonnes)
FROM transport_daily GROUP BY 1, 2;
