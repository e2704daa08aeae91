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
