"""Engine, sessions, and opening the ledger at its latest schema.

SQLite (the default, a file under the data directory) runs in WAL mode with a busy
timeout, so the UI, the CLI and notebooks read while the worker writes. Writes take the
write lock up front (BEGIN IMMEDIATE) so two writers wait for each other instead of
failing with "database is locked". PostgreSQL takes the same code, given a URL; there a
plain write session takes a transaction-level advisory lock first, so such writers take turns
the same way and their read-then-write steps never act on a stale row.

The writes a fleet makes all the time (probe results, threshold state, findings and the
incidents they fold into, heartbeats, sample batches) do not take turns:
``write_session(engine, turns=False)`` begins without the lock and each write locks the rows
it reads to change (``SELECT ... FOR UPDATE``: the target's state, the incident a finding folds
into), with unique keys for what it creates (one open incident per correlation key, one result
per target, slot and location). Every change of an incident locks its row first, whichever
kind of session makes it, so an operator resolving an incident and a worker folding a finding
into it take turns on that row alone. A transaction PostgreSQL ends to break a deadlock, or
that lost a race to create a row, is run again by ``retry_conflict``. Operator actions, alert
ingest and the house jobs (one worker at a time) keep taking turns with each other
(``take_turn`` moves a rows-only session to turns).

The SQLite ledger is its owner's alone: a data directory make_engine creates is 0700 and a
ledger file it creates is 0600 (SQLite gives the -wal and -shm files the same mode);
directories and files that already exist keep theirs. Schema migrations are Alembic
revisions in ledger/migrations, which says how to add one.

An engine ``with_secrets`` knows the values of the secrets the policy references: the
repository masks them (and secret-shaped strings, whatever the engine) in every row it writes
from outside text, and the queries in every row they show.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from psycopg import errors
from sqlalchemy import Engine, event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, create_engine

from ledger import migrations

BUSY_TIMEOUT_MS = 15_000
POSTGRES_WRITE_LOCK = 0x5E1ED6E5  # pg_advisory_xact_lock key of the ledger's write lock
SECRETS_OPTION = "ledger_secrets"  # the execution option that carries with_secrets' source
T = TypeVar("T")


def utcnow() -> datetime:
    """The ledger's clock: timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(at: datetime) -> datetime:
    """``at`` in UTC; a time without an offset (as SQLite gives back what was written) is taken as UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def sqlite_url(data_dir: Path | str) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'ledger.db'}"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            _create_owner_only(Path(path))
        engine = create_engine(
            url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(url, pool_pre_ping=True)
        event.listen(engine, "begin", _postgres_begin)
    return engine


def _create_owner_only(path: Path) -> None:
    """Create the ledger's directory (0700) and file (0600) unless they exist: created with
    these modes, which the umask can only narrow, rather than chmod-ed after."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # transactions are begun explicitly in _sqlite_begin
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get("ledger_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def _postgres_begin(conn: Connection) -> None:
    if conn.get_execution_options().get("ledger_write") == "turns":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({POSTGRES_WRITE_LOCK})")


def take_turn(session: Session) -> None:
    """In a ``write_session(engine, turns=False)``: from here on, take turns with every other
    writer (as a plain write session does from its start)."""
    if session.get_bind().dialect.name == "postgresql" and not session.info.get("turn"):
        session.exec(text(f"SELECT pg_advisory_xact_lock({POSTGRES_WRITE_LOCK})"))
        session.info["turn"] = True


def retry_conflict(write: Callable[[], T], attempts: int = 3) -> T:
    """``write()`` (one whole transaction), again if PostgreSQL ended it to break a deadlock, or
    it lost a race to create a row with the same unique key (an incident two writers opened at
    once, a result a worker whose lease expired recorded meanwhile): run again, it finds that row."""
    for attempt in range(attempts):
        try:
            return write()
        except (OperationalError, IntegrityError) as exc:
            lost = isinstance(exc.orig, errors.DeadlockDetected | errors.UniqueViolation)
            if not lost or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def with_secrets(engine: Engine, secrets: Callable[[], Iterable[str]]) -> Engine:
    """``engine`` (sharing its connections) whose sessions mask the values ``secrets()`` gives,
    asked at each use, so that a policy reloaded meanwhile counts."""
    return engine.execution_options(**{SECRETS_OPTION: secrets})


def known_secrets(session: Session) -> frozenset[str]:
    """The secret values the session's engine knows (see ``with_secrets``); none by default."""
    source = session.get_bind().get_execution_options().get(SECRETS_OPTION)
    return frozenset(source()) if source else frozenset()


@contextmanager
def write_session(engine: Engine, turns: bool = True) -> Iterator[Session]:
    """A session whose transaction holds the write lock from its first statement; commits on exit.
    ``turns=False``: on PostgreSQL, only the rows it locks, until ``take_turn`` (see the module's text)."""
    with Session(engine.execution_options(ledger_write="turns" if turns else "rows"), expire_on_commit=False) as session:
        with session.begin():
            yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def open_ledger(url: str) -> Engine:
    """An engine on an up-to-date schema (see ledger.migrations). Checking the revision is a
    plain read, so opening an up-to-date ledger never waits for a writer; only a new or older
    ledger takes the write lock to migrate, and checks again under it, since another process
    may have migrated it meanwhile."""
    engine = make_engine(url)
    with engine.connect() as conn:
        current = migrations.is_current(conn)
    if not current:
        with engine.execution_options(ledger_write="turns").begin() as conn:
            migrations.upgrade(conn)
    return engine
