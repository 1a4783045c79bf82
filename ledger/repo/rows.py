"""What every part of the repository shares: the actor of the workbench's own writes, and
fetching a row by key or failing with a readable NotFound."""

from __future__ import annotations

from sqlmodel import Session

from ledger.errors import NotFound

SYSTEM = "workbench"


def get(session: Session, table, key):
    row = session.get(table, key)
    if row is None:
        raise NotFound(f"no {table.__tablename__.replace('_', ' ')} with id {key}")
    return row

