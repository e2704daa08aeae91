"""A guard's override: what it may cite, and the list of 人工放行 the police and the bureau review.

An override is a new ledger row pointing at the passage it overrides (``overrides``). It may cite

- a passage of its own gate (the guard stands at that barrier),
- that is not itself an override (a chain would cite the same vehicle twice),
- that nobody has overridden yet (409 ``already_overridden``; the database's ``passage_overrides`` index holds
  it under concurrent requests too),
- from at most ``WINDOW`` before the override's moment and not after it. A day, because the truck waits at
  the barrier while the guard acts (minutes), a guard may enter it at the end of a shift, and a kiosk that lost
  its link sends it later with its own ``at``; beyond a day it is no longer about the vehicle at the barrier
  but a rewrite of history. ``crops export`` looks a day past its period for overrides on the same ground.

Another plate than the cited read is a plate correction (``plate_corrected``: the label ``crops export``
trusts). Letting through a vehicle the rules deny, or a blacklisted one, is a manual release (人工放行):
``GET /api/v1/manual-releases`` lists them, and the clean-transport report counts them per enterprise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from aiohttp import web

from gate_service import keys
from gate_service.auth import enterprise_scope
from gate_service.errors import ApiError
from gate_service.passages.judge import CLOCK_SKEW
from gate_service.policy.model import period_bounds
from gate_service.validation import parse_date, parse_datetime
from gate_service.web import Api, json_response

api = Api()

WINDOW = timedelta(hours=24)
REVIEWERS = ("police", "ecology", "admin", "enterprise")


async def check_citation(pool: asyncpg.Pool, gate_id: str, cited_id: UUID, at: datetime) -> dict[str, Any]:
    """The cited passage, if an override at ``at`` may cite it; else the ApiError saying why not."""
    cited = await pool.fetchrow(
        """SELECT p.id, p.gate_id, p.plate, p.at, p.decision, p.overrides,
                  EXISTS (SELECT 1 FROM passage_overrides o WHERE o.cited_id = p.id AND NOT o.late_replay)
                      AS overridden
             FROM passages p WHERE p.id = $1 ORDER BY p.at LIMIT 1""", cited_id)
    if cited is None or cited["gate_id"] != gate_id:
        raise ApiError(422, "unknown_passage", "被覆盖的通行记录不存在于本门岗 / no such passage at this gate",
                       field="overrides")
    if cited["overrides"] is not None:
        raise ApiError(422, "override_of_override",
                       "人工放行记录不能再次被覆盖,请引用原始通行记录 / an override cannot be overridden: cite the "
                       "original passage", field="overrides")
    if cited["overridden"]:
        raise already_overridden()
    if at < cited["at"] - CLOCK_SKEW:
        raise ApiError(422, "override_before_passage",
                       "人工放行时间早于被覆盖的通行记录 / the override is dated before the passage it cites",
                       field="at")
    if at - cited["at"] > WINDOW:
        raise ApiError(422, "override_too_late",
                       f"只能覆盖 {WINDOW.total_seconds() / 3600:.0f} 小时内的通行记录 / an override may cite a passage "
                       f"of the last {WINDOW.total_seconds() / 3600:.0f} hours only", field="overrides")
    return dict(cited)


def already_overridden() -> ApiError:
    return ApiError(409, "already_overridden",
                    "该通行记录已被人工放行过一次 / this passage has already been overridden", field="overrides")


@contextlib.contextmanager
def once() -> Iterator[None]:
    """A concurrent override of the same passage that lost the race: 409, its ledger row rolled back."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        if getattr(exc, "constraint_name", None) == "passage_overrides_once":
            raise already_overridden() from None
        raise


def describe(response: dict[str, Any], cited: dict[str, Any]) -> dict[str, Any]:
    """What the kiosk is told besides the decision: a correction? a manual release the police will see?"""
    denied = any(r.get("effect") == "deny" for r in response.get("reasons") or ())
    return {**response, "plate_corrected": response["plate"] != cited["plate"], "corrects_plate": cited["plate"],
            "manual_release": bool(denied or response.get("blacklisted"))}


