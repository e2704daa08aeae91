"""Prometheus text exposition without a dependency: counters, gauges and histograms with labels."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Sequence

LabelKey = tuple[tuple[str, str], ...]


def _key(labels: dict[str, str]) -> LabelKey:
    return tuple(sorted(labels.items()))


def _fmt(key: LabelKey, extra: str = "") -> str:
    parts = [f'{k}="{v}"' for k, v in key]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Metric:
    def __init__(self, name: str, help_text: str, kind: str) -> None:
        self.name, self.help, self.kind = name, help_text, kind
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(Metric):
    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text, "counter")
        self.values: dict[LabelKey, float] = defaultdict(float)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        with self._lock:
            self.values[_key(labels)] += amount

    def value(self, **labels: str) -> float:
        return self.values.get(_key(labels), 0.0)

    def render(self) -> list[str]:
        return self.header() + [f"{self.name}{_fmt(k)} {v}" for k, v in sorted(self.values.items())]


class Gauge(Counter):
    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self.kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        with self._lock:
            self.values[_key(labels)] = value


class Histogram(Metric):
    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        super().__init__(name, help_text, "histogram")
        self.buckets = list(buckets)
        self.counts: dict[LabelKey, list[int]] = {}
        self.sums: dict[LabelKey, float] = defaultdict(float)

    def observe(self, value: float, **labels: str) -> None:
        key = _key(labels)
        with self._lock:
            counts = self.counts.setdefault(key, [0] * (len(self.buckets) + 1))
            counts[bisect.bisect_left(self.buckets, value)] += 1
            self.sums[key] += value

    def render(self) -> list[str]:
        lines = self.header()
        for key, counts in sorted(self.counts.items()):
            running = 0
            for bound, count in zip([*self.buckets, float("inf")], counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                bucket_label = 'le="' + le + '"'
                lines.append(f"{self.name}_bucket{_fmt(key, bucket_label)} {running}")
            lines.append(f"{self.name}_sum{_fmt(key)} {self.sums[key]}")
            lines.append(f"{self.name}_count{_fmt(key)} {running}")
        return lines


class Registry:
    def __init__(self) -> None:
        self.metrics: list[Metric] = []

    def counter(self, name: str, help_text: str) -> Counter:
        return self._add(Counter(name, help_text))

    def gauge(self, name: str, help_text: str) -> Gauge:
        return self._add(Gauge(name, help_text))

    def histogram(self, name: str, help_text: str, buckets: Sequence[float]) -> Histogram:
        return self._add(Histogram(name, help_text, buckets))

    def _add(self, metric: Metric):  # type: ignore[no-untyped-def]
        self.metrics.append(metric)
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.metrics:
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServiceMetrics:
    """The service's metrics, one instance per application."""

    def __init__(self) -> None:
        self.registry = Registry()
        r = self.registry
        self.requests = r.counter("cleangate_http_requests_total", "HTTP requests by route and status")
        self.request_seconds = r.histogram("cleangate_http_request_seconds", "HTTP latency", LATENCY_BUCKETS)
        self.frames_read = r.counter("cleangate_frames_read_total", "Frames read by the plate reader, by gate and mode (quick: a recorded vehicle seen again)")
        self.frames_dropped = r.counter("cleangate_frames_dropped_total", "Frames dropped as stale or shed, by gate")
        self.frames_still = r.counter("cleangate_frames_still_total",
                                      "Frames not read: no motion on an empty lane, by gate")
        self.frame_seconds = r.histogram("cleangate_frame_read_seconds", "Plate reading time per frame", LATENCY_BUCKETS)
        self.queue_depth = r.gauge("cleangate_frame_queue_depth", "Frames waiting to be read, by gate")
        self.passages = r.counter("cleangate_passages_total", "Passages recorded, by decision")
        self.settled = r.counter("cleangate_camera_passages_settled_total",
                                 "Camera passages by how the tracker settled them (clear_vote, sure_vote, left), by gate")
        self.decisions_by_rule = r.counter("cleangate_decision_reasons_total", "Decision reasons, by rule and effect")
        self.spooled = r.counter("cleangate_passages_spooled_total",
                                 "Passages decided while the database was down, kept in the local spool")
        self.spool_pending = r.gauge("cleangate_spool_pending", "1 while passages wait in the local spool")
        self.decision_seconds = r.histogram("cleangate_decision_seconds", "Passage decision latency", LATENCY_BUCKETS)
