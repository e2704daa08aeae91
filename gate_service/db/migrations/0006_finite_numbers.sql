-- Issue 15 item 2: no NaN or ±Infinity in any number a passage, a roll-up or a transport volume holds.
--
-- PostgreSQL's numeric and float types store 'NaN' (and numeric without a precision, and the floats, store
-- ±Infinity), and NaN compares greater than every number, so the ">= 0" CHECKs of 0002/0004 let it in. One NaN
-- in a ledger row reached the daily roll-up through its trigger, and every report over that day failed. The
-- service now refuses NaN when it parses JSON; these CHECKs make sure no other path (an import, psql, a future
-- endpoint) can store one.

-- The roll-ups count a ledger row's tonnes only when they are a number. Ledger rows are append-only and stay as
-- written, so a NaN stored before this migration counts as "no tonnes" (the trip still counts), here and in the
-- rebuild, which therefore repairs any roll-up that holds NaN.
CREATE OR REPLACE FUNCTION transport_daily_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO transport_daily AS d (enterprise_id, day, trips, clean_trips, tonnes, clean_tonnes)
    SELECT n.enterprise_id, shanghai_day(n.at),
           count(*) FILTER (WHERE n.direction = 'in'),
           count(*) FILTER (WHERE n.direction = 'in' AND n.clean),
           coalesce(sum(NULLIF(n.tonnes, 'NaN')), 0),
           coalesce(sum(NULLIF(n.tonnes, 'NaN')) FILTER (WHERE n.clean), 0)
    FROM new_passages n
    WHERE n.enterprise_id IS NOT NULL AND n.decision = 'allow'
      AND (n.overrides IS NULL OR passage_counts(n.decision, n.overrides, n.gate_id, n.gate_seq))
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (enterprise_id, day) DO UPDATE SET
        trips = d.trips + EXCLUDED.trips,
        clean_trips = d.clean_trips + EXCLUDED.clean_trips,
        tonnes = d.tonnes + EXCLUDED.tonnes,
        clean_tonnes = d.clean_tonnes + EXCLUDED.clean_tonnes;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION transport_daily_raw(first_day date, last_day date)
RETURNS TABLE (enterprise_id text, day date, trips integer, clean_trips integer, tonnes numeric, clean_tonnes numeric)
LANGUAGE sql STABLE AS $$
    SELECT p.enterprise_id, shanghai_day(p.at),
           (count(*) FILTER (WHERE p.direction = 'in'))::integer,
           (count(*) FILTER (WHERE p.direction = 'in' AND p.clean))::integer,
           coalesce(sum(NULLIF(p.tonnes, 'NaN')), 0),
           coalesce(sum(NULLIF(p.tonnes, 'NaN')) FILTER (WHERE p.clean), 0)
    FROM passages p
    WHERE p.at >= (first_day::timestamp - interval '8 hours') AT TIME ZONE 'UTC'
      AND p.at < ((last_day + 1)::timestamp - interval '8 hours') AT TIME ZONE 'UTC'
      AND p.enterprise_id IS NOT NULL AND p.decision = 'allow'
      AND (p.overrides IS NULL OR passage_counts(p.decision, p.overrides, p.gate_id, p.gate_seq))
    GROUP BY 1, 2
$$;

-- Repair what is already poisoned, so that the CHECK below can be validated: the days whose roll-up holds NaN
-- are recomputed from the ledger (one call per poisoned day; usually none).
DO $$
DECLARE
    poisoned date;
BEGIN
    FOR poisoned IN SELECT DISTINCT day FROM transport_daily WHERE tonnes = 'NaN' OR clean_tonnes = 'NaN' LOOP
        PERFORM rebuild_transport_daily(poisoned, poisoned);
    END LOOP;
END;
$$;

ALTER TABLE transport_daily ADD CONSTRAINT transport_daily_tonnes_finite
    CHECK (tonnes <> 'NaN' AND clean_tonnes <> 'NaN'
           AND tonnes NOT IN ('Infinity', '-Infinity') AND clean_tonnes NOT IN ('Infinity', '-Infinity'));

-- A month an enterprise reported as NaN carried no usable figure: it becomes 0, and audit_log says so (with the
-- enterprise and month), so the bureau can ask for the month again. Usually no row matches.
INSERT INTO audit_log (actor, role, action, target, detail)
SELECT 'migration 0006', 'system', 'transport_volumes.nan_repaired',
       enterprise_id || '/' || to_char(month, 'YYYY-MM'),
       jsonb_build_object('columns', to_jsonb(array_remove(ARRAY[
           CASE WHEN rail_tonnes = 'NaN' THEN 'rail_tonnes' END,
           CASE WHEN waterway_tonnes = 'NaN' THEN 'waterway_tonnes' END,
           CASE WHEN pipeline_tonnes = 'NaN' THEN 'pipeline_tonnes' END,
           CASE WHEN conveyor_tonnes = 'NaN' THEN 'conveyor_tonnes' END], NULL)), 'set_to', 0)
FROM transport_volumes
WHERE 'NaN' IN (rail_tonnes, waterway_tonnes, pipeline_tonnes, conveyor_tonnes);

UPDATE transport_volumes SET
    rail_tonnes = coalesce(NULLIF(rail_tonnes, 'NaN'), 0),
    waterway_tonnes = coalesce(NULLIF(waterway_tonnes, 'NaN'), 0),
    pipeline_tonnes = coalesce(NULLIF(pipeline_tonnes, 'NaN'), 0),
    conveyor_tonnes = coalesce(NULLIF(conveyor_tonnes, 'NaN'), 0)
WHERE 'NaN' IN (rail_tonnes, waterway_tonnes, pipeline_tonnes, conveyor_tonnes);

ALTER TABLE transport_volumes ADD CONSTRAINT transport_volumes_tonnes_finite
    CHECK (rail_tonnes <> 'NaN' AND waterway_tonnes <> 'NaN' AND pipeline_tonnes <> 'NaN'
           AND conveyor_tonnes <> 'NaN');

-- The ledger: new rows are checked; rows written before stay as they are (append-only, and in the hash chain),
-- so where one already holds NaN the constraint is added NOT VALID (PostgreSQL then checks only new rows).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM passages WHERE tonnes = 'NaN') THEN
        ALTER TABLE passages ADD CONSTRAINT passages_tonnes_finite CHECK (tonnes <> 'NaN') NOT VALID;
    ELSE
        ALTER TABLE passages ADD CONSTRAINT passages_tonnes_finite CHECK (tonnes <> 'NaN');
    END IF;
END;
$$;

-- Not a passage's number, but the same hole: a real column takes NaN and Infinity past "fps > 0".
ALTER TABLE video_segments ADD CONSTRAINT video_segments_fps_finite
    CHECK (fps <> 'NaN' AND fps <> 'Infinity');
