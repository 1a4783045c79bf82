"""Onboarding a service in one command: read what Prometheus has of it, recognise the usual
conventions, and write its probes, golden signals and starter rules into the policy.

What is recognised, in the series one selector matches (``{job="checkout"}``):

- a request counter, ``*_requests_total`` (an ``http_``/``grpc_`` prefix or not): traffic is its
  rate; errors the rate of its ``code``/``status`` label at 5xx, or of a ``*_failed_total`` /
  ``*_errors_total`` counter beside it;
- a request-duration histogram, ``*_duration_seconds_bucket``: latency is the histogram (its
  buckets' rates, from which the workbench computes p50, p95 and p99), and its rule reads the p95
  computed by Prometheus's ``histogram_quantile`` (a percentile series: reduced by ``max``);
- a pool, ``*_in_use`` (or ``*_active``, ``*_busy``) beside ``*_max`` (or ``*_size``, ``*_limit``,
  ``*_capacity``): saturation is in use over its size; a ``*_utilization`` gauge is used as it is
  (a percent when its name ends in ``_percent``);
- a queue depth (``*queue*_depth``, ``_length``, ``_size``, ``_backlog``): kept as a series, for the
  hypotheses to see it rise;
- a ``*_info`` series with a ``version`` (``revision``, ``commit``, ``image``...) label: kept, so a
  new version before a failure is drafted as a deploy;
- ``up``: a probe of its own, failing when any instance is down.

Each becomes a ``prometheus`` target whose query names the series it writes (``metric``), so the
golden signals and rules select them. The rules fold into the ``up`` probe's incident (one
service, one incident). Writing keeps the files' comments (ruamel.yaml), and the whole policy is
checked before anything is replaced.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import httpx
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from detectors.backtest import replay
from learning.backtests import RULE
from ledger.samples import VERSION_LABELS, SampleStore
from policies.errors import PolicyError, WorkbenchError
from policies.loader import load_policy
from policies.schema import format_duration, parse_duration
from policies.selectors import parse_selector
from probes.context import QueryFailed
from probes.kinds.prometheus import answer_series, series_samples

LOOKBACK = timedelta(minutes=15)  # series seen this recently are the service's
TIMEOUT = 10.0
MAX_POINTS = 10_000  # a query_range answer's points per series (Prometheus refuses past 11,000)
REQUESTS = re.compile(r"^(?P<base>.*?)_?requests_total$")
FAILED = re.compile(r".*_(failed|errors?|failures)_total$")
DURATION = re.compile(r"^(?P<base>.*)_duration_seconds_bucket$")
IN_USE = re.compile(r"^(?P<base>.*)_(in_use|inuse|active|busy|used)$")
SIZE_SUFFIXES = ("max", "size", "limit", "capacity", "total")
UTILIZATION = re.compile(r".*_(utili[sz]ation|saturation)(_ratio|_percent)?$")
QUEUE = re.compile(r".*queue.*_(depth|length|size|backlog)$|.*_queue_(depth|length|size)$")
STATUS_LABELS = ("code", "status", "status_code", "http_status")


@dataclass
class Discovered:
    """The series names a selector matches in Prometheus, with the label names each carries."""

    labels: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class Plan:
    """What onboarding would add: targets, a services entry, rules, and what it recognised."""

    service: str
    targets: list[dict] = field(default_factory=list)
    signals: dict = field(default_factory=dict)
    rules: list[dict] = field(default_factory=list)
    recognised: list[str] = field(default_factory=list)

    def as_yaml(self) -> str:
        out = StringIO()
        YAML().dump({"targets.yaml": {"targets": self.targets},
                     "rules.yaml": {"services": {self.service: self.signals} if self.signals else {},
                                    "rules": self.rules}}, out)
        return out.getvalue()


def discover(url: str, selector: str, headers: dict[str, str] | None = None, now: datetime | None = None) -> Discovered:
    """The series ``selector`` matches in the Prometheus at ``url`` over the last LOOKBACK."""
    parse_selector(selector)  # a clear error before any request
    now = now or datetime.now(UTC)
    try:
        answer = httpx.get(f"{url.rstrip('/')}/api/v1/series", headers=headers, timeout=TIMEOUT, trust_env=False,
                           params={"match[]": selector, "start": (now - LOOKBACK).timestamp(), "end": now.timestamp()})
        body = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise WorkbenchError(f"Prometheus at {url}: {type(exc).__name__}: {exc}") from None
    if answer.status_code != 200 or body.get("status") != "success":
        raise WorkbenchError(f"Prometheus at {url} answered {answer.status_code}: {body.get('error', body)}")
    found = Discovered()
    for series in body.get("data", []):
        name = series.get("__name__", "")
        found.labels.setdefault(name, set()).update(k for k in series if k != "__name__")
    if not found.labels:
        raise WorkbenchError(f"Prometheus at {url} has no series matching {selector} in the last "
                             f"{int(LOOKBACK.total_seconds() // 60)} minutes: is the job scraped?")
    return found


def plan(service: str, url: str, selector: str, found: Discovered, interval: str = "15s",
         rate_window: str = "1m") -> Plan:
    """The targets, golden signals and starter rules for ``service`` from what ``found`` holds. The
    rules' windows hold 8 probe runs and their ``for`` 4 (2m and 1m at the default 15 s); the
    queries' ``rate()`` ranges are ``rate_window`` (at least four of Prometheus's scrape intervals)."""
    every, rate = parse_duration(interval), format_duration(parse_duration(rate_window))
    window, hold = format_duration(8 * every), format_duration(4 * every)
    inner = selector.strip()
    inner = inner[inner.index("{") + 1:inner.rindex("}")].strip() if "{" in inner else ""
    prefix = re.sub(r"[^A-Za-z0-9_]", "_", service)
    result = Plan(service)
    names = sorted(found.labels)

    def target(suffix: str, query: str, metric: str | None, **more) -> None:
        entry = {"name": f"{service}-{suffix}", "kind": "prometheus", "service": service, "url": url,
                 "interval": interval, "query": query}
        if metric:
            entry["metric"] = metric
        result.targets.append({**entry, **more})

    def select(name: str, extra: str = "") -> str:
        return f"{name}{{{', '.join(p for p in (inner, extra) if p)}}}"

    up = "up" in found.labels
    key = f"{service}/{service}-up" if up else f"{service}/{service}"
    if up:
        target("up", f"min({select('up')})", f"{prefix}_up", conditions=["[VALUE] == 1"], severity="critical")
        result.recognised.append("up: a probe that fails when an instance is down")
    requests = next((n for n in names if REQUESTS.match(n) and not FAILED.match(n)), None)
    if requests:
        traffic = f"{prefix}_requests_per_second"
        target("traffic", f"sum(rate({select(requests)}[{rate}]))", traffic)
        result.signals["traffic"] = traffic
        status = next((label for label in STATUS_LABELS if label in found.labels[requests]), None)
        failed = next((n for n in names if FAILED.match(n)), None)
        server_errors = select(requests, status + '=~"5.."') if status else None
        errors_query = (f"sum(rate({server_errors}[{rate}])) or vector(0)" if status
                        else f"sum(rate({select(failed)}[{rate}]))" if failed else None)
        result.recognised.append(f"{requests}: traffic" + (f", errors where {status} is 5xx" if status else
                                                          f", errors from {failed}" if failed else ""))
        if errors_query:
            errors = f"{prefix}_errors_per_second"
            target("errors", errors_query, errors)
            result.signals["errors"] = errors
            result.rules.append({"name": f"{service}-errors", "kind": "errors", "service": service,
                                 "errors": errors, "requests": traffic, "above": 0.05, "window": window, "for": hold,
                                 "correlation_key": key})
    duration = next((n for n in names if DURATION.match(n) and "request" in n),
                    next((n for n in names if DURATION.match(n)), None))
    if duration:
        latency, buckets = f"{prefix}_latency_p95_seconds", f"{prefix}_latency_buckets"
        target("latency", f"histogram_quantile(0.95, sum by (le) (rate({select(duration)}[{rate}])))", latency)
        target("latency-buckets", f"sum by (le) (rate({select(duration)}[{rate}]))", buckets)
        result.signals["latency"] = {"series": buckets, "type": "histogram"}
        result.rules.append({"name": f"{service}-latency", "kind": "threshold", "category": "latency", "service": service,
                             "series": latency, "reduce": "max", "above": 0.5, "window": window, "for": hold,
                             "correlation_key": key})
        result.recognised.append(f"{duration}: latency, its buckets' rates (the Trends page computes p50, p95 "
                                 "and p99 from them) and its p95 as Prometheus computes it (for the rule)")
    saturation = []
    for name in names:
        pool = IN_USE.match(name)
        size = next((f"{pool['base']}_{s}" for s in SIZE_SUFFIXES if pool and f"{pool['base']}_{s}" in found.labels),
                    None)
        if pool and size:
            short = _short(pool["base"], prefix)
            metric = f"{prefix}_{short}_utilization"
            target(f"{short.replace('_', '-')}-utilization", f"sum({select(name)}) / sum({select(size)})", metric)
            saturation.append({"series": metric, "name": f"{short.replace('_', ' ')} in use"})
            result.recognised.append(f"{name} / {size}: saturation of a pool")
        elif UTILIZATION.match(name):
            metric, percent = f"{prefix}_{_short(name, prefix)}", "percent" in name
            target(_short(name, prefix).replace("_", "-"), f"max({select(name)})", metric)
            saturation.append({"series": metric, "unit": "percent" if percent else "ratio"})
            result.recognised.append(f"{name}: saturation, read as a {'percent' if percent else 'ratio (0-1)'} "
                                     "(set its unit under services and its rule's bound if it is not)")
        elif name.endswith("_info") and (running := sorted(VERSION_LABELS & found.labels[name])):
            target("build-info", f"max by ({', '.join(running)}) ({select(name)})", f"{prefix}_build_info")
            result.recognised.append(f"{name}: what runs ({', '.join(running)}), kept as a series: a new value before "
                                     "a failure is drafted as a deploy")
        elif QUEUE.match(name):
            target(_short(name, prefix).replace("_", "-"), f"sum({select(name)})", f"{prefix}_{_short(name, prefix)}")
            result.recognised.append(f"{name}: a queue's depth, kept as a series for the hypotheses")
    if saturation:
        result.signals["saturation"] = saturation
    for n, item in enumerate(saturation):
        result.rules.append({"name": f"{service}-saturation" + (f"-{n + 1}" if n else ""), "kind": "saturation",
                             "service": service, "series": item["series"],
                             "above": 90 if item.get("unit") == "percent" else 0.9, "window": window, "for": hold,
                             "correlation_key": key})
    if not result.targets:
        raise WorkbenchError(f"nothing recognised among {len(names)} series names ({', '.join(names[:8])}"
                             f"{', ...' if len(names) > 8 else ''}): see docs/cli.md (workbench services add) for the conventions")
    return result


def backtest_plan(found: Plan, url: str, history: timedelta, noise, headers: dict[str, str] | None = None,
                  now: datetime | None = None) -> list[str]:
    """Each starter rule of ``found`` replayed over the last ``history`` of what Prometheus holds:
    its targets' queries asked over that range (at their interval, at most MAX_POINTS points a
    series) into a scratch samples store, and each rule run over it as the worker would run it
    (``noise``'s evaluation interval and flap protection); a line per rule saying how often it
    would have fired."""
    now = now or datetime.now(UTC)
    start = now - history
    lines = []
    with tempfile.TemporaryDirectory() as scratch:
        store = SampleStore(Path(scratch) / "samples", now=lambda: now)
        for item in found.targets:
            if "metric" not in item:
                continue
            step = max(parse_duration(item["interval"]).total_seconds(), history.total_seconds() / MAX_POINTS)
            try:
                answer = httpx.get(f"{url.rstrip('/')}/api/v1/query_range", headers=headers, timeout=TIMEOUT,
                                   trust_env=False, params={"query": item["query"], "start": start.timestamp(),
                                                            "end": now.timestamp(), "step": f"{step:g}"})
                series = answer_series(answer.status_code, answer.content)
            except (httpx.HTTPError, QueryFailed) as exc:
                lines.append(f"{item['name']}: no history ({type(exc).__name__}: {exc})")
                continue
            store.append(series_samples(series, item["name"], found.service, item["metric"]))
        store.flush()
        for rule in found.rules:
            replayed = replay(RULE.validate_python(rule), store, start, now, noise)
            if replayed.warnings:
                lines.append(f"{rule['name']}: {'; '.join(replayed.warnings)}")
                continue
            alert = replayed.time_in_alert_ratio()
            lines.append(f"{rule['name']}: would have fired {len(replayed.episodes)} time(s) over the last "
                         f"{format_duration(history)}" + (f", {alert:.1%} of the time" if replayed.episodes else ""))
    return lines


def http_plan(service: str, url: str, interval: str = "15s") -> Plan:
    """Without Prometheus: an HTTP probe of ``url`` that fails on a 5xx, on no answer, or past a second."""
    result = Plan(service)
    result.targets.append({"name": f"{service}-web", "kind": "http", "service": service, "url": url,
                           "interval": interval, "timeout": "5s", "failure_threshold": 3, "success_threshold": 2,
                           "conditions": ["[STATUS] < 500", "[RESPONSE_TIME] < 1000"]})
    result.recognised.append(f"{url}: an HTTP probe (status below 500, answer within a second)")
    return result


def _short(name: str, prefix: str) -> str:
    """A series name without the service's own prefix: checkout_db_pool -> db_pool."""
    return name[len(prefix) + 1:] if name.startswith(f"{prefix}_") else name


def write(policy_dir: Path, found: Plan) -> None:
    """Add the plan to targets.yaml and rules.yaml, keeping their comments: refused when a name is
    taken or the policy would not load; the files are replaced only once the whole policy loads."""
    policy_dir = Path(policy_dir)
    texts = {}
    for name, update in (("targets.yaml", lambda doc: _extend(doc, "targets", found.targets)),
                         ("rules.yaml", lambda doc: _add_rules(doc, found))):
        path = policy_dir / name
        original = path.read_text() if path.exists() else ""
        yaml = _styled(original)
        doc = yaml.load(original) if original.strip() else None
        doc = doc if isinstance(doc, CommentedMap) else CommentedMap()
        update(doc)
        out = StringIO()
        yaml.dump(doc, out)
        texts[name] = out.getvalue()
    with tempfile.TemporaryDirectory() as scratch:
        for other in policy_dir.glob("*.y*ml"):
            shutil.copy(other, Path(scratch) / other.name)
        for name, text in texts.items():
            (Path(scratch) / name).write_text(text)
        try:
            load_policy(scratch)
        except PolicyError as exc:
            raise WorkbenchError(f"onboarding {found.service} would make the policy invalid: "
                                 + "; ".join(str(p).replace(scratch, str(policy_dir)) for p in exc.problems)) from None
    for name, text in texts.items():
        temporary = policy_dir / f".{name}.tmp"
        temporary.write_text(text)
        os.replace(temporary, policy_dir / name)


def _styled(text: str) -> YAML:
    """A round-trip YAML that writes lists indented as ``text`` indents them (``  - name:`` or
    ``- name:``) and never folds a long query."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    dash = re.search(r"^( *)- ", text, re.MULTILINE)
    offset = len(dash.group(1)) if dash else 2
    yaml.indent(mapping=2, sequence=offset + 2, offset=offset)
    return yaml


def _extend(doc: CommentedMap, key: str, items: list[dict]) -> None:
    existing = doc.get(key)
    if not isinstance(existing, list):
        doc[key] = existing = CommentedSeq()
    taken = {item.get("name") for item in existing if isinstance(item, dict)}
    clash = [item["name"] for item in items if item["name"] in taken]
    if clash:
        raise WorkbenchError(f"{key}: {', '.join(clash)} already there: the service is onboarded already, or "
                             "pick another name")
    existing.extend(items)


def _add_rules(doc: CommentedMap, found: Plan) -> None:
    if found.signals:
        if "services" not in doc:
            doc.insert(0, "services", CommentedMap())
        services = doc["services"]
        if not isinstance(services, dict):
            raise WorkbenchError("rules.yaml: services must be a mapping of service names")
        if found.service in services:
            raise WorkbenchError(f"services: {found.service} already has golden signals in rules.yaml")
        services[found.service] = found.signals
    if found.rules:
        _extend(doc, "rules", found.rules)
