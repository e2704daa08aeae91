"""Per-gate tracker: consecutive plate reads of one vehicle become one passage.

Pure and clock-free (times are passed in), so its behaviour on a sequence of reads is testable with
plain values. A track collects reads that resemble each other; it settles once the vote is clear, or
when the vehicle leaves (no read of it for ``leave_after`` seconds) if what was read is good enough. A
settled track keeps absorbing reads of the same plate, so a lorry waiting at the barrier is recorded
once; a different plate starts a new track at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from plate_reader import plates
from plate_reader.consensus import consensus
from plate_reader.reader import PlateRead


@dataclass(frozen=True)
class TrackerConfig:
    settle_reads: int = 3  # agreeing reads that settle a passage while the vehicle is still there
    settle_confidence: float = 0.85  # ... and the consensus must be at least this sure
    min_confidence: float = 0.3  # weaker reads are noise: a shadow, a half plate
    leave_after: float = 2.5  # seconds without a read of the vehicle: it has gone
    leave_settle_confidence: float = 0.5  # a vehicle that left settles on fewer reads if this sure
    same_vehicle_distance: int = 2  # reads this close (edits) to the track belong to it
    cooldown: float = 120.0  # the same plate again within this after settling is the same stop
    # Fast path: this many reads, all of the track and all the same plate, each with a calibrated probability of
    # being exact at least ``sure_probability``, settle at once (a frame sooner at the barrier). 0 turns it off.
    sure_reads: int = 2
    sure_probability: float = 0.95


@dataclass
class Settled:
    track_id: int
    plate: str
    color: str
    confidence: float
    frames: int
    first_at: datetime
    last_at: datetime
    best: PlateRead
    payload: Any  # what the caller attached to the best read (frame bytes, video reference)
    reason: str  # "clear_vote" | "sure_vote" | "left" | "cooldown"

    def read_json(self) -> dict[str, Any]:
        return {
            "text": self.plate,
            "color": self.color,
            "confidence": round(self.confidence, 4),
            # The calibrated chance the best single read was exact, when it names the settled plate.
            "probability": self.best.probability if self.best.plate == self.plate else None,
            "frames": self.frames,
            "box": list(self.best.box) if self.best.box else None,
            "settled_by": self.reason,
        }


def distance(a: str, b: str) -> int:
    """Levenshtein distance; plates are at most 8 characters, so the plain table is cheapest."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@dataclass
class _Track:
    id: int
    reads: list[PlateRead] = field(default_factory=list)
    first_at: datetime | None = None
    last_at: datetime | None = None
    best: PlateRead | None = None
    best_payload: Any = None
    settled: Settled | None = None

    def plate(self) -> str | None:
        if self.settled is not None:
            return self.settled.plate
        vote = consensus(self.reads)
        return vote.plate if vote else None

    def add(self, read: PlateRead, at: datetime, payload: Any) -> None:
        self.reads.append(read)
        # Bounded: a lorry parked at the barrier for an hour must not grow memory.
        if len(self.reads) > 30:
            del self.reads[:-30]
        self.first_at = self.first_at or at
        self.last_at = at
        if self.best is None or read.confidence > self.best.confidence:
            self.best, self.best_payload = read, payload


class Tracker:
    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._ids = itertools.count(1)
        self._track: _Track | None = None
        # Plates settled recently, with when they were last seen: the cooldown memory.
        self._recent: dict[str, datetime] = {}

    @property
    def current_plate(self) -> str | None:
        return self._track.plate() if self._track else None

    @property
    def current_settled(self) -> bool:
        return self._track is not None and self._track.settled is not None

    def hold(self, at: datetime) -> None:
        """The settled vehicle is still in view (the picture has not changed): keep its stop open."""
        track = self._track
        if track is not None and track.settled is not None:
            track.last_at = at
            self._recent[track.settled.plate] = at

    def feed(self, read: PlateRead, at: datetime, payload: Any = None) -> list[Settled]:
        events = self.tick(at)
        cfg = self.config
        if not read.plate or read.confidence < cfg.min_confidence:
            return events
        track = self._track
        if track is not None:
            current = track.plate() or read.plate
            if distance(current, read.plate) <= cfg.same_vehicle_distance:
                track.add(read, at, payload)
                if track.settled is not None:
                    self._recent[track.settled.plate] = at
                    return events
                settled = self._try_settle(track, leaving=False)
                return events + ([settled] if settled else [])
            events += self._close(track)
        track = _Track(next(self._ids))
        track.add(read, at, payload)
        self._track = track
        seen = self._recent.get(read.plate)
        if seen is not None and (at - seen).total_seconds() <= cfg.cooldown:
            # Back within the cooldown (it was hidden for a moment, or another lorry passed between):
            # the same stop, already recorded.
            track.settled = Settled(track.id, read.plate, read.color, read.confidence, 1, at, at, read, payload,
                                    "cooldown")
            self._recent[read.plate] = at
            return events
        settled = self._try_settle(track, leaving=False)
        return events + ([settled] if settled else [])

    def tick(self, now: datetime) -> list[Settled]:
        """Close the track when its vehicle has not been read for ``leave_after`` seconds."""
        track = self._track
        cutoff = self.config.cooldown
        self._recent = {p: t for p, t in self._recent.items() if (now - t).total_seconds() <= cutoff}
        if track is None or track.last_at is None:
            return []
        if (now - track.last_at).total_seconds() < self.config.leave_after:
            return []
        return self._close(track)

    def _close(self, track: _Track) -> list[Settled]:
        self._track = None
        if track.settled is not None:
            return []
        settled = self._try_settle(track, leaving=True)
        return [settled] if settled else []

    def _try_settle(self, track: _Track, *, leaving: bool) -> Settled | None:
        cfg = self.config
        vote = consensus(track.reads)
        if vote is None or not vote.plate or not plates.is_valid(vote.plate):
            return None
        agreeing = sum(1 for r in track.reads if r.plate == vote.plate)
        clear = agreeing >= cfg.settle_reads and vote.confidence >= cfg.settle_confidence
        sure = (not clear and cfg.sure_reads > 0 and agreeing == len(track.reads) >= cfg.sure_reads
                and all((r.probability or 0.0) >= cfg.sure_probability for r in track.reads))
        if not clear and not sure and not (leaving and vote.confidence >= cfg.leave_settle_confidence):
            return None
        assert track.first_at is not None and track.last_at is not None and track.best is not None
        settled = Settled(
            track_id=track.id, plate=vote.plate, color=vote.color, confidence=vote.confidence,
            frames=len(track.reads), first_at=track.first_at, last_at=track.last_at, best=track.best,
            payload=track.best_payload, reason="left" if leaving else "clear_vote" if clear else "sure_vote",
        )
        track.settled = settled
        self._recent[vote.plate] = track.last_at
        return settled


def replay_reads(tracker: Tracker, reads: Sequence[tuple[PlateRead, datetime]]) -> list[Settled]:
    """Feed a recorded sequence; handy for tests and for re-running a kiosk's log."""
    out: list[Settled] = []
    for read, at in reads:
        out.extend(tracker.feed(read, at))
    return out
