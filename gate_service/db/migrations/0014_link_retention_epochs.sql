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

-- A second override of a passage is refused when live (0008) — but not when the first one is in another chain
-- epoch: after a cut tail is resolved, the site no longer has the cut override and may let the truck through
-- again, and a batch refused for it would stall that gate's uplink for good. It is kept as a late replay (the
-- first citation stays the one that counts, as passage_counts says above). As 0008's, with that one condition.
CREATE OR REPLACE FUNCTION passage_override_record() RETURNS trigger LANGUAGE plpgsql AS $$
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
        IF NOT late AND NOT EXISTS (
                SELECT 1 FROM passage_overrides o JOIN passages p ON p.id = o.override_id
                WHERE o.cited_id = cited.id AND NOT o.late_replay AND p.chain_epoch <> NEW.chain_epoch) THEN
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
