"""Per-gate tracker: consecutive plate reads of one vehicle become one passage.

Pure and clock-free (times are passed in), so its behaviour on a sequence of reads is testable with
plain values. A track collects reads that resemble each other; it settles once the vote is clear, or
when the vehicle leaves (no read of it for ``leave_after`` seconds) if what was read is good enough. A
settled track keeps absorbing reads of the same plate, so a lorry waiting at the barrier is recorded
once; a different plate starts a new track at once.

One vehicle, one passage (issue 15 item 16): within one stop, a plate one character from the one just recorded is
that vehicle misread, not a second one; and a single weak read that the gate would deny (``would_deny``, the
judge's guess from its in-memory facts) does not settle when the vehicle seems to leave, but waits for the next
frame of it, whose reads then join the same vote, so a misread unregistered plate is not denied in a flash
before the real one is read.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
    # Within one stop (a read this soon after the recorded vehicle was last seen), a plate this few characters
    # from it is that vehicle. Short, so that the next lorry of a fleet (plates one apart) is its own passage.
    same_stop_distance: int = 1
    same_stop_gap: float = 5.0
    # A single weak read that would be denied waits this long after it for another frame of the vehicle.
    weak_denial_wait: float = 10.0


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
    # Set while a weak denial waits for the next frame (the vehicle seemed to leave after one weak read).
    waiting_until: datetime | None = None

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


# (plate, moment) -> would the gate deny it? Pure and quick: it is asked on the tracker's path.
WouldDeny = Callable[[str, datetime], bool]


class Tracker:
    def __init__(self, config: TrackerConfig | None = None, *, would_deny: WouldDeny | None = None) -> None:
        self.config = config or TrackerConfig()
        self.would_deny = would_deny
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
                track.waiting_until = None  # the next frame came: an ordinary track again
                if track.settled is not None:
                    self._recent[track.settled.plate] = at
                    return events
                settled = self._try_settle(track, leaving=False)
                return events + ([settled] if settled else [])
            # Another vehicle: the one tracked has gone, whether or not its weak read was waiting.
            events += self._close(track, forced=True)
        track = _Track(next(self._ids))
        track.add(read, at, payload)
        self._track = track
        stop = self._same_stop(read.plate, at)
        if stop is not None:
            # Back within the cooldown (it was hidden for a moment, or another lorry passed between), or the
            # vehicle just recorded read one character differently: the same stop, already recorded.
            track.settled = Settled(track.id, stop, read.color, read.confidence, 1, at, at, read, payload,
                                    "cooldown")
            self._recent[stop] = at
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
        if track.waiting_until is not None:
            return self._close(track, forced=True) if now >= track.waiting_until else []
        if (now - track.last_at).total_seconds() < self.config.leave_after:
            return []
        return self._close(track)

    def _same_stop(self, plate: str, at: datetime) -> str | None:
        """The recently recorded plate this read belongs to, if any."""
        cfg = self.config
        seen = self._recent.get(plate)
        if seen is not None and (at - seen).total_seconds() <= cfg.cooldown:
            return plate
        near = [(t, p) for p, t in self._recent.items()
                if (at - t).total_seconds() <= cfg.same_stop_gap and distance(p, plate) <= cfg.same_stop_distance]
        return max(near)[1] if near else None

    def _close(self, track: _Track, *, forced: bool = False) -> list[Settled]:
        if track.settled is not None:
            self._track = None
            return []
        vote = self._vote(track, leaving=True)
        if vote is not None and not forced and self._weak_denial(track, vote):
            assert track.last_at is not None
            track.waiting_until = track.last_at + timedelta(seconds=self.config.weak_denial_wait)
            return []  # stays the current track: the next frame of the vehicle joins its vote
        self._track = None
        if vote is None:
            return []
        self._commit(track, vote)
        return [vote]

    def _weak_denial(self, track: _Track, vote: Settled) -> bool:
        if self.would_deny is None or len(track.reads) != 1:
            return False
        only = track.reads[0]
        if (only.probability or 0.0) >= self.config.sure_probability:
            return False
        return self.would_deny(vote.plate, vote.first_at)

    def _try_settle(self, track: _Track, *, leaving: bool) -> Settled | None:
        settled = self._vote(track, leaving=leaving)
        if settled is not None:
            self._commit(track, settled)
        return settled

    def _commit(self, track: _Track, settled: Settled) -> None:
        track.settled = settled
        self._recent[settled.plate] = settled.last_at

    def _vote(self, track: _Track, *, leaving: bool) -> Settled | None:
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
        return settled


def replay_reads(tracker: Tracker, reads: Sequence[tuple[PlateRead, datetime]]) -> list[Settled]:
    """Feed a recorded sequence; handy for tests and for re-running a kiosk's log."""
    out: list[Settled] = []
    for read, at in reads:
        out.extend(tracker.feed(read, at))
    return out
