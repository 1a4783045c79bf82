"""Logs probe: tailing a local file from a position kept in the ledger, and Loki's query_range
against a real local HTTP server that replays answers captured from Loki 3.4.6."""

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from ledger.db import open_ledger
from ledger.queries import log_cursor
from ledger.samples import Sample
from policies.schema import LogsTarget
from probes.context import ProbeClient, ProbeContext
from probes.kinds import logs
from tests.support import SAMPLES, free_port

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SIGNATURES = [{"name": "timeout", "pattern": "timeout"}, {"name": "server-error", "pattern": r'"status": 5\d\d'},
              {"name": "panic", "pattern": "panic"}]


def file_target(path, **keys) -> LogsTarget:
    return LogsTarget(name="app-log", kind="logs", service="app", path=str(path), signatures=SIGNATURES, **keys)


def run(target, engine, at: datetime = NOW, **ctx):
    async def go():
        async with ProbeClient(1) as client:
            return await logs.run(target, ProbeContext(client, engine=engine, now=lambda: at, **ctx))
    return asyncio.run(go())


def counts(result) -> tuple[int, int]:
    obs = result.observation
    assert obs.ok, obs.error
    return obs.values["LINES"], obs.values["MATCHES"]


def append(path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


# --- local file ---------------------------------------------------------------------------
@pytest.fixture
def log(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("history 1 timeout\nhistory 2\n")
    return path


def test_first_run_starts_at_the_end_then_counts_only_new_lines(log, sqlite_engine):
    target = file_target(log)
    assert counts(run(target, sqlite_engine)) == (0, 0)
    append(log, 'GET /a {"status": 504} upstream timeout\nGET /b {"status": 200}\nGET /c timeout\n')
    result = run(target, sqlite_engine)
    assert counts(result) == (3, 2)
    labels = {"service": "app", "target": "app-log", "kind": "logs"}
    assert result.samples == [
        Sample("log_lines", labels, 3.0, NOW),
        Sample("log_signature_matches", {**labels, "signature": "timeout"}, 2.0, NOW),
        Sample("log_signature_matches", {**labels, "signature": "server-error"}, 1.0, NOW),
        Sample("log_signature_matches", {**labels, "signature": "panic"}, 0.0, NOW),
    ]
    assert counts(run(target, sqlite_engine)) == (0, 0)


def test_a_partial_last_line_waits_until_it_is_complete(log, sqlite_engine):
    target = file_target(log)
    run(target, sqlite_engine)
    append(log, "one\nupstream time")
    assert counts(run(target, sqlite_engine)) == (1, 0)
    append(log, "out\n")
    assert counts(run(target, sqlite_engine)) == (1, 1)


def test_rotation_reads_the_new_file_from_its_start(log, sqlite_engine):
    target = file_target(log)
    run(target, sqlite_engine)
    log.rename(log.with_name("app.log.1"))
    log.write_text("new 1 timeout\nnew 2\n")
    assert counts(run(target, sqlite_engine)) == (2, 1)


def test_truncation_reads_from_the_start(log, sqlite_engine):
    target = file_target(log)
    run(target, sqlite_engine)
    with open(log, "r+") as f:
        f.truncate(0)
    append(log, "after\n")
    assert counts(run(target, sqlite_engine)) == (1, 0)


def test_one_run_reads_at_most_max_body_bytes_and_the_rest_next_time(log, sqlite_engine):
    target = file_target(log)
    run(target, sqlite_engine)
    append(log, "".join(f"line {i:02d} ........\n" for i in range(10)))  # 10 lines of 20 bytes
    seen = [counts(run(target, sqlite_engine, max_body_bytes=64))[0] for _ in range(5)]
    assert seen == [3, 3, 3, 1, 0]


def test_a_line_longer_than_a_run_may_read_does_not_stall_the_tail(log, sqlite_engine):
    target = file_target(log)
    run(target, sqlite_engine)
    append(log, "x" * 100 + "\nnext\n")
    seen = [counts(run(target, sqlite_engine, max_body_bytes=64))[0] for _ in range(3)]
    assert seen == [1, 2, 0]  # the long line's two pieces, then "next"


@pytest.mark.parametrize("make, reason", [
    (lambda p: None, "no such file or directory"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: os.mkfifo(p), "not a regular file"),  # opened without blocking, then refused
], ids=["missing", "directory", "fifo"])
def test_a_missing_or_unreadable_file_is_a_failed_observation(tmp_path, sqlite_engine, make, reason):
    path = tmp_path / "odd.log"
    make(path)
    obs = run(file_target(path), sqlite_engine).observation
    assert not obs.ok and obs.error == f"cannot read {path}: {reason}"


def test_without_the_ledger_the_probe_fails_with_a_reason(log):
    obs = run(file_target(log), None).observation
    assert not obs.ok and obs.error == "the logs probe needs the ledger to keep its position"


def test_the_position_survives_a_worker_restart(log, ledger_url):
    target = file_target(log)
    engine = open_ledger(ledger_url)
    run(target, engine)
    append(log, "before restart\n")
    assert counts(run(target, engine)) == (1, 0)
    engine.dispose()

    engine = open_ledger(ledger_url)  # a new worker process on the same ledger
    append(log, "after restart timeout\nafter restart 2\n")
    assert counts(run(target, engine)) == (2, 1)
    cursor = log_cursor(engine, "app-log")
    assert cursor.path == str(log) and cursor.offset == log.stat().st_size
    assert cursor.inode == f"{log.stat().st_dev}:{log.stat().st_ino}"
    engine.dispose()


# --- Loki ---------------------------------------------------------------------------------
@pytest.fixture
def loki(canned):
    """A real HTTP server on 127.0.0.1 answering like Loki's query_range (a captured answer)."""
    canned.replay("loki-query_range-streams.json")
    return canned


def loki_target(url: str, **keys) -> LogsTarget:
    return LogsTarget(name="loki-errors", kind="logs", service="app", loki_url=url, interval="1m",
                      query='{job="workbench", level="error"} |= "timeout"', signatures=SIGNATURES, **keys)


def ns(moment: datetime) -> str:
    return str(int(moment.timestamp()) * 10**9)


def test_loki_streams_are_counted_and_the_next_query_starts_where_this_one_ended(loki, engine):
    """On SQLite and PostgreSQL: the position, in nanoseconds, needs a 64-bit column."""
    target = loki_target(loki.url, headers={"X-Scope-OrgID": "${LOKI_TENANT}"})
    result = run(target, engine, env={"LOKI_TENANT": "team-a"})
    assert counts(result) == (3, 3)
    assert Sample("log_signature_matches", {"service": "app", "target": "loki-errors", "kind": "logs",
                                            "signature": "server-error"}, 3.0, NOW) in result.samples
    path, params, headers = loki.requests[0]
    assert path == "/loki/api/v1/query_range"
    assert dict(params) == {"query": '{job="workbench", level="error"} |= "timeout"', "direction": "forward",
                            "limit": str(logs.LOKI_LIMIT), "start": ns(NOW - timedelta(minutes=1)),
                            "end": ns(NOW)}
    assert headers["X-Scope-OrgID"] == "team-a"

    run(target, engine, at=NOW + timedelta(seconds=60), env={"LOKI_TENANT": "team-a"})
    second = dict(loki.requests[1][1])
    assert second["start"] == ns(NOW)
    assert second["end"] == ns(NOW + timedelta(seconds=60))


def test_when_loki_returns_the_limit_the_next_query_starts_after_the_last_line(loki, sqlite_engine, monkeypatch):
    monkeypatch.setattr(logs, "LOKI_LIMIT", 3)
    target = loki_target(loki.url)
    run(target, sqlite_engine)
    run(target, sqlite_engine)
    newest = max(int(ts) for stream in json.loads(loki.body)["data"]["result"] for ts, _ in stream["values"])
    assert dict(loki.requests[1][1])["start"] == str(newest + 1)


@pytest.mark.parametrize("answer, reason", [
    ((400, (SAMPLES / "loki-query-error-400.txt").read_text().splitlines()[0]),
     "loki: HTTP 400: parse error at line 1, col 15: syntax error: unexpected $end, expecting STRING or ip"),
    ((500, (SAMPLES / "loki-push-error-500.txt").read_text().splitlines()[0]),
     "loki: HTTP 500: rpc error: code = Unknown desc = failed to create stream: no schema config found for time 0"),
    ((200, "<html>\n  <body>upstream proxy</body>\n</html>\n"),
     "loki: HTTP 200, not a query result: <html> <body>upstream proxy</body> </html>"),
    ((200, (SAMPLES / "loki-query_range-matrix.json").read_text()),
     "loki: a matrix result, not streams: the query must select log lines, not compute a metric"),
], ids=["400", "500", "not-json", "matrix"])
def test_loki_errors_are_failed_observations_and_keep_the_position(loki, sqlite_engine, answer, reason):
    target = loki_target(loki.url)
    status, text = answer
    loki.reply(text.encode(), status, content_type="text/plain; charset=utf-8")
    obs = run(target, sqlite_engine).observation
    assert not obs.ok and obs.error == reason
    assert obs.values == {"CONNECTED": True} and obs.status == answer[0]
    assert log_cursor(sqlite_engine, "loki-errors") is None  # the failed window is asked for again


def test_loki_unreachable_or_missing_secret(sqlite_engine):
    obs = run(loki_target(f"http://127.0.0.1:{free_port()}"), sqlite_engine).observation
    assert not obs.ok and obs.error == "cannot connect: connection refused"
    target = loki_target("http://127.0.0.1:1", headers={"Authorization": "Bearer ${LOKI_TOKEN}"})
    obs = run(target, sqlite_engine, env={}).observation
    assert not obs.ok and obs.error == "environment variable LOKI_TOKEN is not set"
