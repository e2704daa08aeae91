"""The alert-day comparison inspectors make by hand (三(六)27/28), as a pure function over what the store read.

For one enterprise and a set of local days (an alert's days, or any days):
- each day's trips in / out (allowed, overrides counted once, as the reports count) and denials, beside the
  enterprise's own baseline: the median of the previous 10 ordinary working days (``days`` defines "ordinary");
- heavy trucks at 国4 or below (and unregistered vehicles, whose stage nobody knows) admitted while an orange or
  red alert was in force — there should be none; each is listed with its passage;
- 人工放行: override rows, with the row each overrode;
- gates that went silent: no passage at a gate whose baseline is above zero, and stretches of at least
  ``VIDEO_GAP_MIN_S`` without video at a gate that records video.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from gate_service.inspection import days as d
from gate_service.policy.model import SHANGHAI

# A stretch without video this long or longer is a gap: the 5-10 minute clips inspectors take must exist.
VIDEO_GAP_MIN_S = 300
ALERT_DAY_LEVELS = ("orange", "red")


def local_days(start: datetime, end: datetime, first: date | None = None, last: date | None = None) -> list[date]:
    """The local days a span [start, end) touches, clipped to first..last when given (an alert may be declared
    over centuries: only the days asked about are ever listed)."""
    lo = _local_date(start)
    if lo is None:  # starts after the last local day there is
        return []
    hi = _local_date(end - timedelta(microseconds=1)) or date.max
    if first is not None:
        lo = max(lo, first)
    if last is not None:
        hi = min(hi, last)
    return d.days_between(lo, hi) if lo <= hi else []


def _local_date(moment: datetime) -> date | None:
    # The last 8 hours of 9999-12-31 UTC (a row written by hand) have no local day: None.
    try:
        return moment.astimezone(SHANGHAI).date()
    except OverflowError:
        return None


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, SHANGHAI)
    return start, start + timedelta(days=1)


def alert_days(alerts: Iterable[Mapping[str, Any]], first: date, last: date,
               levels: Sequence[str] | None = None) -> dict[date, list[str]]:
    """{local day of first..last: levels of the alerts in force at some moment of it}, for alerts of ``levels``
    (all: None)."""
    out: dict[date, list[str]] = defaultdict(list)
    for a in alerts:
        if levels is None or a["level"] in levels:
            for day in local_days(a["starts_at"], a["ends_at"], first, last):
                if a["level"] not in out[day]:
                    out[day].append(a["level"])
    return dict(out)


def alert_spans(alerts: Iterable[Mapping[str, Any]], days: Iterable[date]) -> list[tuple[datetime, datetime]]:
    """The moments of the given days during which an orange or red alert was in force."""
    spans = []
    for day in sorted(set(days)):
        lo, hi = day_bounds(day)
        for a in alerts:
            if a["level"] in ALERT_DAY_LEVELS and a["starts_at"] < hi and a["ends_at"] > lo:
                spans.append((max(lo, a["starts_at"]), min(hi, a["ends_at"])))
    return spans


def video_gaps(segments: Iterable[Mapping[str, Any]], start: datetime, end: datetime,
               min_gap_s: int = VIDEO_GAP_MIN_S) -> tuple[float, list[dict[str, Any]]]:
    """(minutes covered by video, the uncovered stretches of at least ``min_gap_s``) within [start, end).
    A segment still recording (no end) covers up to ``end``."""
    covered = []
    for s in segments:
        lo, hi = max(s["started_at"], start), min(s["ended_at"] or end, end)
        if hi > lo:
            covered.append((lo, hi))
    covered.sort()
    gaps, minutes, cursor = [], 0.0, start
    for lo, hi in covered:
        if lo > cursor and (lo - cursor).total_seconds() >= min_gap_s:
            gaps.append({"from": cursor, "to": lo, "minutes": round((lo - cursor).total_seconds() / 60, 1)})
        if hi > cursor:
            minutes += (hi - max(lo, cursor)).total_seconds() / 60
            cursor = hi
    if end > cursor and (end - cursor).total_seconds() >= min_gap_s:
        gaps.append({"from": cursor, "to": end, "minutes": round((end - cursor).total_seconds() / 60, 1)})
    return round(minutes, 1), gaps


def comparison(
    enterprise: Mapping[str, Any],
    days: Sequence[date],
    *,
    gates: Sequence[Mapping[str, Any]],
    gate_days: Iterable[Mapping[str, Any]],
    alerts: Sequence[Mapping[str, Any]],
    heavy: Sequence[Mapping[str, Any]],
    overrides: Sequence[Mapping[str, Any]],
    segments: Sequence[Mapping[str, Any]],
    video_gates: set[str],
    now: datetime,
    extra_holidays: Iterable[date] = (),
) -> dict[str, Any]:
    """The comparison for ``days`` (see the module). ``gate_days`` must cover ``days`` and the
    ``LOOKBACK_DAYS`` before the first of them; ``alerts`` every alert touching that window."""
    wanted = sorted(set(days))
    per_gate: dict[str, dict[date, Mapping[str, Any]]] = defaultdict(dict)
    trips_in: dict[date, int] = defaultdict(int)
    trips_out: dict[date, int] = defaultdict(int)
    denied: dict[date, int] = defaultdict(int)
    for row in gate_days:
        per_gate[row["gate_id"]][row["day"]] = row
        trips_in[row["day"]] += row["trips_in"]
        trips_out[row["day"]] += row["trips_out"]
        denied[row["day"]] += row["denied"]
    window = d.days_between(wanted[0] - timedelta(days=d.LOOKBACK_DAYS), wanted[-1]) if wanted else []
    any_alert = alert_days(alerts, window[0], window[-1]) if window else {}
    severe = alert_days(alerts, window[0], window[-1], ALERT_DAY_LEVELS) if window else {}
    reporting = {day for day in window if trips_in.get(day, 0) + trips_out.get(day, 0) > 0}
    # Days of the set are never their own baseline, whatever they are.
    ordinary = [day for day in d.ordinary_days(window, any_alert, reporting, frozenset(extra_holidays))
                if day not in set(wanted)]

    rows = []
    for day in wanted:
        base_in, used = d.baseline(day, ordinary, trips_in)
        base_out, _ = d.baseline(day, ordinary, trips_out)
        rows.append({
            "day": day.isoformat(), "weekday": day.isoweekday(), "alert_levels": any_alert.get(day, []),
            "trips_in": trips_in.get(day, 0), "trips_out": trips_out.get(day, 0), "denied": denied.get(day, 0),
            "baseline_in": base_in, "baseline_out": base_out,
            "in_vs_baseline": d.share(trips_in.get(day, 0), base_in),
            "out_vs_baseline": d.share(trips_out.get(day, 0), base_out),
            "baseline_days": [b.isoformat() for b in used],
        })

    by_gate_segments: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for s in segments:
        by_gate_segments[s["gate_id"]].append(s)
    gate_rows, silent = [], 0
    for g in gates:
        counts = {day: r["passages"] for day, r in per_gate.get(g["id"], {}).items()}
        gdays = []
        for day in wanted:
            base, _ = d.baseline(day, ordinary, counts)
            lo, hi = day_bounds(day)
            hi = min(hi, max(lo, now))  # today: only the part of the day that has happened
            video = None
            if g["id"] in video_gates:
                minutes, gaps = video_gaps(by_gate_segments.get(g["id"], []), lo, hi)
                video = {"covered_minutes": minutes, "gaps": [_gap_json(x) for x in gaps]}
            # A day that has not begun cannot have gone silent.
            no_passages = counts.get(day, 0) == 0 and bool(base) and lo < now
            is_silent = no_passages or bool(video and video["gaps"])
            silent += is_silent
            gdays.append({"day": day.isoformat(), "passages": counts.get(day, 0), "baseline_passages": base,
                          "no_passages": no_passages, "video": video, "silent": is_silent})
        gate_rows.append({"gate_id": g["id"], "gate_name": g.get("name"), "records_video": g["id"] in video_gates,
                          "days": gdays})

    heavy_rows = [passage_json(p) for p in heavy]
    override_rows = [override_json(p) for p in overrides]
    return {
        "enterprise_id": enterprise["id"],
        "enterprise_name": enterprise.get("name"),
        "days": rows,
        "alert_days": [day.isoformat() for day in wanted if day in severe],
        "ordinary_days_considered": [day.isoformat() for day in ordinary],
        "heavy_low_stage_admitted": heavy_rows,
        "overrides": override_rows,
        "gates": gate_rows,
        "summary": {
            "days": len(wanted),
            "trips_in": sum(r["trips_in"] for r in rows),
            "trips_out": sum(r["trips_out"] for r in rows),
            "heavy_low_stage_admitted": len(heavy_rows),
            "overrides": len(override_rows),
            "silent_gate_days": silent,
        },
        "definitions": DEFINITIONS,
    }


DEFINITIONS = {
    "ordinary_day": "普通工作日：周一至周五、非法定节假日、当日无任何级别重污染天气预警、企业门岗当日有放行记录 / "
                    "Mon-Fri, not a statutory holiday, no alert of any level that day, at least one allowed passage",
    "baseline": f"基准：此前{d.BASELINE_DAYS}个普通工作日（回溯不超过{d.LOOKBACK_DAYS}天，少于{d.MIN_BASELINE_DAYS}天则无基准）的中位数 / "
                f"median of the previous {d.BASELINE_DAYS} ordinary working days",
    "trips": "车次：放行记录，人工放行只计一次（与清洁运输统计口径相同） / allowed passages, overrides counted once",
    "heavy_low_stage": "橙色/红色预警期间放行的国四及以下重型货车（含混凝土搅拌车、渣土车）及未登记车辆 / "
                       "heavy trucks at China IV or below, or unregistered, admitted during an orange/red alert",
    "silent_gate": f"门岗静默：当日无通行记录而基准大于0，或有录像的门岗出现≥{VIDEO_GAP_MIN_S // 60}分钟的录像缺口 / "
                   f"no passages against a non-zero baseline, or a video gap of at least {VIDEO_GAP_MIN_S // 60} min",
}


def _gap_json(gap: Mapping[str, Any]) -> dict[str, Any]:
    return {"from": gap["from"].isoformat(), "to": gap["to"].isoformat(), "minutes": gap["minutes"]}


def passage_json(p: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "passage_id": str(p["id"]), "at": p["at"].isoformat(), "gate_id": p["gate_id"], "gate_seq": p["gate_seq"],
        "direction": p["direction"], "plate": p["plate"], "registered": p["registered"],
        "emission_stage": p["emission_stage"], "fuel_type": p["fuel_type"], "vehicle_class": p["vehicle_class"],
        "decision": p["decision"], "rules": list(p["rules"] or []), "alert_level": p["alert_level"],
        "source": p["source"], "tonnes": float(p["tonnes"]) if p["tonnes"] is not None else None,
        "overrides": str(p["overrides"]) if p.get("overrides") else None,
        "override_reason": p.get("override_reason"), "actor": p.get("actor"),
    }


def override_json(p: Mapping[str, Any]) -> dict[str, Any]:
    out = passage_json(p)
    out["overridden"] = {
        "at": p["overridden_at"].isoformat() if p.get("overridden_at") else None,
        "decision": p.get("overridden_decision"),
        "rules": list(p.get("overridden_rules") or []),
        "plate": p.get("overridden_plate"),
        "blacklisted": p.get("overridden_blacklisted"),
    }
    return out
