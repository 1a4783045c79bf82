"""`workbench routing`: the routing decisions of LLM calls in a time range, and importing those
another system logged."""

from __future__ import annotations

import sys

from app.cli.output import add_format, print_rows
from app.cli.types import parse_since, positive_integer, read_import
from app.cli.who import operator
from app.hypotheses_text import decision_table
from app.operator import import_routing_decisions
from app.settings import Paths
from ledger import db, queries
from policies.errors import one_line
from policies.loader import load_policy


def register(sub) -> None:
    p = sub.add_parser("routing", help="routing decisions of LLM calls; import another system's")
    rt_sub = p.add_subparsers(title="routing commands", metavar="COMMAND", required=True)
    dec = rt_sub.add_parser("decisions", help="routing decisions, newest first (every one in the range)")
    dec.add_argument("--since", metavar="TIME", help="ISO 8601 time or a duration back from now (24h, 7d)")
    dec.add_argument("--limit", type=positive_integer, help="at most this many")
    add_format(dec)
    dec.set_defaults(handler=cmd_decisions)
    imp = rt_sub.add_parser("import", help="import routing decisions another system logged (JSON Lines)")
    imp.add_argument("file", metavar="FILE.jsonl")
    imp.set_defaults(handler=cmd_import)


def cmd_decisions(args, paths: Paths) -> int:
    since = parse_since(args.since, db.utcnow()) if args.since else None
    rows = queries.routing_decisions(paths.ledger(), since=since, limit=args.limit)
    print_rows(rows, args.format, decision_table)
    return 0


def cmd_import(args, paths: Paths) -> int:
    path, data = read_import(args.file)
    report = import_routing_decisions(paths.ledger(), data, path.name, load_policy(paths.policy_dir).routing,
                                      actor=operator(paths))
    shown = one_line(str(path))
    for number, reason in report.invalid:
        print(f"{shown}: line {number}: {one_line(reason)}", file=sys.stderr)
    print(f"{shown}: imported {report.imported} decision(s); {report.already_imported} already imported, "
          f"{len(report.invalid)} invalid line(s)")
    return 1 if report.invalid else 0
