"""Alembic migrations on SQLite and PostgreSQL: the head revision makes what ledger/tables.py
declares; ledgers the release before Alembic left at schema versions 1..4 (built here, and
real ones in tests/samples/) open with their rows and end at the same schema as a new ledger;
an upgrade that fails leaves the ledger as it was.

tests/samples/ledger-v4.sqlite.sql and ledger-v4.postgresql.sql were made by that release's
code (commit 8d4fe65): open_ledger on an empty database, then an incident from a failing
probe, an alert's incident, a note, a silence, an approved action request with its spent
approval, a routing decision and a hypothesis run, a log cursor, a rule state and an ingest
payload; dumped with Python's sqlite3 iterdump and with
``pg_dump --no-owner --no-privileges --inserts``.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from contextlib import closing
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, text
from sqlmodel import SQLModel, select

from ledger import migrations, queries
from ledger.db import make_engine, open_ledger, read_session, write_session
from ledger.errors import LedgerError
from ledger.repo import hypotheses, silences
from ledger.tables import (
    ActionRequest,
    Alert,
    ApprovalUse,
    Finding,
    HypothesisRun,
    Incident,
    LogCursor,
    Observation,
    RoutingDecision,
    RuleState,
    Silence,
    TimelineEntry,
)
from tests.support import SAMPLES

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# The previous release's schema_version table, and what it wrote there for each version.
LEGACY_SCHEMA_VERSION = sa.Table(
    "schema_version", sa.MetaData(),
    sa.Column("version", sa.Integer(), primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("description", sa.String(), nullable=False),
)
LEGACY_DESCRIPTIONS = {1: "created at the latest schema", 2: "detector rule state, silences, finding labels",
                       3: "action requests and approvals", 4: "routing decisions, hypothesis runs"}


def schema(engine) -> dict:
    """Tables with their columns (in order: name, type, nullability, default), primary key,
    indexes (with uniqueness and partial WHERE), unique constraints and foreign keys."""
    db = inspect(engine)
    return {
        table: {
            "columns": [(c["name"], repr(c["type"]), c["nullable"], c["default"]) for c in db.get_columns(table)],
            "primary_key": db.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(((i["name"], i["column_names"], i["unique"],
                                {k: str(v) for k, v in i.get("dialect_options", {}).items()})
                               for i in db.get_indexes(table)), key=repr),
            "unique": sorted(((u["name"], u["column_names"]) for u in db.get_unique_constraints(table)), key=repr),
            "foreign_keys": sorted(((f["name"], f["constrained_columns"], f["referred_table"], f["referred_columns"])
                                    for f in db.get_foreign_keys(table)), key=repr),
        }
        for table in sorted(db.get_table_names())
    }


def empty(engine) -> None:
    tables = sa.MetaData()
    tables.reflect(engine)
    tables.drop_all(engine)


@pytest.fixture
def fresh_schema(ledger_url) -> dict:
    """The schema open_ledger gives a new database; the database is empty again after."""
    engine = open_ledger(ledger_url)
    made = schema(engine)
    empty(engine)
    engine.dispose()
    return made


def legacy_ledger(url: str, version: int):
    """A ledger as the release before Alembic left it at ``version``: the schema of the
    matching revision, its schema_version rows (made at 1, migrated since), no alembic_version."""
    engine = make_engine(url)
    with engine.begin() as conn:
        migrations.upgrade(conn, migrations.LEGACY_REVISIONS[version])
        LEGACY_SCHEMA_VERSION.create(conn)
        conn.execute(LEGACY_SCHEMA_VERSION.insert(), [
            {"version": v, "applied_at": T0, "description": LEGACY_DESCRIPTIONS[v]} for v in range(1, version + 1)])
        conn.execute(text("DROP TABLE alembic_version"))
    return engine


def add_v1_rows(engine) -> None:
    """An incident with a finding, its timeline and evidence, an observation and a log cursor,
    written with the columns schema version 1 had."""
    tables = sa.MetaData()
    tables.reflect(engine)
    with engine.begin() as conn:
        conn.execute(tables.tables["incident"].insert(), [dict(
            id=1, title="checkout-api failing", state="observed", severity="critical", service="shop",
            correlation_key="shop/checkout-api", opened_at=T0, updated_at=T0, last_seen_at=T0, finding_count=1)])
        conn.execute(tables.tables["observation"].insert(), [dict(
            id=1, target="checkout-api", kind="http", service="shop", ok=False, started_at=T0, duration_ms=12.5,
            error="cannot connect", checks=[{"condition": "[STATUS] == 200", "ok": False}], values={})])
        conn.execute(tables.tables["finding"].insert(), [dict(
            id=1, rule="probe:http", target="checkout-api", service="shop", severity="critical",
            summary="checkout-api failing", correlation_key="shop/checkout-api", first_seen=T0, last_seen=T0,
            occurrences=3, incident_id=1)])
        conn.execute(tables.tables["timeline_entry"].insert(), [dict(
            incident_id=1, at=T0, actor="workbench", kind="finding", message="finding #1 folded in")])
        conn.execute(tables.tables["evidence"].insert(), [dict(
            incident_id=1, finding_id=1, observation_id=1, at=T0, kind="probe", summary="cannot connect",
            data={"error": "cannot connect"})])
        conn.execute(tables.tables["log_cursor"].insert(), [dict(
            target="app-log", path="/var/log/app.log", inode="2049:131", offset=5_000_000_000, updated_at=T0)])


def count(engine, table) -> int:
    with read_session(engine) as session:
        return session.exec(select(func.count()).select_from(table)).one()


# --- the head revision -------------------------------------------------------------------


def server_defaults_differ(_context, _inspected, _declared, inspected_default, _default,
                           rendered_default) -> bool | None:
    """Compare declared server defaults as literals (``'{}'::json`` is ``{}``): Alembic's own
    check asks PostgreSQL ``'{}'::json = '{}'``, and json has no equality operator. The rest
    (no default declared: PostgreSQL's serial ids) Alembic compares itself."""
    if rendered_default is None:
        return None
    return inspected_default is None or inspected_default.split("::")[0].strip("'") != rendered_default.strip("'")


def test_the_head_revision_makes_what_tables_py_declares(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "compare_server_default": server_defaults_differ})
        assert compare_metadata(context, SQLModel.metadata) == []
        assert context.get_current_heads() == (migrations.scripts().get_current_head(),)
    assert "schema_version" not in inspect(engine).get_table_names()


