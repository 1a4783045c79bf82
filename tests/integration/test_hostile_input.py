"""The hostile-input suite, against a real worker (`python -m app.cli worker`) probing a local
HTTP target every 500 ms: property-based fuzzing of its webhook and of its policy files (each
checked by `policy check` and reloaded by the worker), the largest payload that is hardest to
mask, and SIGKILL in the middle of ingest and probing.

The promises checked throughout: every request gets a status and a one-line reason; the
worker's log holds no traceback; /healthz answers within 1 s the whole time (a watchdog polls it
every 100 ms); the probe keeps its schedule; no alert answered 200 is lost, across kills too.
The figures are printed at the end of the run and kept in docs/hostile-input.md."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from io import StringIO

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from app.cli import main
from ledger.db import open_ledger, read_session, sqlite_url
from ledger.tables import Alert, Incident, Observation
from probes.alerts import PayloadRejected, parse_webhook
from tests.hostile import FIGURES, mutations
from tests.integration.conftest import WorkerProcess
from tests.support import SAMPLES, LocalServer, QuietHandler, wait_until

pytestmark = pytest.mark.integration

INTERVAL = 0.5  # seconds between the probe's runs
TARGETS = """
targets:
  - name: steady
    kind: http
    service: steady
    url: {url}
    interval: 500ms
    timeout: 250ms
    conditions: ["[STATUS] == 200"]
"""
RULES = """
rules:
  - name: steady-slow
    kind: latency
    service: steady
    percentile: 99
    above: 2
    window: 1m
    for: 30s
"""
SETTINGS = "policy_reload_interval: 1s\n"
WEBHOOK = json.loads((SAMPLES / "alertmanager-webhook.json").read_text())


WATCH = """
import json, sys, time, httpx
url, slowest, unanswered, polls = sys.argv[1], 0.0, 0, 0
with httpx.Client(timeout=5) as client:
    while sys.stdin.readline():  # a line from the test: poll once more
        started = time.perf_counter()
        try:
            client.get(url).raise_for_status()
        except httpx.HTTPError:
            unanswered += 1
        slowest, polls = max(slowest, time.perf_counter() - started), polls + 1
print(json.dumps({"slowest": slowest, "unanswered": unanswered, "polls": polls}))
"""


class Watchdog:
    """Polls GET /healthz every 100 ms while in use, from a process of its own (the test's own
    work, such as generating payloads, must not delay the polls it times): the slowest answer and
    the polls that got none within 5 s."""

    def __init__(self, url: str):
        self.url, self.slowest, self.unanswered, self.polls = f"{url}/healthz", 0.0, 0, 0
        self._stop = threading.Event()
        self._process = subprocess.Popen([sys.executable, "-c", WATCH, self.url], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def _tick(self):
        while not self._stop.wait(0.1):
            self._process.stdin.write("poll\n")
            self._process.stdin.flush()

    def __enter__(self):
        self._ticker.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._ticker.join()
        out, _ = self._process.communicate(timeout=30)
        found = json.loads(out)
        self.slowest, self.unanswered, self.polls = found["slowest"], found["unanswered"], found["polls"]


def write_policy(directory, target_url: str) -> dict[str, str]:
    files = {"targets.yaml": TARGETS.format(url=target_url), "rules.yaml": RULES, "settings.yaml": SETTINGS}
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return files


@pytest.fixture(scope="module")
def target():
    class Steady(QuietHandler):
        def do_GET(self):
            self.reply(200, b"ok\n", "text/plain")

    server = LocalServer(Steady)
    yield server
    server.close()


@pytest.fixture(scope="module")
def hostile_worker(tmp_path_factory, target):
    root = tmp_path_factory.mktemp("hostile")
    write_policy(root / "policy", target.url)
    w = WorkerProcess(root / "policy", root / "var", root / "worker.log").start()
    yield w
    w.stop(signal.SIGKILL)
    assert "Traceback" not in w.log.read_text()


def ledger_of(w: WorkerProcess):
    return open_ledger(sqlite_url(w.data))


def probe_gaps(w: WorkerProcess, since: datetime, until: datetime) -> list[float]:
    """Seconds between the steady target's consecutive runs started in [since, until]."""
    engine = ledger_of(w)
    with read_session(engine) as session:
        started = [utc(o.started_at) for o in session.exec(
            select(Observation).where(Observation.target == "steady").order_by(Observation.started_at))]
    engine.dispose()
    runs = [at for at in started if since <= at <= until]
    return [(b - a).total_seconds() for a, b in zip(runs, runs[1:])]


def utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def episodes(w: WorkerProcess) -> set[tuple[str, datetime]]:
    engine = ledger_of(w)
    with read_session(engine) as session:
        found = {(a.fingerprint, utc(a.starts_at)) for a in session.exec(select(Alert))}
    engine.dispose()
    return found


# ------------------------------------------------------------------------------------------
# webhook payloads
# ------------------------------------------------------------------------------------------
PAYLOAD_TEXT = ["eyJ-" * 50, "Bearer abcdefgh12345", "postgres://admin:S3cretPw@db:5432/x", "token=sk_live_abcdefghijk",
                "\u2028", "\x1b[31m", "{labels.x}", "{0}", "é" * 100, "", " ", "a" * 2000, "\\u0000"]
TIMES = ["2026-11-22T12:49:18.251Z", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
         "2026-11-22T12:49:18", "2026-13-45T99:99:99Z", "", "now", "1e400", "2026-11-22T12:49:18.251+05:30"]
# text a payload can carry (those with a NUL or a lone surrogate, which no ledger stores, are FIXED_BODIES)
text = st.one_of(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30),
                 st.sampled_from(PAYLOAD_TEXT))
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                           max_leaves=20)
# mostly well-formed, so that most payloads reach the ledger with what they hold
alerts = st.fixed_dictionaries(
    {"status": st.sampled_from(["firing"] * 6 + ["resolved"] * 3 + ["pending"]),
     "labels": st.dictionaries(text, text, max_size=5).map(lambda labels: {"alertname": "Fuzzed", **labels}),
     "annotations": st.dictionaries(text, text, max_size=3),
     "startsAt": st.one_of(st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat), st.sampled_from(TIMES)),
     "endsAt": st.sampled_from(["0001-01-01T00:00:00Z"] * 10 + TIMES), "generatorURL": text,
     "fingerprint": st.text("0123456789abcdef", min_size=1, max_size=16)},
    optional={"extra": json_values})
documents = st.fixed_dictionaries(
    {"version": st.sampled_from(["4", "4", "4", "3", ""]), "status": st.sampled_from(["firing", "resolved"]),
     "receiver": text, "alerts": st.lists(alerts, min_size=1, max_size=4), "groupLabels": st.dictionaries(text, text, max_size=2),
     "commonLabels": st.dictionaries(text, text, max_size=2), "externalURL": text},
    optional={"truncatedAlerts": json_values, "groupKey": json_values})
SAMPLE_BYTES = json.dumps(WEBHOOK).encode()
FIXED_BODIES = [b"", b"{}", b"[]", b"null", b"[" * 100_000, b'{"a":' + b"1" * 5000 + b"}", b'{"x":"\\ud800"}',
                b'{"x":"\\u0000"}', b"\x00", b"\xff\xfe", SAMPLE_BYTES.replace(b"firing", b"\xe9")]


@st.composite
def mutated_sample(draw) -> bytes:
    body = bytearray(SAMPLE_BYTES)
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(body) - 1))
        body[at:at + draw(st.integers(0, 8))] = draw(st.binary(max_size=8))
    return bytes(body)


webhook_documents = documents.map(lambda doc: json.dumps(doc).encode())
bodies = st.one_of(webhook_documents, webhook_documents, webhook_documents,
                   json_values.map(lambda value: json.dumps(value).encode("utf-8", "surrogatepass")),
                   st.binary(max_size=2000), mutated_sample(), st.sampled_from(FIXED_BODIES))
content_types = st.sampled_from(["application/json"] * 8 + [
    "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
    "application/x-ndjson", ""])


