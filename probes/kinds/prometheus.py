"""Prometheus probe: one PromQL query (instant or range) through the HTTP API; every series
becomes samples, and [VALUE] must hold for each series' latest value."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from ledger.samples import Sample
from policies.conditions import Each
from policies.jsondoc import parse_json
from policies.schema import PrometheusTarget
from probes.context import ProbeContext, ProbeResult, QueryFailed, observe
from probes.kinds.http import get_api

OWN_LABELS = ("service", "target", "kind")  # set by the workbench; a series' own go to exported_<name>



async def run(target: PrometheusTarget, ctx: ProbeContext):
    started_at = ctx.now()
    t0 = time.perf_counter()
    path, params = _request(target, started_at, target.probe_timeout.total_seconds())
    answer = await get_api(target, ctx, started_at, t0, target.url.rstrip("/") + path, params, "prometheus")
    if isinstance(answer, ProbeResult):
        return answer
    elapsed, status, secrets = answer.elapsed, answer.status, answer.secrets
    reached = {"CONNECTED": True, "RESPONSE_TIME": elapsed}
    try:
        series = answer_series(status, answer.body)
    except QueryFailed as exc:
        return observe(target, started_at, elapsed, reached, status=status, error=f"prometheus: {exc}",
                       secrets=secrets)
    samples = series_samples(series, target.name, target.service, target.metric)
    latest = Each(tuple((points[-1][1], _selector(labels)) for labels, points in series if points))
    values = {**reached, "SERIES_COUNT": len(series), "VALUE": latest}
    return observe(target, started_at, elapsed, values, status=status, secrets=secrets, samples=samples)


def _request(target: PrometheusTarget, now: datetime, timeout: float) -> tuple[str, list[tuple[str, str]]]:
    params = [("query", target.query), ("timeout", f"{timeout:g}")]  # seconds; Prometheus gives up too
    if target.mode == "instant":
        return "/api/v1/query", params
    end = now.timestamp()
    return "/api/v1/query_range", params + [("start", f"{end - target.range.total_seconds():.3f}"),
                                            ("end", f"{end:.3f}"), ("step", f"{target.step.total_seconds():g}")]


def answer_series(status: int, body: bytes) -> list[tuple[dict[str, str], list[tuple[datetime, float]]]]:
    """(labels, points) of each series of a query's answer; QueryFailed saying why there are none."""
    return _series(_data(status, body))


def series_samples(series, target: str, service: str, metric: str | None = None) -> list[Sample]:
    """Samples of ``series`` as a prometheus target named ``target`` of ``service`` writes them:
    named ``metric`` (else the series' own name, else the target's as a series name: ``shop-errors``
    becomes ``shop_errors``, so that a selector can name it), labelled with the series' labels and
    the workbench's own (service, target, kind; the series' labels of those names kept as
    exported_service, ...)."""
    own = {"service": service, "target": target, "kind": "prometheus"}
    fallback = series_name(target)
    return [Sample(metric or labels.get("__name__") or fallback,
                   {**{(f"exported_{k}" if k in OWN_LABELS else k): v for k, v in labels.items() if k != "__name__"},
                    **own}, value, at)
            for labels, points in series for at, value in points]


def series_name(text: str) -> str:
    """``text`` as a valid series name: what is not a letter, digit, _ or : becomes _; a leading digit gets a _."""
    name = re.sub(r"[^A-Za-z0-9_:]", "_", text)
    return f"_{name}" if name[:1].isdigit() else name


def _data(status: int, body: bytes) -> dict:
    """The ``data`` of a successful answer; Prometheus' own error (bad_data, timeout, ...) otherwise."""
    try:
        doc = parse_json(body)
    except ValueError:
        snippet = body[:120].decode("utf-8", errors="replace").strip()
        raise QueryFailed(f"HTTP {status}, not a JSON answer: {snippet!r}") from None
    if not isinstance(doc, dict) or "status" not in doc:
        raise QueryFailed(f"HTTP {status}, not a Prometheus API answer")
    if doc["status"] == "error":
        raise QueryFailed(f"{doc.get('errorType', 'error')}: {doc.get('error', '(no message)')}")
    if doc["status"] != "success" or not isinstance(doc.get("data"), dict):
        raise QueryFailed(f"HTTP {status}, status {doc['status']!r}")
    return doc["data"]


def _series(data: dict) -> list[tuple[dict[str, str], list[tuple[datetime, float]]]]:
    """(labels, points) of each series; a scalar is one series without labels."""
    kind, result = data.get("resultType"), data.get("result")
    try:
        if kind == "vector":
            return [(s["metric"], [_point(s["value"])]) for s in result]
        if kind == "matrix":
            return [(s["metric"], [_point(p) for p in s["values"]]) for s in result]
        if kind == "scalar":
            return [({}, [_point(result)])]
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        raise QueryFailed(f"malformed {kind} result ({type(exc).__name__}: {exc})") from None
    if kind == "string":
        raise QueryFailed(f"the query gives a string ({result!r}), not numbers")
    raise QueryFailed(f"unknown result type {kind!r}")


def _point(pair: list) -> tuple[datetime, float]:
    """[1795354325.89, "0.93"] -> (time, 0.93); NaN and +Inf/-Inf arrive as strings too."""
    at, value = pair
    return datetime.fromtimestamp(float(at), UTC), float(value)


def _selector(labels: dict[str, str]) -> str:
    """The series as Prometheus prints it: up{instance="a", job="node"}."""
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return labels.get("__name__", "") + (f"{{{inner}}}" if inner else "")
