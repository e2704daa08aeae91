-- 联网 (issue 14): what the platform keeps of the clips sites uploaded, and for how long.
--
-- A site's uploaded clip follows the platform's video retention (三(一)3, >= 6 months, HJ 1321 settings raise
-- it) measured from the segment's end, like the platform's own video; a hold keeps it. Two holds can keep it:
-- the site's (held, mirrored from the site, released when the site releases it) and the platform's own, set by
-- the bureau on the uploaded copy. Rows stay: deleted_at says the platform's copy went, and when.
ALTER TABLE link_video_index ADD COLUMN deleted_at timestamptz;
ALTER TABLE link_video_index ADD COLUMN hold_released_at timestamptz;
ALTER TABLE link_video_index ADD COLUMN platform_hold boolean NOT NULL DEFAULT false;
ALTER TABLE link_video_index ADD COLUMN platform_hold_reason text;
ALTER TABLE link_video_index ADD COLUMN platform_hold_case_ref text;
ALTER TABLE link_video_index ADD COLUMN platform_held_by text;
ALTER TABLE link_video_index ADD COLUMN platform_held_at timestamptz;
ALTER TABLE link_video_index ADD CONSTRAINT link_video_index_platform_hold_reason
    CHECK (NOT platform_hold OR platform_hold_reason IS NOT NULL);
CREATE INDEX link_video_index_stored_ended_idx ON link_video_index (ended_at) WHERE storage_key IS NOT NULL;

-- A site reads its hold releases from its audit trail past a cursor (link/side.py): an index probe, however long
-- the trail.
CREATE INDEX audit_log_video_release_idx ON audit_log (id) WHERE action = 'video.release';

-- Evidence guard, as for the platform's own segments: a copy under either hold cannot be marked deleted,
-- whatever code tries it.
CREATE FUNCTION link_video_index_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL AND (NEW.held OR NEW.platform_hold) THEN
        RAISE EXCEPTION 'uploaded segment %/% is under legal hold', OLD.site_id, OLD.segment_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER link_video_index_guard BEFORE UPDATE ON link_video_index
    FOR EACH ROW EXECUTE FUNCTION link_video_index_guard();

-- ---- overrides across chain epochs ----------------------------------------------------------------------
-- Only the first override of a refused passage is the trip (0004). "First" was the lower gate_seq, but after a
-- resolved break (0013) a gate's seq N exists in two epochs: two overrides of one passage at the same seq, one
-- in each epoch, both counted (a truck twice). First is now by (chain_epoch, gate_seq): the old epoch's row,
-- reported first, wins. The epoch has a default, so a caller that does not pass it still resolves (as epoch 0).
DROP FUNCTION passage_counts(text, uuid, text, bigint);
CREATE FUNCTION passage_counts(p_decision text, p_overrides uuid, p_gate_id text, p_gate_seq bigint,
                               p_epoch integer DEFAULT 0)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN p_decision <> 'allow' THEN false
        WHEN p_overrides IS NULL THEN true
        ELSE NOT EXISTS (SELECT 1 FROM passages o WHERE o.id = p_overrides AND o.decision = 'allow')
         AND NOT EXISTS (SELECT 1 FROM passages o WHERE o.overrides = p_overrides AND o.gate_id = p_gate_id
                                                   AND (o.chain_epoch, o.gate_seq) < (p_epoch, p_gate_seq))
    END
$$;

-- The roll-ups' definitions as of 0006 / 0011, passing the row's epoch.
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
      AND (n.overrides IS NULL OR passage_counts(n.decision, n.overrides, n.gate_id, n.gate_seq, n.chain_epoch))
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
      AND (p.overrides IS NULL OR passage_counts(p.decision, p.overrides, p.gate_id, p.gate_seq, p.chain_epoch))
    GROUP BY 1, 2
$$;

CREATE OR REPLACE FUNCTION transport_monthly_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO transport_monthly AS m (enterprise_id, month, trips, clean_trips, tonnes, clean_tonnes)
    SELECT n.enterprise_id, month_of(shanghai_day(n.at)),
           count(*) FILTER (WHERE n.direction = 'in'),
           count(*) FILTER (WHERE n.direction = 'in' AND n.clean),
           coalesce(sum(NULLIF(n.tonnes, 'NaN')), 0),
           coalesce(sum(NULLIF(n.tonnes, 'NaN')) FILTER (WHERE n.clean), 0)
    FROM new_passages n
    WHERE n.enterprise_id IS NOT NULL AND n.decision = 'allow'
      AND (n.overrides IS NULL OR passage_counts(n.decision, n.overrides, n.gate_id, n.gate_seq, n.chain_epoch))
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (enterprise_id, month) DO UPDATE SET
        trips = m.trips + EXCLUDED.trips,
        clean_trips = m.clean_trips + EXCLUDED.clean_trips,
        tonnes = m.tonnes + EXCLUDED.tonnes,
        clean_tonnes = m.clean_tonnes + EXCLUDED.clean_tonnes;
    RETURN NULL;
END;
$$;

-- Days a resolved break may have counted twice are recounted from the ledger (usually none).
DO $$
DECLARE
    d date;
BEGIN
    FOR d IN SELECT DISTINCT shanghai_day(at) FROM passages WHERE chain_epoch > 0 AND overrides IS NOT NULL LOOP
        PERFORM rebuild_transport_daily(d, d);
        PERFORM rebuild_transport_monthly(month_of(d), month_of(d));
    END LOOP;
END;
$$;
