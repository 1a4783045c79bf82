"""`workbench silences`: list, add (silences and maintenance windows, one-off or recurring), expire."""

from __future__ import annotations

import argparse
import dataclasses

from app.cli.output import add_format, print_rows
from app.cli.types import positive_integer
from app.cli.who import operator
from app.operator import create_silence, expire_silence
from app.render import describe_when, silence_table
from app.settings import Paths
from ledger import db, queries
from policies.errors import WorkbenchError

ADD_EXAMPLES = """examples:
  workbench silences add --match service=shop --duration 2h --comment 'deploy'
  workbench silences add --maintenance --match target=~'db-.*' --starts 2026-03-28T22:00Z --duration 4h \
--comment 'db upgrade'
  workbench silences add --maintenance --match service=backup --every weekly --days sat,sun --at 02:00 \
--timezone Europe/Berlin --duration 2h --comment 'weekend backups'"""


def register(sub) -> None:
    p = sub.add_parser("silences", help="silences and maintenance windows: covered findings open no incident")
    sil_sub = p.add_subparsers(title="silence commands", metavar="COMMAND", required=True)
    ls = sil_sub.add_parser("list", help="silences and maintenance windows in force or to come, newest first")
    add_format(ls)
    ls.add_argument("--all", action="store_true", help="expired ones too")
    ls.set_defaults(handler=cmd_list)
    add = sil_sub.add_parser(
        "add", help="silence findings whose labels match, or add a maintenance window",
        description="Findings whose labels match every --match are kept but open no incident while the silence "
                    "or maintenance window is in force; still firing when it ends, they open one then.",
        epilog=ADD_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("--match", action="append", required=True, metavar="KEY=VALUE",
                     help="label matcher KEY=VALUE, KEY!=VALUE, KEY=~REGEX or KEY!~REGEX (repeatable; all must match)")
    add.add_argument("--duration", required=True, help="how long, e.g. 30m, 2h, 1d (recurring: each occurrence)")
    add.add_argument("--comment", required=True, help="why (shown with it)")
    add.add_argument("--starts", default="now", metavar="ISO-8601|now",
                     help="when it starts, UTC unless the time has an offset (default now)")
    add.add_argument("--author", metavar="NAME", help="on whose behalf (recorded with the local user who entered it)")
    add.add_argument("--maintenance", action="store_true", help="a maintenance window rather than a silence")
    rec = add.add_argument_group("recurring maintenance window")
    rec.add_argument("--every", choices=("daily", "weekly"), help="repeat the window every day or week")
    rec.add_argument("--at", metavar="HH:MM", help="local time each occurrence starts")
    rec.add_argument("--days", metavar="sat,sun", help="weekdays of a weekly window")
    rec.add_argument("--timezone", metavar="ZONE", help="IANA time zone of --at, e.g. Europe/Berlin or UTC")
    rec.add_argument("--until", metavar="ISO-8601", help="when the window ends for good (default: never)")
    add.set_defaults(handler=cmd_add)
    exp = sil_sub.add_parser("expire", help="end a silence or maintenance window now")
    exp.add_argument("id", type=positive_integer)
    exp.set_defaults(handler=cmd_expire)


def cmd_list(args, paths: Paths) -> int:
    now = db.utcnow()
    rows = queries.list_silences(paths.ledger(), now, include_expired=args.all)
    print_rows(rows, args.format, lambda rows: silence_table(rows, now))
    return 0


def cmd_add(args, paths: Paths) -> int:
    window_options = {"--at": args.at, "--days": args.days, "--timezone": args.timezone, "--until": args.until}
    if args.every and not args.maintenance:
        raise WorkbenchError("--every makes a recurring maintenance window: add --maintenance")
    if args.every and not (args.at and args.timezone):
        raise WorkbenchError("a recurring window needs --at HH:MM and --timezone ZONE (e.g. Europe/Berlin)")
    if not args.every and (given := [flag for flag, value in window_options.items() if value]):
        raise WorkbenchError(f"{', '.join(given)}: only for a recurring window (--every daily|weekly)")
    now = db.utcnow()
    silence = create_silence(
        paths.ledger(), kind="maintenance" if args.maintenance else "silence",
        matchers=args.match, duration=args.duration, comment=args.comment, author=_author(args.author, paths),
        now=now, starts=args.starts, every=args.every, at=args.at, timezone=args.timezone, until=args.until,
        days=[day.strip() for day in args.days.split(",")] if args.days else None,
    )
    print(f"{silence.kind} #{silence.id} created: {describe_when(silence, now)}")
    return 0


def _author(on_behalf_of: str | None, paths: Paths):
    """Who adds the silence: the OS user, and whom they name with --author, if anyone."""
    identity = operator(paths)
    if on_behalf_of and on_behalf_of != identity.name:
        return dataclasses.replace(identity, name=f"{on_behalf_of} (entered by {identity.name})")
    return identity


def cmd_expire(args, paths: Paths) -> int:
    now = db.utcnow()
    silence = expire_silence(paths.ledger(), args.id, operator(paths), now)
    end = silence.expired_at or silence.ends_at
    verb = "expired" if silence.expired_at == now else "had already ended"
    print(f"{silence.kind} #{silence.id} {verb} at {end:%Y-%m-%d %H:%M:%S} UTC")
    return 0
