"""Engine and sessions: SQLite pragmas, writers taking turns on both databases, opening a
ledger without the write lock, owner-only files, and a worker process writing while another
process reads. Migrations are in test_migrations.py."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, text
from sqlmodel import select

from ledger import queries
from ledger.db import BUSY_TIMEOUT_MS, open_ledger, read_session, retry_conflict, sqlite_url, write_session
from ledger.repo import incidents
from ledger.tables import Evidence, Finding, Incident, Observation, TargetState, TimelineEntry
from policies.schema import HttpTarget
from probes.context import failed, observe
from probes.cycle import record

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def http_target(name: str, failure_threshold: int = 3, success_threshold: int = 2) -> HttpTarget:
    return HttpTarget(kind="http", name=name, service="shop", url=f"http://127.0.0.1:9/{name}",
                      conditions=["[STATUS] == 200"], failure_threshold=failure_threshold,
                      success_threshold=success_threshold)


def count(engine, table) -> int:
    with read_session(engine) as session:
        return session.exec(select(func.count()).select_from(table)).one()


# --- SQLite pragmas and the write lock ---------------------------------------------------


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_engine):
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == BUSY_TIMEOUT_MS
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_sqlite_write_session_holds_the_write_lock_from_its_first_statement(sqlite_engine):
    other = sqlite3.connect(sqlite_engine.url.database, timeout=0, isolation_level=None)
    try:
        with write_session(sqlite_engine) as session:
            session.exec(select(Incident)).all()  # only a read so far, yet the lock is held
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
            assert other.execute("SELECT count(*) FROM incident").fetchone() == (0,), "readers are not blocked"
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("turns", [True, False], ids=["taking-turns", "row-locks-alone"])
def test_postgresql_writers_take_turns_as_on_sqlite(engine, turns):
    """An operator resolves an incident while the worker folds a finding with the same key:
    the worker must wait and then open a new incident, never fold into the resolved one; so
    it does as a house job taking turns and as a fleet's probe write that locks only rows."""
    target = http_target("checkout-api")
    for i in range(3):
        record(engine, target, failed(target, T0 + timedelta(seconds=i), 1.0, "cannot connect"))
    [first] = queries.list_incidents(engine)
    spec = incidents.FindingSpec(rule="probe:http", target="checkout-api", service="shop", severity="warning",
                            summary="checkout-api failing again", correlation_key=first.correlation_key)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with write_session(engine, turns=turns) as session:
                incidents.open_finding(session, spec, [], T0 + timedelta(minutes=2))
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    with write_session(engine) as operator:
        incidents.transition(operator, first.id, "resolved", "alice", "rolled back", T0 + timedelta(minutes=1))
        operator.flush()
        thread = threading.Thread(target=worker)
        thread.start()
        assert wait_for_a_lock_wait(engine), "the worker never waited for the operator's transaction"
    thread.join()
    assert not errors, errors

    assert [(i.id == first.id, i.state, i.finding_count) for i in queries.list_incidents(engine)] == [
        (False, "observed", 1),
        (True, "resolved", 1),
    ]


@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)
def test_two_fleet_writers_opening_the_same_incident_at_once_make_one(engine):
    """Two workers' probe writes (row locks alone) open a finding with the same key at the same
    moment: the second waits on the open-incident key, loses the race, and run again folds its
    finding into the incident the first opened."""
    def spec(target: str) -> incidents.FindingSpec:
        return incidents.FindingSpec(rule="probe:http", target=target, service="shop", severity="warning",
                                     summary=f"{target} failing", correlation_key="shop/checkout")

    def open_second() -> None:
        def write() -> None:
            with write_session(engine, turns=False) as session:
                incidents.open_finding(session, spec("checkout-eu"), [], T0 + timedelta(seconds=1))
        try:
            retry_conflict(write)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    errors: list[BaseException] = []
    with write_session(engine, turns=False) as first:
        incidents.open_finding(first, spec("checkout-us"), [], T0)
        first.flush()
        thread = threading.Thread(target=open_second)
        thread.start()
        assert wait_for_a_lock_wait(engine), "the second writer never waited for the first"
    thread.join()
    assert not errors, errors

    [incident] = queries.list_incidents(engine)
    assert (incident.state, incident.finding_count) == ("observed", 2)
    with read_session(engine) as session:
        assert sorted(f.target for f in session.exec(select(Finding))) == ["checkout-eu", "checkout-us"]


