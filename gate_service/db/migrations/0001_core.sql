-- Registry and access: zones, enterprises, gates, vehicles, API tokens, audit log.
-- Vocabularies are CHECK constraints so that a bad value can never be stored, whatever wrote it.

CREATE TABLE zones (
    id text PRIMARY KEY,
    name_zh text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('development_zone', 'city', 'other'))
);

INSERT INTO zones (id, name_zh, kind) VALUES
    ('linfen-edz', '临汾经济开发区', 'development_zone'),
    ('hongtong', '洪洞经济技术开发区', 'development_zone'),
    ('xiangfen', '襄汾经济技术开发区', 'development_zone'),
    ('quwo', '曲沃经济技术开发区', 'development_zone'),
    ('houma', '侯马经济技术开发区', 'development_zone'),
    ('huozhou', '霍州经济技术开发区', 'development_zone'),
    ('yaodu-hitech', '尧都高新技术产业开发区', 'development_zone'),
    ('city', '市区规划区', 'city'),
    ('other', '其他区域', 'other');

CREATE TABLE enterprises (
    id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    industry text NOT NULL,
    county text,
    zone_id text REFERENCES zones (id),
    retrofit_completed_on date,
    grade text CHECK (grade IN ('A', 'B', 'B-', 'C', 'D', 'leading')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gates (
    id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- NULL: a city checkpoint, not an enterprise gate.
    enterprise_id text REFERENCES enterprises (id),
    zone_id text NOT NULL REFERENCES zones (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gates_enterprise_idx ON gates (enterprise_id);

CREATE TABLE vehicles (
    plate text PRIMARY KEY,
    plate_color text CHECK (plate_color IN ('blue', 'yellow', 'green', 'yellow-green', 'white', 'black', 'unknown')),
    vin text CHECK (vin IS NULL OR vin ~ '^[A-HJ-NPR-Z0-9]{17}$'),
    engine_no text,
    emission_stage smallint CHECK (emission_stage BETWEEN 0 AND 6),
    fuel_type text CHECK (fuel_type IN ('diesel', 'petrol', 'gas', 'methanol', 'hybrid', 'phev', 'electric', 'hydrogen')),
    vehicle_class text CHECK (vehicle_class IN ('heavy_truck', 'medium_truck', 'light_truck', 'concrete_mixer',
        'muck_truck', 'logistics', 'bus', 'car', 'nonroad', 'other')),
    registered_on date,
    haulier text,
    -- Fields the national record asks for that no rule reads (photos of 随车清单/行驶证, owner, ...).
    extra jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id bigserial PRIMARY KEY,
    -- sha256 of the secret: a stolen database yields no usable token.
    token_hash bytea NOT NULL UNIQUE,
    prefix text NOT NULL,
    role text NOT NULL CHECK (role IN ('admin', 'kiosk', 'police', 'ecology', 'enterprise')),
    gate_id text REFERENCES gates (id),
    enterprise_id text REFERENCES enterprises (id),
    name text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CHECK ((role = 'kiosk') = (gate_id IS NOT NULL)),
    CHECK ((role = 'enterprise') = (enterprise_id IS NOT NULL))
);

-- Who changed what, from where. Append-only: the service never updates or deletes these rows.
CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    token_id bigint REFERENCES api_tokens (id),
    actor text NOT NULL,
    role text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}'::jsonb,
    remote text
);
CREATE INDEX audit_log_at_idx ON audit_log (at);

CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
