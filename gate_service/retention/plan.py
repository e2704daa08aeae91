"""What retention may delete on a given day: pure, so the plan printed is the plan applied.

The plan's minimums (三(一)3): video at least 6 months (183 days), the ledger at least 24 months. Settings can
only raise them. Ages are measured from the start of ``as_of`` (Asia/Shanghai), so whatever the hour the job
runs, everything listed is older than the limit for the whole of that day.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from gate_service.config import Settings
from gate_service.policy.model import SHANGHAI

MIN_VIDEO_DAYS = 183
MIN_LEDGER_MONTHS = 24
_PARTITION = re.compile(r"^passages_(\d{4})(\d{2})$")


@dataclass(frozen=True)
class Partition:
    """One monthly ledger partition, with its bounds as the database has them ([start, end))."""

    name: str
    start: datetime
    end: datetime
    rows: int | None = None

    @classmethod
    def from_name(cls, name: str) -> Partition | None:
        # ensure_passage_partition() names them passages_YYYYMM with UTC month bounds.
        match = _PARTITION.match(name)
        if not match:
            return None
        year, month = int(match.group(1)), int(match.group(2))
        if not 1 <= month <= 12:
            return None
        start = datetime(year, month, 1, tzinfo=timezone.utc)
        end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc)
        return cls(name, start, end)


@dataclass(frozen=True)
class Segment:
    id: int
    gate_id: str
    started_at: datetime
    ended_at: datetime | None
    storage_key: str
    bytes: int | None = None
    legal_hold: bool = False
    hold_case_ref: str | None = None
    deleted: bool = False

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Segment:
        return cls(
            id=row["id"], gate_id=row["gate_id"], started_at=row["started_at"], ended_at=row["ended_at"],
            storage_key=row["storage_key"], bytes=row.get("bytes"), legal_hold=bool(row.get("legal_hold")),
            hold_case_ref=row.get("hold_case_ref"),
            deleted=bool(row.get("deleted")) or row.get("deleted_at") is not None,
        )


@dataclass(frozen=True)
class Limits:
    video_days: int
    ledger_months: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RetentionPlan:
    as_of: date
    limits: Limits
    # Ledger rows strictly before this moment, and segments that ended at or before that one, may go.
    ledger_cutoff: datetime
    video_cutoff: datetime
    partitions: tuple[Partition, ...] = ()
    segments: tuple[Segment, ...] = ()
    # Old enough, but under legal hold: kept.
    held: tuple[Segment, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def video_bytes(self) -> int:
        return sum(s.bytes or 0 for s in self.segments)

    @property
    def empty(self) -> bool:
        return not self.partitions and not self.segments


def limits(settings: Settings) -> Limits:
    """The limits in force: the configured ones, raised to the plan's minimums."""
    notes = []
    days, months = settings.video_retention_days, settings.ledger_retention_months
    if days < MIN_VIDEO_DAYS:
        notes.append(f"video_retention_days {days} is below the minimum; {MIN_VIDEO_DAYS} days apply (三(一)3)")
        days = MIN_VIDEO_DAYS
    if months < MIN_LEDGER_MONTHS:
        notes.append(f"ledger_retention_months {months} is below the minimum; {MIN_LEDGER_MONTHS} months apply "
                     "(三(一)3)")
        months = MIN_LEDGER_MONTHS
    return Limits(days, months, tuple(notes))


