"""Engine, sessions and schema migrations.

SQLite (the default, a file under the data directory) runs in WAL mode with a busy
timeout, so the UI, the CLI and notebooks read while the worker writes. Writes take the
write lock up front (BEGIN IMMEDIATE) so two writers wait for each other instead of
failing with "database is locked". PostgreSQL takes the same code, given a URL; there a
write transaction takes a transaction-level advisory lock first, so writers take turns
the same way and the repository's read-then-write steps never act on a stale row (under
READ COMMITTED a finding could otherwise fold into an incident resolved meanwhile).

An engine ``with_secrets`` knows the values of the secrets the policy references: the
repository masks them (and secret-shaped strings, whatever the engine) in every row it writes
from outside text, and the queries in every row they show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, event, inspect, text
from sqlalchemy.engine import Connection
from sqlmodel import Session, SQLModel, create_engine, select

from ledger import tables
from ledger.errors import LedgerError

BUSY_TIMEOUT_MS = 15_000
POSTGRES_WRITE_LOCK = 0x5E1ED6E5  # pg_advisory_xact_lock key of the ledger's write lock
SECRETS_OPTION = "ledger_secrets"  # the execution option that carries with_secrets' source


def utcnow() -> datetime:
    """The ledger's clock: timezone-aware UTC."""
    return datetime.now(UTC)


def sqlite_url(data_dir: Path | str) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'ledger.db'}"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(url, pool_pre_ping=True)
        event.listen(engine, "begin", _postgres_begin)
    return engine


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
    if conn.get_execution_options().get("ledger_write"):
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({POSTGRES_WRITE_LOCK})")


def with_secrets(engine: Engine, secrets: Callable[[], Iterable[str]]) -> Engine:
    """``engine`` (sharing its connections) whose sessions mask the values ``secrets()`` gives,
    asked at each use, so that a policy reloaded meanwhile counts."""
    return engine.execution_options(**{SECRETS_OPTION: secrets})


def known_secrets(session: Session) -> frozenset[str]:
    """The secret values the session's engine knows (see ``with_secrets``); none by default."""
    source = session.get_bind().get_execution_options().get(SECRETS_OPTION)
    return frozenset(source()) if source else frozenset()


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transaction holds the write lock from its first statement; commits on exit."""
    with Session(engine.execution_options(ledger_write=True), expire_on_commit=False) as session:
        with session.begin():
            yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


# Ordered migrations after the first schema. Each takes a connection inside the upgrade's
# transaction. A new database is created from the current tables and stamped with the
# latest version; an existing one runs the migrations it has not had yet.
Migration = tuple[int, str, Callable[[Connection], None]]
def _v2_rules_and_silences(conn: Connection) -> None:
    """Detector rule state, silences and maintenance windows; findings get labels and a
    suppression reason."""
    for table in (tables.RuleState, tables.Silence):
        table.__table__.create(conn, checkfirst=True)
    columns = {c["name"] for c in inspect(conn).get_columns("finding")}
    if "labels" not in columns:
        conn.execute(text("ALTER TABLE finding ADD COLUMN labels JSON NOT NULL DEFAULT '{}'"))
    if "suppressed_by" not in columns:
        conn.execute(text("ALTER TABLE finding ADD COLUMN suppressed_by VARCHAR"))


def _v3_remediation(conn: Connection) -> None:
    """Action requests (proposal, decision, run, verification) and spent approval tokens."""
    for table in (tables.ActionRequest, tables.ApprovalUse):
        table.__table__.create(conn, checkfirst=True)


def _v4_hypotheses_and_routing(conn: Connection) -> None:
    """Routing decisions of LLM calls and refinements of drafted hypotheses."""
    for table in (tables.RoutingDecision, tables.HypothesisRun):
        table.__table__.create(conn, checkfirst=True)


MIGRATIONS: list[Migration] = [(2, "detector rule state, silences, finding labels", _v2_rules_and_silences),
                               (3, "action requests and approvals", _v3_remediation),
                               (4, "routing decisions, hypothesis runs", _v4_hypotheses_and_routing)]
BASELINE = (1, "initial schema")


def latest_version(migrations: list[Migration] = MIGRATIONS) -> int:
    return max([BASELINE[0], *(number for number, _, _ in migrations)])


def migrate(engine: Engine, migrations: list[Migration] = MIGRATIONS) -> int:
    """Bring the schema up to date; return the version it is at."""
    with engine.execution_options(ledger_write=True).begin() as conn:
        existing = set(inspect(conn).get_table_names())
        if "schema_version" not in existing:
            if existing & {"incident", "observation"}:
                raise LedgerError("the database has workbench tables but no schema_version table")
            SQLModel.metadata.create_all(conn)
            conn.execute(
                tables.SchemaVersion.__table__.insert(),
                [{"version": latest_version(migrations), "applied_at": utcnow(),
                  "description": "created at the latest schema"}],
            )
            return latest_version(migrations)
        current = conn.execute(select(tables.SchemaVersion.version)).scalars().all()
        version = max(current, default=0)
        for number, description, apply in sorted(migrations, key=lambda m: m[0]):
            if number > version:
                apply(conn)
                conn.execute(
                    tables.SchemaVersion.__table__.insert(),
                    [{"version": number, "applied_at": utcnow(), "description": description}],
                )
                version = number
        return version


def open_ledger(url: str) -> Engine:
    """An engine on an up-to-date schema."""
    engine = make_engine(url)
    migrate(engine)
    return engine