def wait_for_a_lock_wait(engine, attempts: int = 1000) -> bool:
    """Poll PostgreSQL until some session of this database waits for a lock."""
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    with engine.connect() as conn:
        for _ in range(attempts):
            if conn.execute(query).scalar():
                return True
            conn.rollback()  # pg_stat_activity is read once per transaction
            time.sleep(0.01)
    return False


# --- opening the ledger ---------------------------------------------------------------------


def test_opening_an_up_to_date_ledger_takes_no_write_lock(sqlite_engine):
    """A CLI read while the worker holds the write lock: the revision check is a plain read."""
    url = str(sqlite_engine.url)
    writer = sqlite3.connect(sqlite_engine.url.database, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO target_state (target, consecutive_failures, consecutive_successes) "
                       "VALUES ('checkout-api', 1, 0)")
        reader = open_ledger(url)  # with the write lock, this would fail with "database is locked"
        assert count(reader, Incident) == 0
        assert count(reader, TargetState) == 0, "the writer's transaction is not committed yet"
        reader.dispose()
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def mode(path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


@pytest.fixture
def no_umask():
    """No umask to narrow modes: the ones the ledger's files get are the ledger's own."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_a_new_sqlite_ledger_is_readable_by_its_owner_only(tmp_path, no_umask):
    data_dir = tmp_path / "var" / "data"
    engine = open_ledger(sqlite_url(data_dir))
    with write_session(engine) as session:  # a write: the -wal and -shm files exist while connected
        session.add(TargetState(target="checkout-api"))
    assert {path.name: mode(path) for path in data_dir.iterdir()} == {
        "ledger.db": "0o600", "ledger.db-wal": "0o600", "ledger.db-shm": "0o600"}
    assert mode(data_dir) == "0o700"
    engine.dispose()


def test_an_existing_data_directory_keeps_its_mode(tmp_path, no_umask):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    open_ledger(sqlite_url(data_dir)).dispose()
    assert mode(data_dir) == "0o755"
    assert mode(data_dir / "ledger.db") == "0o600"


# --- one process writes while another reads ----------------------------------------------

WRITERS = ("alpha", "beta")
CYCLES = 60  # per writer: a failure opens an incident, a success resolves it


def write_cycles(url: str, name: str, go) -> None:
    """A worker process: each failure opens an incident and the next success resolves it."""
    engine = open_ledger(url)
    target = http_target(name, failure_threshold=1, success_threshold=1)
    go.wait()
    for i in range(CYCLES):
        at = T0 + timedelta(minutes=i)
        record(engine, target, failed(target, at, 1.0, "cannot connect"))
        record(engine, target, observe(target, at + timedelta(seconds=30), 1.0, {"STATUS": 200}, status=200))
    engine.dispose()


def test_a_writer_process_and_a_reader_never_see_database_is_locked(engine, ledger_url):
    spawn = multiprocessing.get_context("spawn")
    go = spawn.Event()
    writers = [spawn.Process(target=write_cycles, args=(ledger_url, name, go)) for name in WRITERS]
    for writer in writers:
        writer.start()
    total = len(WRITERS) * CYCLES
    seen: list[int] = []
    try:
        go.set()
        while any(writer.is_alive() for writer in writers):
            incidents = queries.list_incidents(engine, limit=total)
            open_keys = [i.correlation_key for i in incidents if i.resolved_at is None]
            assert len(open_keys) == len(set(open_keys)), "an open incident was duplicated"
            assert sum(queries.open_incident_counts(engine).values()) <= len(WRITERS)
            seen.append(len(incidents))
    finally:
        for writer in writers:
            writer.join()
    assert [w.exitcode for w in writers] == [0] * len(WRITERS), "a writer failed; its traceback is in the captured stderr"

    assert seen == sorted(seen), "incidents went missing between reads"
    assert any(0 < n < total for n in seen), "no read happened while the writers were writing"
    incidents = queries.list_incidents(engine, limit=total + 1)
    assert len(incidents) == total
    assert {(i.state, i.finding_count) for i in incidents} == {("resolved", 1)}
    assert sum(queries.open_incident_counts(engine).values()) == 0
    assert count(engine, Observation) == 2 * total
    assert count(engine, Finding) == total
    # opened, finding folded in, finding recovered, recovering, resolved
    assert count(engine, TimelineEntry) == 5 * total
    assert count(engine, Evidence) == 2 * total  # the failure that fired, the success that recovered