def months_before(day: date, months: int) -> date:
    """The same day of the month ``months`` earlier, or that month's last day when it is shorter."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    next_first = date(year + (month == 12), month % 12 + 1, 1)
    return date(year, month, min(day.day, (next_first - timedelta(days=1)).day))


def cutoffs(as_of: date, settings: Settings) -> tuple[datetime, datetime, Limits]:
    """(ledger cutoff, video cutoff, limits) for ``as_of``."""
    lim = limits(settings)
    day_start = datetime.combine(as_of, time.min, SHANGHAI)
    ledger = datetime.combine(months_before(as_of, lim.ledger_months), time.min, SHANGHAI)
    video = day_start - timedelta(days=lim.video_days)
    return ledger, video, lim


def plan(
    as_of: date,
    ledger_partitions: Iterable[Partition | str],
    segments: Iterable[Segment | Mapping[str, Any]],
    settings: Settings,
) -> RetentionPlan:
    """What may go on ``as_of``: whole ledger partitions entirely older than the ledger limit, and closed
    video segments that ended longer ago than the video limit and are not under legal hold."""
    ledger_cutoff, video_cutoff, lim = cutoffs(as_of, settings)
    notes = list(lim.notes)
    drop: list[Partition] = []
    for item in ledger_partitions:
        part = Partition.from_name(item) if isinstance(item, str) else item
        if part is None:
            notes.append(f"{item}: not a monthly ledger partition; never dropped")
            continue
        # Entirely older: its upper bound (exclusive) is at or before the cutoff.
        if part.end <= ledger_cutoff:
            drop.append(part)
    drop.sort(key=lambda p: p.start)

    expired: list[Segment] = []
    held: list[Segment] = []
    for item in segments:
        seg = item if isinstance(item, Segment) else Segment.from_row(item)
        # Still recording (no end) or already deleted: nothing to decide.
        if seg.deleted or seg.ended_at is None or seg.ended_at > video_cutoff:
            continue
        (held if seg.legal_hold else expired).append(seg)
    expired.sort(key=lambda s: (s.ended_at, s.id))
    held.sort(key=lambda s: (s.ended_at, s.id))
    return RetentionPlan(as_of, lim, ledger_cutoff, video_cutoff, tuple(drop), tuple(expired), tuple(held),
                         tuple(notes))


def describe(p: RetentionPlan, *, verbose: bool = False) -> list[str]:
    """The plan in lines for people (the CLI prints them, the job logs them)."""
    lines = [
        f"retention plan as of {p.as_of.isoformat()} (Asia/Shanghai)",
        f"  ledger: keep {p.limits.ledger_months} months -> rows before {p.ledger_cutoff.isoformat()} may go",
        f"  video:  keep {p.limits.video_days} days -> segments ended by {p.video_cutoff.isoformat()} may go",
    ]
    lines += [f"  note: {n}" for n in p.notes]
    lines.append(f"ledger partitions to drop: {len(p.partitions)}")
    for part in p.partitions:
        rows = "" if part.rows is None else f", {part.rows} rows"
        lines.append(f"  {part.name}  [{part.start.isoformat()} .. {part.end.isoformat()}){rows}")
    lines.append(f"video segments to delete: {len(p.segments)} ({p.video_bytes} bytes)")
    if verbose:
        for seg in p.segments:
            lines.append(f"  #{seg.id} gate {seg.gate_id} {seg.started_at.isoformat()} .. "
                         f"{seg.ended_at.isoformat() if seg.ended_at else '?'} {seg.bytes or 0} bytes")
    else:
        by_gate_day: dict[tuple[str, date], list[Segment]] = {}
        for seg in p.segments:
            by_gate_day.setdefault((seg.gate_id, seg.started_at.astimezone(SHANGHAI).date()), []).append(seg)
        for (gate, day), segs in sorted(by_gate_day.items()):
            lines.append(f"  gate {gate} {day.isoformat()}: {len(segs)} segment(s), "
                         f"{sum(s.bytes or 0 for s in segs)} bytes (#{segs[0].id}..#{segs[-1].id})")
    lines.append(f"kept under legal hold although old enough: {len(p.held)}")
    for seg in p.held:
        lines.append(f"  #{seg.id} gate {seg.gate_id} ended {seg.ended_at.isoformat() if seg.ended_at else '?'}"
                     + (f" case {seg.hold_case_ref}" if seg.hold_case_ref else ""))
    return lines


def as_json(p: RetentionPlan) -> dict[str, Any]:
    def seg(s: Segment) -> dict[str, Any]:
        return {"id": s.id, "gate_id": s.gate_id, "started_at": s.started_at.isoformat(),
                "ended_at": s.ended_at.isoformat() if s.ended_at else None, "storage_key": s.storage_key,
                "bytes": s.bytes, "legal_hold": s.legal_hold, "hold_case_ref": s.hold_case_ref}

    return {
        "as_of": p.as_of.isoformat(),
        "ledger_retention_months": p.limits.ledger_months,
        "video_retention_days": p.limits.video_days,
        "ledger_cutoff": p.ledger_cutoff.isoformat(),
        "video_cutoff": p.video_cutoff.isoformat(),
        "notes": list(p.notes),
        "partitions": [{"name": x.name, "from": x.start.isoformat(), "to": x.end.isoformat(), "rows": x.rows}
                       for x in p.partitions],
        "segments": [seg(s) for s in p.segments],
        "video_bytes": p.video_bytes,
        "held": [seg(s) for s in p.held],
    }
