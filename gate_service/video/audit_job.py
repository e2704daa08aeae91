"""The nightly video self-audit of alert days: for every gate with video on a day a heavy-pollution alert was in
force, a sample of it (10 minutes, HJ 1321 asks for 5–10) is audited like an inspector would."""

from __future__ import annotations

import hashlib
import logging
from datetime import date, datetime, timedelta
from typing import Any

from gate_service.jobs import JobContext, job
from gate_service.policy.model import SHANGHAI

log = logging.getLogger(__name__)

SAMPLE = timedelta(minutes=10)


def sample_start(gate_id: str, day: date, windows: list[tuple[datetime, datetime]]) -> datetime | None:
    """A reproducible, unannounced 10-minute window inside the gate's recorded video of the alert hours.

    Chosen from a hash of gate and day: the same each time it is asked (an audit can be re-run and compared),
    unknowable to a site in advance without the code.
    """
    usable = [(a, b) for a, b in windows if b - a >= SAMPLE]
    if not usable:
        return None
    total = sum(((b - a) - SAMPLE).total_seconds() for a, b in usable)
    pick = int(hashlib.sha256(f"{gate_id}/{day.isoformat()}".encode()).hexdigest(), 16) % max(1, int(total) + 1)
    for a, b in usable:
        room = ((b - a) - SAMPLE).total_seconds()
        if pick <= room:
            return a + timedelta(seconds=pick)
        pick -= int(room) + 1
    return usable[-1][0]


@job("video_audit", hour=4, minute=15, description="audit a 10-minute sample of every gate's video on yesterday's "
                                                   "alert hours against the ledger (视频核查)")
async def _video_audit(ctx: JobContext, today: date) -> dict[str, Any]:
    from gate_service.video.audit_routes import start_audit

    day = today - timedelta(days=1)
    start = datetime.combine(day, datetime.min.time(), SHANGHAI)
    end = start + timedelta(days=1)
    alerts = await ctx.pool.fetch(
        """SELECT greatest(starts_at, $1) AS a, least(ends_at, $2) AS b FROM alerts
           WHERE cancelled_at IS NULL AND starts_at < $2 AND ends_at > $1""", start, end)
    if not alerts:
        return {"day": day, "alert": False}
    if ctx.app is None:
        return {"day": day, "skipped": "needs the running service (its plate reader)"}
    started = []
    gates = await ctx.pool.fetch(
        "SELECT DISTINCT gate_id FROM video_segments WHERE started_at < $2 AND ended_at > $1 AND deleted_at IS NULL",
        start, end)
    for gate in gates:
        segments = await ctx.pool.fetch(
            """SELECT started_at, ended_at FROM video_segments
               WHERE gate_id = $1 AND deleted_at IS NULL AND status <> 'recording' AND started_at < $3
                 AND ended_at > $2 ORDER BY started_at""", gate["gate_id"], start, end)
        windows = []
        for alert in alerts:
            for seg in segments:
                a, b = max(alert["a"], seg["started_at"]), min(alert["b"], seg["ended_at"])
                if b > a:
                    if windows and windows[-1][1] >= a:
                        windows[-1] = (windows[-1][0], max(windows[-1][1], b))
                    else:
                        windows.append((a, b))
        begin = sample_start(gate["gate_id"], day, windows)
        if begin is None:
            continue
        audit_id = await start_audit(ctx.app, gate["gate_id"], begin, begin + SAMPLE, "job:video_audit",
                                     timedelta(seconds=120))
        started.append({"gate_id": gate["gate_id"], "from": begin, "audit_id": audit_id})
    return {"day": day, "alert": True, "audits": started}
