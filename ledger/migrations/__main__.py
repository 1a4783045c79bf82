"""``python -m ledger.migrations revision -m "what changes"``: write the next revision script
into ledger/migrations/versions/, numbered after the current head (see the package's docstring)."""

from __future__ import annotations

import argparse

from alembic import command

from ledger.migrations import config, scripts


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ledger.migrations",
                                     description="Write new revisions of the ledger's schema (see ledger.migrations).")
    commands = parser.add_subparsers(dest="command", required=True)
    revision = commands.add_parser("revision", help="write an empty revision after the current head")
    revision.add_argument("-m", "--message", required=True, help="what the revision changes")
    args = parser.parse_args()
    command.revision(config(), message=args.message, rev_id=f"{int(scripts().get_current_head()) + 1:04d}")


if __name__ == "__main__":
    main()
