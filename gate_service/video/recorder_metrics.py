"""The recorder's counters in ``/metrics`` (a no-op when the service runs without a metrics registry)."""

from __future__ import annotations

from typing import Any


class RecorderMetrics:
    def __init__(self, metrics: Any) -> None:
        registry = getattr(metrics, "registry", None)
        self._on = registry is not None
        if self._on:
            self._written = registry.counter("cleangate_video_frames_written_total",
                                             "Frames written to video segments, by gate")
            self._left_out = registry.counter("cleangate_video_frames_left_out_total",
                                              "Frames left out of the video (faster than its frame rate or "
                                              "encoder behind), by gate")
            self._closed = registry.counter("cleangate_video_segments_closed_total",
                                            "Video segments closed, by status")
            self._provisional = registry.counter("cleangate_video_segments_provisional_total",
                                                 "Video segments recorded to local disk while the database was "
                                                 "unreachable, by gate")
            self._indexed_late = registry.counter("cleangate_video_segments_indexed_late_total",
                                                  "Provisional video segments indexed once the database was back")
            self._pending = registry.gauge("cleangate_video_pending_index",
                                           "Finished video segments waiting in the spool to be indexed")

    def written(self, gate_id: str, n: int) -> None:
        if self._on and n:
            self._written.inc(n, gate=gate_id)

    def left_out(self, gate_id: str) -> None:
        if self._on:
            self._left_out.inc(gate=gate_id)

    def closed(self, gate_id: str, status: str) -> None:
        if self._on:
            self._closed.inc(status=status)

    def provisional(self, gate_id: str) -> None:
        if self._on:
            self._provisional.inc(gate=gate_id)

    def indexed_late(self, n: int) -> None:
        if self._on:
            self._indexed_late.inc(n)

    def pending(self, n: int) -> None:
        if self._on:
            self._pending.set(n)
