"""Alembic's environment for the ledger: runs the revisions on the connection that
``ledger.migrations.config`` was given, inside that connection's transaction."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the ledger's migrations run on the ledger's own connection: open it with "
                       "ledger.db.open_ledger (python -m ledger.migrations only writes new revisions)")
# All of it runs in the caller's transaction, which on SQLite holds DDL too.
context.configure(connection=connection, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
