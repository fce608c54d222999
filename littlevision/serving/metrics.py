"""Prometheus text exposition, written by hand.

Why not ``prometheus_client``: the service needs four counters, a few histograms and gauges, and
the text format is simple and stable; one small file beats a runtime dependency. Metrics are
updated from the event loop and from worker threads, so every change takes a lock.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if float(x).is_integer():
        return str(int(x))
    return repr(float(x))


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.labelnames):
            raise ValueError(
                f"Expected labels {sorted(self.labelnames)} for {self.name}. "
                f"Received: {sorted(labels)}"
            )
        return tuple(str(labels[n]) for n in self.labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError


class Counter(_Metric):
    """A number that only goes up (requests, errors)."""

    kind = "counter"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help, labelnames)
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        if not self.labelnames and not items:
            items = [((), 0.0)]
        return self.header() + [
            f"{self.name}{_labels(self.labelnames, k)} {_number(v)}" for k, v in items
        ]


class Gauge(Counter):
    """A number that goes up and down, or is read from ``source`` when scraped (queue depth)."""

    kind = "gauge"

    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        source: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(name, help, labelnames)
        self._source = source

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self.inc(-amount, **labels)

    def replace(self, value: float, **labels: str) -> None:
        """Make ``labels`` the only series (an info metric such as the model version)."""
        key = self._key(labels)
        with self._lock:
            self._values = {key: float(value)}

    def value(self, **labels: str) -> float:
        if self._source is not None:
            return float(self._source())
        return super().value(**labels)

    def render(self) -> list[str]:
        if self._source is not None:
            return self.header() + [f"{self.name} {_number(float(self._source()))}"]
        return super().render()


class Histogram(_Metric):
    """Counts of observations in cumulative buckets, with their sum (latencies, batch sizes)."""

    kind = "histogram"

    def __init__(
        self, name: str, help: str, buckets: Iterable[float], labelnames: Sequence[str] = ()
    ) -> None:
        super().__init__(name, help, labelnames)
        self.buckets = tuple(sorted(float(b) for b in buckets))
        if not self.buckets:
            raise ValueError(f"Expected at least one bucket for {name}. Received: none")
        # per label set: [count per bucket (not cumulative) + overflow, sum]
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        index = len(self.buckets)
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                index = i
                break
        with self._lock:
            counts, total = self._series.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
            counts[index] += 1
            total[0] += value

    def count(self, **labels: str) -> int:
        with self._lock:
            series = self._series.get(self._key(labels))
            return sum(series[0]) if series else 0

    def render(self) -> list[str]:
        with self._lock:
            items = sorted((k, (list(c), s[0])) for k, (c, s) in self._series.items())
        if not self.labelnames and not items:
            items = [((), ([0] * (len(self.buckets) + 1), 0.0))]
        lines = self.header()
        for key, (counts, total) in items:
            running = 0
            for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
                running += n
                le = f'le="{_number(bound)}"'
                lines.append(f"{self.name}_bucket{_labels(self.labelnames, key, le)} {running}")
            lines.append(f"{self.name}_sum{_labels(self.labelnames, key)} {_number(total)}")
            lines.append(f"{self.name}_count{_labels(self.labelnames, key)} {running}")
        return lines


class Registry:
    """Metrics in the order they were registered; a duplicate name is an error."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def register(self, metric: _Metric) -> _Metric:
        if metric.name in self._metrics:
            raise ValueError(f"A metric named '{metric.name}' is already registered.")
        self._metrics[metric.name] = metric
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics.values():
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


class ServingMetrics:
    """The service's metrics, one registry per app (so tests and reloads never share counts).

    Args:
        queue_depth: Read when scraped: images waiting for the model right now.
    """

    def __init__(self, queue_depth: Callable[[], float] = lambda: 0.0) -> None:
        r = self.registry = Registry()
        self.requests = r.register(
            Counter(
                "littlevision_requests_total",
                "HTTP requests answered, by endpoint and status.",
                ("endpoint", "method", "status"),
            )
        )
        self.latency = r.register(
            Histogram(
                "littlevision_request_duration_seconds",
                "Time to answer a request, by endpoint.",
                LATENCY_BUCKETS,
                ("endpoint",),
            )
        )
        self.in_flight = r.register(
            Gauge("littlevision_requests_in_flight", "Requests being handled now.")
        )
        self.queue_depth = r.register(
            Gauge("littlevision_queue_depth", "Images waiting for the model.", source=queue_depth)
        )
        self.batch_size = r.register(
            Histogram("littlevision_batch_size", "Images per ONNX Runtime call.", BATCH_BUCKETS)
        )
        self.inference = r.register(
            Histogram(
                "littlevision_inference_duration_seconds",
                "Time of one ONNX Runtime call.",
                LATENCY_BUCKETS,
            )
        )
        self.images = r.register(Counter("littlevision_images_total", "Images classified."))
        self.rejected = r.register(
            Counter(
                "littlevision_rejected_total",
                "Requests turned away to protect latency, by reason.",
                ("reason",),
            )
        )
        self.decode_errors = r.register(
            Counter(
                "littlevision_decode_errors_total",
                "Uploads that were not a readable image.",
                ("reason",),
            )
        )
        self.reloads = r.register(
            Counter("littlevision_reloads_total", "Model reloads, by result.", ("result",))
        )
        self.model_info = r.register(
            Gauge(
                "littlevision_model_info", "The model being served (value 1).", ("name", "version")
            )
        )
        self.feedback = r.register(
            Counter("littlevision_feedback_total", "Corrections saved, by label.", ("label",))
        )

    def render(self) -> str:
        return self.registry.render()