def test_opening_an_up_to_date_ledger_again_changes_nothing(engine, ledger_url):
    before = schema(engine)
    add_v1_rows(engine)
    again = open_ledger(ledger_url)
    assert schema(again) == before
    assert [i.title for i in queries.list_incidents(again)] == ["checkout-api failing"]
    again.dispose()


# --- ledgers of the release before Alembic -------------------------------------------------


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_a_legacy_ledger_opens_with_its_rows_at_the_schema_of_a_new_one(ledger_url, fresh_schema, version):
    legacy = legacy_ledger(ledger_url, version)
    add_v1_rows(legacy)
    legacy.dispose()

    engine = open_ledger(ledger_url)
    assert schema(engine) == fresh_schema
    [incident] = queries.list_incidents(engine)
    assert (incident.title, incident.state, incident.finding_count) == ("checkout-api failing", "observed", 1)
    with read_session(engine) as session:
        [finding] = session.exec(select(Finding)).all()
        assert (finding.occurrences, finding.labels, finding.suppressed_by) == (3, {}, None)
        assert session.get(LogCursor, "app-log").offset == 5_000_000_000
        assert session.get(Observation, 1).checks == [{"condition": "[STATUS] == 200", "ok": False}]
    assert count(engine, TimelineEntry) == 1
    with write_session(engine) as session:  # the tables later versions added take rows
        silences.add_silence(session, matchers=[{"name": "service", "op": "=", "value": "shop"}], starts_at=T0,
                         ends_at=None, author="alice", comment="deploy", now=T0)
        hypotheses.add_routing_decision(session, RoutingDecision(at=T0, task="hypothesis", incident_id=incident.id))
    engine.dispose()


def load_sample(url: str, dialect: str) -> None:
    """Load tests/samples/ledger-v4.<dialect>.sql into the empty database at ``url``."""
    dump = (SAMPLES / f"ledger-v4.{dialect}.sql").read_text()
    if dialect == "sqlite":
        engine = make_engine(url)  # creates the data directory and the file
        engine.dispose()
        with closing(sqlite3.connect(sa.make_url(url).database)) as conn:
            conn.executescript(dump)
        return
    # psql's own commands (\restrict) are not SQL; the dump sets search_path, so it gets a
    # connection of its own.
    script = "\n".join(line for line in dump.splitlines() if not line.startswith("\\"))
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        psycopg_conn = conn.connection.driver_connection
        psycopg_conn.execute(script)
        psycopg_conn.commit()
    engine.dispose()