async def release_counts(conn: asyncpg.Connection | asyncpg.Pool, first: date, last: date,
                         enterprise_id: str | None = None) -> dict[str, int]:
    """Manual releases per enterprise over local days [first, last]: a figure of the clean-transport report."""
    start, end = period_bounds(first, last)
    rows = await conn.fetch(
        """SELECT enterprise_id, count(*) AS n FROM passage_overrides
            WHERE manual_release AND override_at >= $1 AND override_at < $2 AND enterprise_id IS NOT NULL
              AND ($3::text IS NULL OR enterprise_id = $3)
            GROUP BY enterprise_id""", start, end, enterprise_id)
    return {r["enterprise_id"]: r["n"] for r in rows}


def _bound(request: web.Request, name: str, end: bool) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    if len(raw) == 10:  # a local day
        day = parse_date(raw, name)
        try:
            start, stop = period_bounds(day, day)
        except OverflowError:  # 9999-12-31: its end is past what a timestamp holds
            raise ApiError(422, "invalid_date", "日期超出范围 / date out of range", field=name) from None
        return stop if end else start
    return parse_datetime(raw, name)


@api.route("GET", "/api/v1/manual-releases", roles=REVIEWERS, tag="passages",
           query={"from": {"type": "string"}, "to": {"type": "string"}, "gate_id": {"type": "string"},
                  "enterprise_id": {"type": "string"}, "plate": {"type": "string"},
                  "all": {"type": "string", "enum": ["true", "false"]},
                  "limit": {"type": "string", "pattern": r"^[0-9]{1,5}$"}},
           summary="人工放行: overrides that let through a vehicle the rules deny or a blacklisted one (all=true: "
                   "every override), newest first, with the cited passage and the rules that denied")
async def manual_releases(request: web.Request) -> web.Response:
    q = request.query
    enterprise_id = enterprise_scope(request, q.get("enterprise_id") or None)
    rows = await request.app[keys.POOL].fetch(
        """SELECT o.*, g.name AS gate_name, e.name AS enterprise_name FROM passage_overrides o
             LEFT JOIN gates g ON g.id = o.gate_id LEFT JOIN enterprises e ON e.id = o.enterprise_id
            WHERE ($1 OR o.manual_release) AND ($2::timestamptz IS NULL OR o.override_at >= $2)
              AND ($3::timestamptz IS NULL OR o.override_at < $3) AND ($4::text IS NULL OR o.gate_id = $4)
              AND ($5::text IS NULL OR o.enterprise_id = $5) AND ($6::text IS NULL OR o.plate = $6)
            ORDER BY o.override_at DESC, o.override_id LIMIT $7""",
        q.get("all") == "true", _bound(request, "from", False), _bound(request, "to", True),
        q.get("gate_id") or None, enterprise_id, q.get("plate") or None, min(int(q.get("limit", "500")), 10_000))
    releases = [{
        "passage_id": str(r["override_id"]), "at": r["override_at"], "gate_id": r["gate_id"],
        "gate_name": r["gate_name"], "enterprise_id": r["enterprise_id"], "enterprise_name": r["enterprise_name"],
        "plate": r["plate"], "cited_passage_id": str(r["cited_id"]), "cited_at": r["cited_at"],
        "cited_plate": r["cited_plate"], "cited_decision": r["cited_decision"],
        "plate_corrected": r["plate_corrected"], "manual_release": r["manual_release"],
        "blacklisted": r["blacklisted"], "denied_by": list(r["denied_by"]), "override_reason": r["override_reason"],
        "actor": r["actor"], "token_id": r["token_id"], "late_replay": r["late_replay"],
    } for r in rows]
    return json_response({"releases": releases, "count": len(releases)})
