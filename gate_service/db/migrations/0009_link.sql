-- 联网 (issue 14): sites (an enterprise's or a checkpoint's own cleangate) upload their ledger to the platform
-- (the bureau's cleangate), which verifies it against the sites' signed chain heads and sends the blacklist,
-- alerts, plan files and registry changes down. Both tiers run the same schema; a service uses the tables of
-- the tier(s) it plays.

-- ---- tokens: a new role -------------------------------------------------------------------------------
-- A site token is bound to an enterprise (all its gates) or, for a city checkpoint, to the gates listed in
-- link_site_gates. Constraints are re-stated rather than edited so that the role list stays one CHECK.
ALTER TABLE api_tokens DROP CONSTRAINT IF EXISTS api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('admin', 'kiosk', 'police', 'ecology', 'enterprise', 'site'));
ALTER TABLE api_tokens DROP CONSTRAINT IF EXISTS api_tokens_check1;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_enterprise_binding
    CHECK ((role = 'enterprise' AND enterprise_id IS NOT NULL)
           OR (role = 'site') OR (role NOT IN ('enterprise', 'site') AND enterprise_id IS NULL));

-- ---- platform side ------------------------------------------------------------------------------------
-- One row per enrolled site (its token). The public key is pinned on first contact; a different key later is
-- refused until an admin re-enrols the site (public_key set back to NULL, recorded in audit_log).
CREATE TABLE link_sites (
    site_id bigint PRIMARY KEY REFERENCES api_tokens (id),
    public_key bytea,
    key_pinned_at timestamptz,
    first_seen timestamptz,
    last_seen timestamptz,
    -- What the site said at its last sync: its own head per gate {gate: [seq, hash_hex]} and its version.
    reported jsonb NOT NULL DEFAULT '{}'::jsonb,
    software text
);

-- A checkpoint site's gates (an enterprise site may upload for every gate of its enterprise).
CREATE TABLE link_site_gates (
    site_id bigint NOT NULL REFERENCES api_tokens (id),
    gate_id text NOT NULL REFERENCES gates (id),
    PRIMARY KEY (site_id, gate_id)
);

-- The platform's acknowledged head of each uploaded gate chain, and whether the site's history still matches.
CREATE TABLE link_gate_heads (
    gate_id text PRIMARY KEY,
    site_id bigint NOT NULL REFERENCES api_tokens (id),
    seq bigint NOT NULL DEFAULT 0,
    hash bytea NOT NULL,
    acked_at timestamptz,
    chain text NOT NULL DEFAULT 'ok' CHECK (chain IN ('ok', 'broken')),
    first_bad_seq bigint,
    problem text,
    broken_at timestamptz,
    -- Rows received after the break are kept apart; the site resumes from here.
    quarantine_seq bigint NOT NULL DEFAULT 0
);

-- Every signed head the platform accepted: the external anchor. Append-only.
CREATE TABLE link_signed_heads (
    id bigserial PRIMARY KEY,
    site_id bigint NOT NULL REFERENCES api_tokens (id),
    gate_id text NOT NULL,
    seq bigint NOT NULL,
    hash bytea NOT NULL,
    statement jsonb NOT NULL,
    signature bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX link_signed_heads_gate_idx ON link_signed_heads (gate_id, seq);
CREATE TRIGGER link_signed_heads_append_only BEFORE UPDATE OR DELETE ON link_signed_heads
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Rows of a gate whose chain no longer matches: kept, never merged into passages.
CREATE TABLE link_quarantine (
    site_id bigint NOT NULL REFERENCES api_tokens (id),
    gate_id text NOT NULL,
    gate_seq bigint NOT NULL,
    hash bytea NOT NULL,
    prev_hash bytea NOT NULL,
    row_data jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, gate_id, gate_seq, hash)
);

-- Uploaded rows carry where they came from and when they arrived (for the HJ 1321 upload rate). Neither is
-- part of the site's hash: the site never knew them; the platform sets them once, at insert.
ALTER TABLE passages ADD COLUMN origin_site bigint;
ALTER TABLE passages ADD COLUMN uploaded_at timestamptz;
CREATE INDEX passages_origin_site_idx ON passages (origin_site, at) WHERE origin_site IS NOT NULL;

-- Media (snapshots, crops) received, by their ledger reference.
CREATE TABLE link_media (
    ref text PRIMARY KEY,
    site_id bigint NOT NULL REFERENCES api_tokens (id),
    bytes integer NOT NULL,
    sha256 text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Video index rows of a site (the clip itself travels only on demand or hold).
CREATE TABLE link_video_index (
    site_id bigint NOT NULL REFERENCES api_tokens (id),
    segment_id bigint NOT NULL,
    gate_id text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    sha256 text,
    bytes bigint,
    held boolean NOT NULL DEFAULT false,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, segment_id)
);

-- ---- site side ----------------------------------------------------------------------------------------
-- Cursors of the side streams (vehicles, volumes, media, video index): how far the platform acknowledged.
CREATE TABLE link_cursors (
    stream text PRIMARY KEY,
    position text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The last copy of each downlink stream the platform sent (kept for offline operation and shown by age).
CREATE TABLE link_downlink (
    stream text PRIMARY KEY,
    version text NOT NULL,
    payload jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Alerts the platform declared, mirrored at a site under the platform's id.
ALTER TABLE alerts ADD COLUMN platform_id bigint UNIQUE;