def test_a_previous_release_schema_4_ledger_opens_with_its_rows_at_the_schema_of_a_new_one(ledger_url, fresh_schema):
    dialect = sa.make_url(ledger_url).get_backend_name()
    load_sample(ledger_url, dialect)

    engine = open_ledger(ledger_url)
    assert schema(engine) == fresh_schema
    assert "schema_version" not in inspect(engine).get_table_names()
    incidents = sorted(queries.list_incidents(engine), key=lambda i: i.id)
    assert [(i.service, i.severity, i.finding_count) for i in incidents] == [("shop", "warning", 1),
                                                                              ("shop", "critical", 1)]
    detail = queries.incident_detail(engine, incidents[0].id)
    assert "looking at the load balancer" in [entry.message for entry in detail.timeline]
    with read_session(engine) as session:
        [alert] = session.exec(select(Alert)).all()
        assert (alert.alertname, alert.labels["severity"], alert.starts_at) == ("HighErrorRatio", "critical",
                                                                                datetime(2026, 3, 1, 12, 1, tzinfo=UTC))
        [request] = session.exec(select(ActionRequest)).all()
        assert (request.action, request.status, request.parameters["token"]) == ("restart-checkout", "approved",
                                                                                 "${HOOK_TOKEN}")
        assert session.get(ApprovalUse, "appr-0001").request_id == request.id
        [silence] = session.exec(select(Silence)).all()
        assert (silence.comment, silence.matchers) == ("search reindex",
                                                       [{"name": "service", "op": "=", "value": "search"}])
        [decision] = session.exec(select(RoutingDecision)).all()
        assert (decision.route, decision.actual, decision.tokens) == (["local", "remote"], "local", 1020)
        assert session.exec(select(HypothesisRun)).one().decision_id == decision.id
        assert session.get(LogCursor, "app-log").offset == 5_000_000_000
        assert session.exec(select(RuleState)).one().labels == {"service": "shop"}
        assert {f.labels.get("alertname") for f in session.exec(select(Finding)).all()} == {None, "HighErrorRatio"}
    with write_session(engine) as session:  # new rows get the next ids (PostgreSQL: the sequences came along)
        silence = silences.add_silence(session, matchers=[{"name": "service", "op": "=", "value": "shop"}],
                                   starts_at=T0, ends_at=None, author="alice", comment="deploy", now=T0)
    assert silence.id == 2
    engine.dispose()


# --- refusals and failures -----------------------------------------------------------------


def test_workbench_tables_without_a_version_table_are_refused(ledger_url):
    engine = make_engine(ledger_url)
    SQLModel.metadata.create_all(engine, tables=[Incident.__table__])
    with pytest.raises(LedgerError, match="has workbench tables but neither an alembic_version nor a schema_version"):
        open_ledger(ledger_url)
    assert inspect(engine).get_table_names() == ["incident"]
    engine.dispose()


def test_a_ledger_from_a_newer_release_is_refused(engine, ledger_url):
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(LedgerError, match="at revision 0099, which this release does not know"):
        open_ledger(ledger_url)


def test_a_schema_version_no_release_wrote_is_refused(ledger_url):
    engine = legacy_ledger(ledger_url, 4)
    with engine.begin() as conn:
        conn.execute(LEGACY_SCHEMA_VERSION.insert(), [{"version": 7, "applied_at": T0, "description": "?"}])
    with pytest.raises(LedgerError, match="schema_version is 7, which no release of the workbench wrote"):
        open_ledger(ledger_url)
    engine.dispose()


def test_a_failing_upgrade_leaves_the_legacy_ledger_as_it_was(ledger_url):
    engine = legacy_ledger(ledger_url, 1)
    add_v1_rows(engine)
    with engine.begin() as conn:  # revision 0002 creates silence: it will fail half-way
        conn.execute(text("CREATE TABLE silence (id INTEGER PRIMARY KEY)"))
    before = schema(engine)

    with pytest.raises(sa.exc.DatabaseError, match="silence"):
        open_ledger(ledger_url)
    assert schema(engine) == before  # not stamped, schema_version kept, no rule_state, no finding.labels
    with engine.connect() as conn:
        assert conn.execute(text("SELECT max(version) FROM schema_version")).scalar() == 1
    assert count(engine, Observation) == 1
    engine.dispose()


# --- processes starting at once on a new database -------------------------------------------


def open_and_close(url: str, go) -> None:
    go.wait()
    open_ledger(url).dispose()


def test_processes_opening_a_new_ledger_at_once_migrate_it_once(ledger_url, fresh_schema):
    spawn = multiprocessing.get_context("spawn")
    go = spawn.Event()
    openers = [spawn.Process(target=open_and_close, args=(ledger_url, go)) for _ in range(3)]
    for opener in openers:
        opener.start()
    go.set()
    for opener in openers:
        opener.join()
    assert [o.exitcode for o in openers] == [0, 0, 0], "an opener failed; its traceback is in the captured stderr"
    engine = make_engine(ledger_url)
    assert schema(engine) == fresh_schema
    engine.dispose()
