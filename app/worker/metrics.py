"""The worker's own metrics in the Prometheus text format (version 0.0.4)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    escaped = (v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'{n}="{v}"' for n, v in zip(names, escaped)) + "}"


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()):
        self.name, self.help, self.label_names = name, help_text, labels
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(Metric):
    kind = "counter"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def render(self) -> list[str]:
        with self._lock:
            return self.header() + [f"{self.name}{_labels(self.label_names, k)} {_num(v)}"
                                    for k, v in sorted(self._values.items())]


class Gauge(Metric):
    """A gauge whose values are read at scrape time from a callback."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...], read: Callable[[], dict[tuple[str, ...], float]]):
        super().__init__(name, help_text, labels)
        self.read = read

    def render(self) -> list[str]:
        return self.header() + [f"{self.name}{_labels(self.label_names, k)} {_num(v)}"
                                for k, v in sorted(self.read().items())]


class Histogram(Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = (),
                 buckets: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)):
        super().__init__(name, help_text, labels)
        self.buckets = buckets
        self._series: dict[tuple[str, ...], list[float]] = {}  # bucket counts..., sum, count

    def observe(self, value: float, *labels: str) -> None:
        with self._lock:
            series = self._series.setdefault(labels, [0.0] * (len(self.buckets) + 2))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    series[i] += 1
            series[-2] += value
            series[-1] += 1

    def render(self) -> list[str]:
        lines = self.header()
        with self._lock:
            for key, series in sorted(self._series.items()):
                for bound, count in zip((*self.buckets, math.inf), (*series[:-2], series[-1])):
                    names, values = (*self.label_names, "le"), (*key, _num(bound))
                    lines.append(f"{self.name}_bucket{_labels(names, values)} {_num(count)}")
                lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {_num(series[-2])}")
                lines.append(f"{self.name}_count{_labels(self.label_names, key)} {_num(series[-1])}")
        return lines


class Registry:
    def __init__(self):
        self.metrics: list[Metric] = []

    def add(self, metric):
        self.metrics.append(metric)
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.metrics:
            try:
                lines.extend(metric.render())
            except Exception as exc:  # one broken callback must not blank the whole page
                lines.append(f"# {metric.name} unavailable: {type(exc).__name__}")
        return "\n".join(lines) + "\n"
