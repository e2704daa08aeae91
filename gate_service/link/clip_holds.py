"""Holds on the clips sites uploaded, at the platform.

Two holds can keep an uploaded clip past retention. The site's: mirrored from the site's own segment (its index
row says ``legal_hold``), and released when the site releases it — the release travels up on the records
stream (``video_releases``), and the copy then follows normal retention, never deleted at once. And the
platform's: the bureau holds the copy it has (``platform_hold``), whatever the site does with its own.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from gate_service import keys
from gate_service.auth import audit
from gate_service.errors import ApiError, not_found
from gate_service.video.routes import HOLD, RELEASE
from gate_service.web import Api, json_response

api = Api()
TAG = "link"
_PATH = r"/api/v1/sites/{site_id:[0-9]+}/video/{segment_id:[0-9]+}"
_FIELDS = """site_id, segment_id, gate_id, started_at, ended_at, bytes, sha256, storage_key IS NOT NULL AS stored,
    stored_at, deleted_at, held, hold_reason, held_by, hold_released_at, platform_hold, platform_hold_reason,
    platform_hold_case_ref, platform_held_by, platform_held_at"""


def _ids(request: web.Request) -> tuple[int, int]:
    return int(request.match_info["site_id"]), int(request.match_info["segment_id"])


@api.route("POST", f"{_PATH}/hold", roles=("ecology", "admin"), body=HOLD, tag=TAG,
           summary="Put the platform's copy of a site's uploaded segment under legal hold (kept past retention "
                   "whatever the site does with its own)")
async def hold_uploaded(request: web.Request) -> web.Response:
    site_id, segment_id = _ids(request)
    body = request[keys.BODY]
    pool = request.app[keys.POOL]
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(
            "SELECT storage_key, deleted_at FROM link_video_index WHERE site_id = $1 AND segment_id = $2 FOR UPDATE",
            site_id, segment_id)
        if current is None:
            raise not_found("录像片段 video segment", f"{site_id}/{segment_id}")
        if current["storage_key"] is None:
            # Only a copy the platform holds can be kept here; video still at the site is asked for first.
            code, text = (("video_expired", "平台副本已按保存期限删除 / the platform's copy was deleted by retention")
                          if current["deleted_at"] else
                          ("video_not_uploaded", "该片段尚未上传到平台,请先发起调取请求 / the segment is not at the "
                           "platform: request it first"))
            raise ApiError(410 if current["deleted_at"] else 409, code, text, segment_id=segment_id)
        row = await conn.fetchrow(
            f"""UPDATE link_video_index SET platform_hold = true, platform_hold_reason = $3,
                       platform_hold_case_ref = $4, platform_held_by = $5, platform_held_at = now()
                WHERE site_id = $1 AND segment_id = $2 RETURNING {_FIELDS}""",
            site_id, segment_id, body["reason"], body.get("case_ref"), request[keys.PRINCIPAL].actor)
        await audit(conn, request, "video.hold_uploaded", f"site{site_id}/{segment_id}", body)
    return json_response(dict(row))


@api.route("POST", f"{_PATH}/release", roles=("ecology", "admin"), body=RELEASE, tag=TAG,
           summary="Release the platform's hold on an uploaded segment (it then follows normal retention, unless "
                   "the site still holds it)")
async def release_uploaded(request: web.Request) -> web.Response:
    site_id, segment_id = _ids(request)
    pool = request.app[keys.POOL]
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"""UPDATE link_video_index SET platform_hold = false, platform_hold_reason = NULL,
                       platform_hold_case_ref = NULL, platform_held_by = NULL, platform_held_at = NULL
                WHERE site_id = $1 AND segment_id = $2 RETURNING {_FIELDS}""", site_id, segment_id)
        if row is None:
            raise not_found("录像片段 video segment", f"{site_id}/{segment_id}")
        await audit(conn, request, "video.release_uploaded", f"site{site_id}/{segment_id}", request[keys.BODY])
    return json_response(dict(row))


async def site_released(conn: asyncpg.Connection, site_id: int, releases: list[dict[str, Any]]) -> int:
    """The site released holds on these segments: the mirrored hold goes (the platform's own stays)."""
    done = 0
    for r in releases:
        status = await conn.execute(
            """UPDATE link_video_index SET held = false, hold_released_at = now(),
                      hold_reason = NULL, held_by = NULL
               WHERE site_id = $1 AND segment_id = $2 AND held""", site_id, int(r["id"]))
        done += status.endswith(" 1")
    return done
