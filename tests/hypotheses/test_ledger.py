"""Migration 4 on both databases: a ledger at the schema before it gets the routing-decision
and hypothesis-run tables, and records decisions in them."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from ledger import queries
from ledger.db import MIGRATIONS, make_engine, migrate, write_session
from ledger.repo import hypotheses
from ledger.tables import RoutingDecision
from tests.hypotheses.seed import NOW


@pytest.fixture
def bare_ledger(ledger_url):
    """An engine on an empty database (SQLite and PostgreSQL) that nothing has migrated yet."""
    engine = make_engine(ledger_url)
    yield engine
    engine.dispose()


def test_migration_4_adds_the_tables_to_an_older_ledger(bare_ledger):
    before = [m for m in MIGRATIONS if m[0] < 4]
    assert migrate(bare_ledger, []) == 1 and migrate(bare_ledger, before) == max(m[0] for m in before)
    with bare_ledger.begin() as conn:
        conn.exec_driver_sql("DROP TABLE hypothesis_run")
        conn.exec_driver_sql("DROP TABLE routing_decision")
    assert not {"routing_decision", "hypothesis_run"} & set(inspect(bare_ledger).get_table_names())

    assert migrate(bare_ledger) == 4
    assert {"routing_decision", "hypothesis_run"} <= set(inspect(bare_ledger).get_table_names())
    with write_session(bare_ledger) as session:
        hypotheses.add_routing_decision(session, RoutingDecision(at=NOW, task="hypothesis", route=["local"],
                                                           expected="local", actual="local"))
    assert [(d.task, d.reason) for d in queries.routing_decisions(bare_ledger)] == [("hypothesis", "none")]
