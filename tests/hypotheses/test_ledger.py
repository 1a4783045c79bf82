"""Migration 4 on both databases: a ledger at the schema before it gets the routing-decision
and hypothesis-run tables, and records decisions in them."""

from __future__ import annotations

from sqlalchemy import inspect

from ledger import migrations, queries
from ledger.db import make_engine, open_ledger, write_session
from ledger.repo import hypotheses
from ledger.tables import RoutingDecision
from tests.hypotheses.seed import NOW


def test_migration_4_adds_the_tables_to_an_older_ledger(ledger_url):
    older = make_engine(ledger_url)
    with older.begin() as conn:
        migrations.upgrade(conn, "0003")
    assert not {"routing_decision", "hypothesis_run"} & set(inspect(older).get_table_names())
    older.dispose()

    engine = open_ledger(ledger_url)
    assert {"routing_decision", "hypothesis_run"} <= set(inspect(engine).get_table_names())
    with write_session(engine) as session:
        hypotheses.add_routing_decision(session, RoutingDecision(at=NOW, task="hypothesis", route=["local"],
                                                           expected="local", actual="local"))
    assert [(d.task, d.reason) for d in queries.routing_decisions(engine)] == [("hypothesis", "none")]
    engine.dispose()