def assert_answered(response: httpx.Response) -> dict:
    """A status the webhook documents for what a client sends, and its one-line reason."""
    answer = response.json()
    assert response.status_code in (200, 400, 415), (response.status_code, answer)
    if response.status_code == 200:
        assert answer["status"] == "accepted"
    else:
        assert set(answer) == {"error"} and "\n" not in answer["error"] and answer["error"], answer
    return answer


def test_fuzzed_webhook_payloads_are_all_answered_and_no_accepted_alert_is_lost(hostile_worker):
    w = hostile_worker
    accepted: set[tuple[str, datetime]] = set()
    tally = {"fuzzed": 0, "answered": 0, "accepted": 0}
    began = datetime.now(UTC)

    @settings(max_examples=1_000, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies, content_type=content_types)
    def post(client, body, content_type):
        tally["fuzzed"] += 1
        response = client.post(f"{w.url}/ingest/alertmanager", content=body,
                               headers={"Content-Type": content_type} if content_type else {})
        answer = assert_answered(response)
        tally["answered"] += 1
        if response.status_code == 200:
            tally["accepted"] += 1
            accepted.update((e.fingerprint, utc(e.starts_at)) for e in parse_webhook(body))
        elif content_type.startswith("application/json"):  # refused for what it holds: the worker says so
            with pytest.raises(PayloadRejected):
                parse_webhook(body)
        assert answer

    with Watchdog(w.url) as watchdog, httpx.Client(timeout=10) as client:
        post(client)
    ended = datetime.now(UTC)

    lost = accepted - episodes(w)
    gaps = probe_gaps(w, began, ended)
    FIGURES["webhook"] = {**tally, "unanswered": tally["fuzzed"] - tally["answered"], "alert episodes accepted": len(accepted), "lost": len(lost),
                          "healthz polls": watchdog.polls, "slowest healthz s": round(watchdog.slowest, 3),
                          "probe runs": len(gaps) + 1, "longest gap between probe runs s": round(max(gaps), 2)}
    assert not lost
    assert watchdog.unanswered == 0 and watchdog.slowest < 1.0
    assert gaps and max(gaps) < INTERVAL + 1.0
    assert "Traceback" not in w.log.read_text()


