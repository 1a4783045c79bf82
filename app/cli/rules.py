"""`workbench rules`: the detector rules in force, and a rule's backtest over stored history."""

from __future__ import annotations

import json
from datetime import timedelta

from pydantic import BaseModel

from app.backtests import backtest, backtest_text
from app.cli.output import add_format, print_rows
from app.cli.types import parse_since
from app.operator import parse_when
from app.settings import Paths
from ledger import db
from ledger.samples import SampleStore
from policies.errors import WorkbenchError
from policies.loader import load_policy
from policies.schema import format_duration

DEFAULT_RANGE = timedelta(days=7)


class RuleItem(BaseModel):
    """The stable JSON shape of ``workbench rules list --format json``."""

    name: str
    kind: str
    service: str | None
    severity: str
    window: str
    for_: str
    keep_firing_for: str
    origin: str  # policy (a hand-written file) or learned
    revision: int | None  # of a learned rule
    mode: str  # live or shadow
    enabled: bool


def register(sub) -> None:
    p = sub.add_parser("rules", help="detector rules: list them, backtest one over stored history")
    rules_sub = p.add_subparsers(title="rule commands", metavar="COMMAND", required=True)
    ls = rules_sub.add_parser("list", help="every detector rule, its origin and mode")
    add_format(ls)
    ls.set_defaults(handler=cmd_list)
    bt = rules_sub.add_parser("backtest", help="replay a rule over stored samples and score it against incidents")
    bt.add_argument("name")
    bt.add_argument("--since", metavar="TIME", help="from this ISO 8601 time or this long ago (24h, 7d); default 7d")
    bt.add_argument("--from", dest="start", metavar="ISO", help="from this time (with --to)")
    bt.add_argument("--to", dest="end", metavar="ISO", help="to this time (default now)")
    add_format(bt)
    bt.set_defaults(handler=cmd_backtest)


def cmd_list(args, paths: Paths) -> int:
    policy = load_policy(paths.policy_dir)
    rows = [RuleItem(name=r.name, kind=r.kind, service=r.service, severity=r.severity, window=format_duration(r.window),
                     for_=format_duration(r.for_), keep_firing_for=format_duration(r.keep_firing_for), origin="policy",
                     revision=None, mode="live", enabled=r.enabled) for r in policy.rules.resolved]
    print_rows(rows, args.format, rule_table)
    return 0


def rule_table(rows) -> str:
    if not rows:
        return "(no rules)"
    head = f"{'NAME':<32} {'KIND':<13} {'SERVICE':<16} {'WINDOW':>7} {'FOR':>5} {'ORIGIN':<8} MODE"
    return "\n".join([head] + [f"{r.name:<32} {r.kind:<13} {r.service or '-':<16} {r.window:>7} {r.for_:>5} "
                               f"{r.origin:<8} {r.mode}{'' if r.enabled else ' (disabled)'}" for r in rows])


def cmd_backtest(args, paths: Paths) -> int:
    now = db.utcnow()
    if args.since and (args.start or args.end):
        raise WorkbenchError("give --since, or --from and --to, not both")
    try:
        end = parse_when(args.end, now) if args.end else now
        start = parse_when(args.start, now) if args.start else None
    except ValueError as exc:
        raise WorkbenchError(str(exc)) from None
    if start is None:
        start = parse_since(args.since, now) if args.since else end - DEFAULT_RANGE
    report = backtest(paths.ledger(), SampleStore(paths.samples_dir), load_policy(paths.policy_dir), args.name,
                      start, end)
    print(json.dumps(report.as_json(), indent=2) if args.format == "json" else backtest_text(report))
    return 0
