"""OTLP metrics → health events: one per resource and timestamp, metric name → value.

A data point without attributes is stored under the metric's name
(``system.cpu.utilization``); one with attributes under the name with Prometheus-style
labels (``system.cpu.utilization{cpu="cpu0",state="idle"}``), so no point is lost. For the
hostmetrics that come split by state, the plain name also gets the figure dashboards use:
CPU busy fraction averaged over CPUs, memory used, the fullest filesystem. Histograms and
summaries give ``.count``, ``.sum``, ``.min``, ``.max`` (and quantiles as labels).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from shiftright_server.producers.gateway.intake import Item
from shiftright_server.producers.gateway.otlp.common import Draft, Translation, attributes, text_of

MAX_METRICS_PER_EVENT = 128
NOT_FINITE = "data point value is NaN or infinite"

Point = tuple[int, str, dict[str, Any], float]  # time (ns), name, attributes, value


def translate_metrics(request: ExportMetricsServiceRequest) -> Translation:
    out = Translation()
    for i, resource_metrics in enumerate(request.resource_metrics):
        resource = attributes(resource_metrics.resource.attributes)
        by_time, counts = _snapshots(resource_metrics.scope_metrics, out)
        for n, (nanos, values) in enumerate(sorted(by_time.items())):
            add_derived(values)
            chunks = _chunks(values)
            for part, (chunk, records) in enumerate(
                zip(chunks, _shares(counts[nanos], chunks), strict=True)
            ):
                draft = Draft("health", resource)
                draft.set_time(nanos)
                draft.fields["metrics"] = chunk
                path = f"resourceMetrics[{i}] (time {n}, part {part})"
                out.items.append(Item(path, draft.build(), records=records))
    return out


def _snapshots(
    scopes: Iterable[Any], out: Translation
) -> tuple[dict[int, dict[str, float]], Counter[int]]:
    """Series values per timestamp, and how many OTLP data points each timestamp had."""
    by_time: dict[int, dict[str, float]] = defaultdict(dict)
    counts: Counter[int] = Counter()
    for scope_metrics in scopes:
        for metric in scope_metrics.metrics:
            which = metric.WhichOneof("data")
            if which is not None:
                counts.update(dp.time_unix_nano for dp in getattr(metric, which).data_points)
            for nanos, name, attrs, value in points(metric):
                if not math.isfinite(value):
                    out.skipped[NOT_FINITE] += 1
                    continue
                by_time[nanos][series_name(name, attrs)] = value
    return by_time, counts


def _shares(points: int, chunks: list[dict[str, float]]) -> list[int]:
    """The data points each chunk stands for (in proportion to its series)."""
    total = sum(len(c) for c in chunks)
    if not total:
        return [0] * len(chunks)
    shares = [points * len(c) // total for c in chunks]
    shares[-1] += points - sum(shares)
    return shares


def points(metric: Metric) -> Iterable[Point]:
    which = metric.WhichOneof("data")
    name = metric.name
    if which in ("gauge", "sum"):
        for dp in getattr(metric, which).data_points:
            value = dp.as_double if dp.WhichOneof("value") == "as_double" else float(dp.as_int)
            yield dp.time_unix_nano, name, attributes(dp.attributes), value
    elif which in ("histogram", "exponential_histogram"):
        for dp in getattr(metric, which).data_points:
            attrs = attributes(dp.attributes)
            yield dp.time_unix_nano, f"{name}.count", attrs, float(dp.count)
            for part in ("sum", "min", "max"):
                if dp.HasField(part):
                    yield dp.time_unix_nano, f"{name}.{part}", attrs, getattr(dp, part)
    elif which == "summary":
        for dp in metric.summary.data_points:
            attrs = attributes(dp.attributes)
            yield dp.time_unix_nano, f"{name}.count", attrs, float(dp.count)
            yield dp.time_unix_nano, f"{name}.sum", attrs, dp.sum
            for q in dp.quantile_values:
                yield dp.time_unix_nano, name, {**attrs, "quantile": q.quantile}, q.value


def series_name(name: str, attrs: dict[str, Any]) -> str:
    if not attrs:
        return name
    labels = ",".join(f'{k}="{text_of(v)}"' for k, v in sorted(attrs.items()))
    return f"{name}{{{labels}}}"


def add_derived(values: dict[str, float]) -> None:
    """Plain-name figures for hostmetrics reported per state/device (when not given)."""
    labelled: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for series, value in values.items():
        if "{" in series:
            name, _, labels = series.partition("{")
            labelled[name].append((_labels(labels[:-1]), value))
    for name, rows in labelled.items():
        if name in values:
            continue
        derived = _derive(name, rows)
        if derived is not None:
            values[name] = derived


def _derive(name: str, rows: list[tuple[dict[str, str], float]]) -> float | None:
    if name == "system.cpu.utilization":
        busy: dict[str, float] = defaultdict(float)
        for labels, value in rows:
            if labels.get("state") != "idle":
                busy[labels.get("cpu", "")] += value
        return sum(busy.values()) / len(busy) if busy else 0.0
    if name.startswith("system.memory.") or name.startswith("system.paging."):
        used = [v for labels, v in rows if labels.get("state") == "used"]
        return sum(used) if used else None
    if name == "system.filesystem.utilization":
        return max(v for _, v in rows)
    return None


def _labels(text: str) -> dict[str, str]:
    out = {}
    for part in text.split('",'):
        key, _, value = part.partition('="')
        out[key] = value.rstrip('"')
    return out


def _chunks(values: dict[str, float]) -> list[dict[str, float]]:
    items = list(values.items())
    return [
        dict(items[i : i + MAX_METRICS_PER_EVENT])
        for i in range(0, len(items), MAX_METRICS_PER_EVENT)
    ]
