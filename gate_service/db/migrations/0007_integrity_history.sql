-- Issue 15 items 11 and 14.

-- A client_ref names one request: the hash of the body it came with is kept beside the first answer, so a retry
-- replays that answer and a different body under the same client_ref is refused (409 client_ref_conflict).
-- NULL for answers recorded before this migration: those replay as before.
ALTER TABLE passage_refs ADD COLUMN body_hash bytea;

-- The registry as it was at a moment. A past-dated passage (a kiosk uploading late, an admin's backfill) is
-- judged by the vehicle as the registry described it then, not by a later change (a retrofit, a correction, or
-- a kiosk's rewrite). One row per state of a vehicle's decision facts, [valid_from, valid_to); valid_to NULL is
-- the current one. Written by a trigger on vehicles, so every transaction that changes a vehicle (the API, an
-- import, psql) writes its history in the same transaction; `extra` is not kept here (no rule reads it).
CREATE TABLE vehicle_versions (
    id bigserial PRIMARY KEY,
    plate text NOT NULL,
    valid_from timestamptz NOT NULL,
    valid_to timestamptz,
    plate_color text,
    vin text,
    engine_no text,
    emission_stage smallint,
    fuel_type text,
    vehicle_class text,
    registered_on date,
    haulier text,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX vehicle_versions_plate_idx ON vehicle_versions (plate, valid_from);
CREATE UNIQUE INDEX vehicle_versions_current_idx ON vehicle_versions (plate) WHERE valid_to IS NULL;

CREATE FUNCTION vehicle_versions_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.plate_color, NEW.vin, NEW.engine_no, NEW.emission_stage, NEW.fuel_type,
                             NEW.vehicle_class, NEW.registered_on, NEW.haulier)
                            IS NOT DISTINCT FROM
                            (OLD.plate_color, OLD.vin, OLD.engine_no, OLD.emission_stage, OLD.fuel_type,
                             OLD.vehicle_class, OLD.registered_on, OLD.haulier) THEN
        RETURN NULL;  -- only extra changed (a document photo): the facts a decision reads did not
    END IF;
    -- The clock when the row is written (the vehicle's row lock is held by then), not now(): a transaction
    -- that began earlier but waited for that lock must not end a version before it began.
    UPDATE vehicle_versions SET valid_to = GREATEST(clock_timestamp(), valid_from)
        WHERE plate = COALESCE(OLD.plate, NEW.plate) AND valid_to IS NULL;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO vehicle_versions (plate, valid_from, plate_color, vin, engine_no, emission_stage, fuel_type,
                                      vehicle_class, registered_on, haulier)
        VALUES (NEW.plate, clock_timestamp(), NEW.plate_color, NEW.vin, NEW.engine_no, NEW.emission_stage, NEW.fuel_type,
                NEW.vehicle_class, NEW.registered_on, NEW.haulier);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER vehicles_versions AFTER INSERT OR UPDATE OR DELETE ON vehicles
    FOR EACH ROW EXECUTE FUNCTION vehicle_versions_track();

-- Vehicles registered before this migration: their present state, known since they were registered (what
-- they were before a change made earlier is not recorded anywhere, so it cannot be recovered).
INSERT INTO vehicle_versions (plate, valid_from, plate_color, vin, engine_no, emission_stage, fuel_type,
                              vehicle_class, registered_on, haulier)
SELECT plate, created_at, plate_color, vin, engine_no, emission_stage, fuel_type, vehicle_class, registered_on,
       haulier
FROM vehicles;
