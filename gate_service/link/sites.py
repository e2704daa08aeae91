"""The platform's view of its sites (联网状态): online, uploaded, pending, the HJ 1321 upload rate, chain state."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from aiohttp import web

from gate_service import keys
from gate_service.auth import audit, enterprise_scope
from gate_service.errors import ApiError, not_found
from gate_service.link import enrol, store
from gate_service.policy.model import SHANGHAI
from gate_service.validation import parse_date
from gate_service.web import Api, json_response

api = Api()
TAG = "link"
RATE_TARGET = 0.95


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), SHANGHAI)
    return start, start + timedelta(days=1)


async def site_rows(pool: Any, settings: Any, enterprise_id: str | None, day: date,
                    days: int = 7) -> list[dict[str, Any]]:
    now = datetime.now(timezone.utc)
    delay = timedelta(seconds=settings.link_upload_delay_s)
    sites = await pool.fetch(
        """SELECT s.site_id, t.name, t.enterprise_id, t.revoked_at, s.public_key IS NOT NULL AS enrolled,
                  s.key_pinned_at, s.first_seen, s.last_seen, s.reported
           FROM link_sites s JOIN api_tokens t ON t.id = s.site_id
           WHERE ($1::text IS NULL OR t.enterprise_id = $1) ORDER BY s.site_id""", enterprise_id)
    first, _ = _day_bounds(day - timedelta(days=days - 1))
    _, end = _day_bounds(day)
    out = []
    for s in sites:
        site_id = s["site_id"]
        heads = await pool.fetch("SELECT * FROM link_gate_heads WHERE site_id = $1 ORDER BY gate_id", site_id)
        reported = (s["reported"] or {}).get("heads", {})
        acked = {h["gate_id"]: h["seq"] for h in heads}
        pending = sum(max(0, int(v[0]) - max(acked.get(g, 0), 0)) for g, v in reported.items())
        daily = await pool.fetch(
            """SELECT shanghai_day(at) AS day, count(*) AS passages,
                      count(*) FILTER (WHERE uploaded_at - recorded_at <= $4) AS on_time
               FROM passages WHERE origin_site = $1 AND at >= $2 AND at < $3 GROUP BY 1 ORDER BY 1""",
            site_id, first, end, delay)
        by_day = {r["day"]: r for r in daily}
        rates = []
        for i in range(days):
            d = day - timedelta(days=days - 1 - i)
            r = by_day.get(d)
            total = (r["passages"] if r else 0) + (pending if d == datetime.now(SHANGHAI).date() else 0)
            on_time = r["on_time"] if r else 0
            rates.append({"day": d, "passages": total, "on_time": on_time,
                          "rate": round(on_time / total, 4) if total else None})
        last = await pool.fetchrow(
            """SELECT at, extract(epoch FROM uploaded_at - recorded_at) AS lag FROM passages
               WHERE origin_site = $1 ORDER BY uploaded_at DESC NULLS LAST LIMIT 1""", site_id)
        last_passage = await pool.fetchval("SELECT max(at) FROM passages WHERE origin_site = $1", site_id)
        online = s["last_seen"] is not None and now - s["last_seen"] <= timedelta(seconds=settings.link_offline_after_s)
        broken = [h for h in heads if h["chain"] == "broken"]
        # Resolved breaks stay on the record (link_chain_resolutions is append-only).
        resolved = await pool.fetch(
            """SELECT id, gate_id, epoch, first_bad_seq, problem, broken_at, accepted_from_seq, merged, kept_apart,
                      reason, resolved_by, resolved_at FROM link_chain_resolutions WHERE site_id = $1 ORDER BY id""",
            site_id)
        problems: list[dict[str, Any]] = []
        if not s["enrolled"]:
            problems.append({"code": "not_enrolled", "message": "站点尚未登记公钥 / the site has not registered its key"})
        if s["last_seen"] is not None and not online:
            problems.append({"code": "offline", "message": f"超过 {settings.link_offline_after_s // 60} 分钟无心跳 / "
                             "no heartbeat", "since": s["last_seen"]})
        for h in broken:
            if (h["problem"] or "").startswith(store.ROW_REFUSED):
                rule = h["problem"].partition(": ")[2]
                problems.append({"code": "row_refused", "gate_id": h["gate_id"], "seq": h["first_bad_seq"],
                                 "rule": rule, "detected_at": h["broken_at"], "quarantined_upto": h["quarantine_seq"],
                                 "message": f"平台数据库拒收第 {h['first_bad_seq']} 行({rule}),该行及其后各行已隔离,"
                                            "待管理员处理 / a row broke a platform database rule; it and later rows "
                                            "are kept apart"})
                continue
            problems.append({"code": "chain_broken", "gate_id": h["gate_id"], "first_bad_seq": h["first_bad_seq"],
                             "message": f"台账链断裂:{h['problem']} / chain broken", "detected_at": h["broken_at"],
                             "quarantined_upto": h["quarantine_seq"]})
        today = rates[-1]
        if today["rate"] is not None and today["rate"] < RATE_TARGET:
            problems.append({"code": "upload_rate_low", "message": f"上传率 {today['rate']:.1%} 低于 95% / "
                             "upload rate below 95%"})
        if s["revoked_at"] is not None:
            problems.append({"code": "token_revoked", "message": "站点令牌已吊销 / the site token is revoked"})
        out.append({
            "site_id": site_id, "name": s["name"], "enterprise_id": s["enterprise_id"], "online": online,
            "last_seen": s["last_seen"], "enrolled": s["enrolled"], "key_pinned_at": s["key_pinned_at"],
            "uploaded": sum(acked.values()), "pending": pending,
            "upload_rate": today["rate"], "upload_rate_days": rates, "upload_delay_s": settings.link_upload_delay_s,
            "lag_s": round(float(last["lag"]), 1) if last and last["lag"] is not None else None,
            "chain": "broken" if broken else ("ok" if heads else "unknown"),
            "resolved_breaks": [dict(r) for r in resolved],
            "gates": [{"gate_id": h["gate_id"], "acked_seq": h["seq"], "acked_at": h["acked_at"], "chain": h["chain"],
                       "first_bad_seq": h["first_bad_seq"], "epoch": h["epoch"],
                       "site_seq": int(reported[h["gate_id"]][0]) if h["gate_id"] in reported else None}
                      for h in heads],
            "last_passage": last_passage,
            "problems": problems,
        })
    return out


@api.route("GET", "/api/v1/sites", roles=("admin", "ecology", "enterprise"), tag=TAG,
           query={"enterprise_id": {"type": "string"}, "day": {"type": "string", "format": "date"}},
           summary="联网状态: every enrolled site (an enterprise sees its own): online, uploaded, pending, upload "
                   "rate (HJ 1321), chain state, problems")
async def list_sites(request: web.Request) -> web.Response:
    enterprise_id = enterprise_scope(request, request.query.get("enterprise_id"))
    day = parse_date(request.query["day"], "day") if request.query.get("day") else datetime.now(SHANGHAI).date()
    rows = await site_rows(request.app[keys.READ_POOL], request.app[keys.SETTINGS], enterprise_id, day)
    return json_response({"sites": rows, "count": len(rows), "upload_rate_target": RATE_TARGET})


@api.route("POST", "/api/v1/sites/{site_id}/reenrol", roles=("admin",), tag=TAG, body={"type": "object"},
           summary="Forget a site's pinned key (a replaced site box): its next contact pins the new one")
async def reenrol_site(request: web.Request) -> web.Response:
    try:
        site_id = int(request.match_info["site_id"])
    except ValueError:
        raise ApiError(422, "invalid_site_id", "站点编号应为整数 / site_id must be an integer", field="site_id") from None
    async with request.app[keys.POOL].acquire() as conn, conn.transaction():
        if not await enrol.reenrol(conn, site_id):
            raise not_found("站点", str(site_id))
        await audit(conn, request, "site.reenrol", str(site_id), request.get(keys.BODY) or {})
    return json_response({"site_id": site_id, "enrolled": False})
