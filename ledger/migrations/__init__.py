"""The ledger's schema migrations, run by Alembic on the engine ``open_ledger`` made.

There is no alembic.ini: ``config`` builds Alembic's configuration here, with this package
as the script location, and hands env.py the caller's connection, so the revisions run on
the ledger's own engine (SQLite pragmas, the write lock) inside the caller's transaction: an
upgrade that fails leaves nothing half done, on SQLite as on PostgreSQL.

Adding a migration:

1. Change the table classes in ledger/tables.py.
2. ``python -m ledger.migrations revision -m "what changes"`` writes versions/NNNN_<slug>.py,
   numbered after the current head.
3. Fill in its ``upgrade()`` with explicit DDL (``op.create_table``, ``op.add_column``,
   ``op.create_index``...), never by importing the table classes: a revision must keep
   making the same schema when tables.py changes later. SQLite alters little in place: a
   change that needs a table rebuild (``op.batch_alter_table``) runs inside the transaction
   with foreign keys enforced, so rebuilding a table that other rows reference fails.
4. tests/ledger/test_migrations.py holds that the revisions make exactly what tables.py
   declares and that older ledgers upgrade to the same schema as a new one.

Revisions are forward-only: a ledger is never downgraded (the release before Alembic
refuses a ledger without its ``schema_version`` table instead of writing to it).

Ledgers from that release carry ``schema_version`` (rows 1..4) and no ``alembic_version``:
``upgrade`` stamps them at the revision matching their highest version, which reproduces
that version's schema exactly, and drops ``schema_version``, so that one table says where a
ledger stands and a migrated ledger is identical to a new one.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from ledger.errors import LedgerError

SCRIPTS = Path(__file__).resolve().parent
# schema_version of the release before Alembic -> the revision that made the same schema
LEGACY_REVISIONS = {1: "0001", 2: "0002", 3: "0003", 4: "0004"}
WORKBENCH_TABLES = {"incident", "observation"}


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration: this package's scripts, run by env.py on ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS).replace("%", "%%"))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.attributes["connection"] = connection
    return cfg


@cache
def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def is_current(conn: Connection) -> bool:
    """Whether the ledger is at the head revision: a plain read of alembic_version (no lock, no
    Alembic context logging at every open). A revision this release does not know (a newer
    release migrated the ledger) is refused."""
    current = set()
    if inspect(conn).has_table("alembic_version"):
        current = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    head = scripts().get_current_head()
    if unknown := current - {script.revision for script in scripts().walk_revisions()}:
        raise LedgerError(f"the ledger is at revision {', '.join(sorted(unknown))}, which this release does not "
                          f"know (its latest is {head}): a newer release migrated it")
    return current == {head}


def upgrade(conn: Connection, revision: str = "head") -> None:
    """Bring the ledger to ``revision`` on ``conn``, which holds the write lock, in its
    transaction. An empty database runs every revision; a ledger of the release before
    Alembic is stamped at its version's revision first; workbench tables with neither
    version table are refused."""
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" not in tables:
        if "schema_version" in tables:
            _adopt_legacy(conn)
        elif tables & WORKBENCH_TABLES:
            raise LedgerError("the database has workbench tables but neither an alembic_version nor a "
                              "schema_version table, so its schema is unknown: refusing to migrate it")
    command.upgrade(config(conn), revision)


def _adopt_legacy(conn: Connection) -> None:
    """Stamp a ledger of the release before Alembic at the revision of its schema_version and
    drop that table (see the module's docstring)."""
    version = conn.execute(text("SELECT max(version) FROM schema_version")).scalar()
    if version not in LEGACY_REVISIONS:
        raise LedgerError(f"the ledger's schema_version is {version}, which no release of the workbench wrote")
    command.stamp(config(conn), LEGACY_REVISIONS[version])
    conn.execute(text("DROP TABLE schema_version"))
