"""What every part of the repository shares: the actor of the workbench's own writes, fetching
(and locking) a row by key or failing with a readable NotFound, and masking secrets in what came from outside."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from ledger.db import known_secrets
from ledger.errors import NotFound
from policies.secrets import redact_data

SYSTEM = "workbench"


def get(session: Session, table, key, lock: bool = False):
    """The row, or NotFound. ``lock``: read afresh and locked (``SELECT ... FOR UPDATE``) until the
    transaction ends, for a change that depends on what the row holds now."""
    row = session.get(table, key, with_for_update=lock or None, populate_existing=lock)
    if row is None:
        raise NotFound(f"no {table.__tablename__.replace('_', ' ')} with id {key}")
    return row


def masked(session: Session, value):
    """``value`` (text, or JSON-like data) with the secret values the session's engine knows, in
    any encoding, and secret-shaped strings masked."""
    return redact_data(value, known_secrets(session))


def mask(session: Session, row, fields: tuple[str, ...]):
    """Mask secrets, as ``masked`` does, in the row's ``fields`` (those that take text from
    outside); return the row."""
    secrets = known_secrets(session)
    for name in fields:
        setattr(row, name, redact_data(getattr(row, name), secrets))
    return row


def locked_row(session: Session, table, **key):
    """The row of ``table`` with primary key ``key``, created with its defaults if missing, and
    locked (``SELECT ... FOR UPDATE``) until the transaction ends: transactions that read and then
    write it take turns, and two that create it at once make one row."""
    identity = tuple(key.values()) if len(key) > 1 else next(iter(key.values()))
    row = session.get(table, identity, with_for_update=True)
    if row is not None:
        return row
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(table).values(**table(**key).model_dump()).on_conflict_do_nothing())
    return session.get(table, identity, with_for_update=True, populate_existing=True)