def test_the_largest_payload_hardest_to_mask_leaves_the_worker_answering(hostile_worker):
    """Bodies of exactly the largest size the webhook takes, made of what once made masking
    quadratic: one refused (not a payload), one accepted (the text in an annotation)."""
    w, limit = hostile_worker, 1_048_576
    doc = json.loads(SAMPLE_BYTES)
    doc["alerts"][0]["fingerprint"] = "adversarial"
    shell = json.dumps(doc).encode()
    doc["alerts"][0]["annotations"]["description"] = "eyJ-" * ((limit - len(shell)) // 4)
    accepted = json.dumps(doc).encode()
    refused = b'"' + b"eyJ-" * ((limit - 2) // 4) + b'"'
    with Watchdog(w.url) as watchdog, httpx.Client(timeout=30) as client:
        answers = [client.post(f"{w.url}/ingest/alertmanager", content=body,
                               headers={"Content-Type": "application/json"}) for body in (refused, accepted) * 3]
    FIGURES["largest payload"] = {"bytes": len(accepted), "slowest healthz s": round(watchdog.slowest, 3)}
    assert [a.status_code for a in answers] == [400, 200] * 3
    assert watchdog.unanswered == 0 and watchdog.slowest < 1.0
    assert len(accepted) <= limit and len(refused) <= limit


# ------------------------------------------------------------------------------------------
# policy files
# ------------------------------------------------------------------------------------------
def policy_check(directory) -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(["--policy", str(directory), "policy", "check"])
    return status, err.getvalue()


def test_fuzzed_policy_files_are_checked_and_reloaded_as_the_check_says(hostile_worker, target):
    """Each mutation of the worker's own targets or rules file is put in place: `policy check`
    says whether it is good, and the running worker, reloading it, agrees (a rejected file leaves
    the last good policy in force, and /healthz says degraded with the reason)."""
    w = hostile_worker
    good = write_policy(w.policy, target.url)
    tally = {"policies fuzzed": 0, "refused by policy check": 0, "worker agreed": 0}

    def put(name: str, text_on_disk: str) -> str:
        """Write the file; return when the worker last saw the files on disk change before."""
        since = w.health()["policy"]["on_disk"]["since"]
        (w.policy / name).write_text(text_on_disk, encoding="utf-8", errors="surrogateescape")
        return since

    def reloaded(since: str) -> dict:
        return wait_until(lambda: (h := w.health()) and h["policy"]["on_disk"]["since"] != since and h,
                          "the worker to reload the policy", attempts=100)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(mutation=mutations({name: good[name] for name in ("targets.yaml", "rules.yaml")}))
    def reload(mutation):
        name, text_on_disk = mutation
        if text_on_disk == good[name]:
            return
        tally["policies fuzzed"] += 1
        since = put(name, text_on_disk)
        status, said = policy_check(w.policy)
        assert status in (0, 2) and "Traceback" not in said
        health = reloaded(since)
        tally["refused by policy check"] += status == 2
        if status == 2:
            assert health["status"] == "degraded" and health["reason"], (said, health)
        else:  # the worker also refuses a file that lost what the policy in force has from it
            assert health["status"] == "ok" or "suspicious" in health["reason"], (said, health)
        tally["worker agreed"] += 1
        assert reloaded(put(name, good[name]))["status"] == "ok"

    with Watchdog(w.url) as watchdog:
        reload()
    FIGURES["policy reload"] = {**tally, "slowest healthz s": round(watchdog.slowest, 3)}
    assert watchdog.unanswered == 0 and watchdog.slowest < 1.0
    assert "Traceback" not in w.log.read_text()


# ------------------------------------------------------------------------------------------
# kill -9
# ------------------------------------------------------------------------------------------
def test_kill_9_during_ingest_and_probing_loses_no_accepted_alert(tmp_path, target):
    """Four clients send new alerts back to back while the worker probes every 500 ms; it is
    killed with SIGKILL at random moments and started again, five times."""
    write_policy(tmp_path / "policy", target.url)
    w = WorkerProcess(tmp_path / "policy", tmp_path / "var", tmp_path / "worker.log")
    accepted, sent, kills = set(), [0], 5
    rng = random.Random(7)

    def client(number: int, stop: threading.Event):
        with httpx.Client(timeout=5) as http:
            while not stop.is_set():
                doc = json.loads(SAMPLE_BYTES)
                fingerprint = f"k{number}-{sent[0]:06d}"
                sent[0] += 1
                doc["alerts"][0].update(fingerprint=fingerprint)
                doc["alerts"][0]["labels"]["alertname"] = f"Kill{sent[0] % 5}"
                try:
                    response = http.post(f"{w.url}/ingest/alertmanager", json=doc)
                except httpx.HTTPError:
                    continue  # the worker is down: its answer never came, so the alert is not counted
                if response.status_code == 200:
                    accepted.add(fingerprint)

    for _ in range(kills):
        w.start()
        stop = threading.Event()
        clients = [threading.Thread(target=client, args=(n, stop)) for n in range(4)]
        for c in clients:
            c.start()
        time.sleep(rng.uniform(0.5, 2.5))
        w.stop(signal.SIGKILL)
        stop.set()
        for c in clients:
            c.join()
    w.start()
    probed_after = datetime.now(UTC)
    wait_until(lambda: probe_gaps(w, probed_after - timedelta(seconds=1), datetime.now(UTC)),
               "the probe to run again after the last restart")
    w.stop()

    engine = ledger_of(w)
    with read_session(engine) as session:
        alerts = [a.fingerprint for a in session.exec(select(Alert))]
        open_keys = [i.correlation_key for i in session.exec(select(Incident).where(Incident.resolved_at.is_(None)))]
    engine.dispose()
    lost = accepted - set(alerts)
    FIGURES["kill -9"] = {"kills": kills, "alerts sent": sent[0], "answered 200": len(accepted), "lost": len(lost),
                          "duplicate alert rows": len(alerts) - len(set(alerts))}
    assert accepted and not lost
    assert len(alerts) == len(set(alerts)) and len(open_keys) == len(set(open_keys))
    assert "Traceback" not in w.log.read_text()
