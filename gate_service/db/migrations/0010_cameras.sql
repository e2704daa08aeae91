-- Gate cameras the service pulls itself (RTSP), and which of the gate's video segments a camera recorded.
--
-- rtsp_url keeps the camera's credentials (the service needs them to connect); every answer, log line and
-- export shows it redacted (gate_service/cameras/redact.py). roles: 'read' feeds the plate reader a few frames
-- per second, 'record' writes the camera's own stream into video segments by stream copy.

CREATE TABLE gate_cameras (
    id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    gate_id text NOT NULL REFERENCES gates (id),
    name text CHECK (name IS NULL OR length(name) BETWEEN 1 AND 200),
    vendor text NOT NULL DEFAULT 'generic' CHECK (vendor IN ('generic', 'hikvision', 'dahua', 'uniview')),
    rtsp_url text NOT NULL CHECK (rtsp_url ~ '^rtsps?://'),
    roles text[] NOT NULL CHECK (cardinality(roles) > 0 AND roles <@ ARRAY['read', 'record']::text[]),
    read_fps real NOT NULL DEFAULT 5 CHECK (read_fps > 0 AND read_fps <= 25),
    direction text NOT NULL DEFAULT 'in' CHECK (direction IN ('in', 'out')),
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gate_cameras_gate_idx ON gate_cameras (gate_id);

-- Segments recorded from a camera's stream (NULL: the kiosk-frame recorder's), and the codec as recorded
-- (h264, hevc; mpeg4 for the kiosk-frame recorder's re-encoded segments).
ALTER TABLE video_segments ADD COLUMN camera_id text, ADD COLUMN codec text;

-- Video self-audits (视频核查): the reader run over a gate's recorded video for a period, every vehicle seen
-- matched against the ledger; vehicles in the video with no ledger row are the findings.
CREATE TABLE video_audits (
    id bigserial PRIMARY KEY,
    gate_id text NOT NULL,
    period_from timestamptz NOT NULL,
    period_to timestamptz NOT NULL CHECK (period_to > period_from),
    status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    requested_by text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    vehicles integer,
    findings integer,
    result jsonb,
    error text
);
CREATE INDEX video_audits_gate_idx ON video_audits (gate_id, period_from);
