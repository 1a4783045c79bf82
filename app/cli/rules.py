"""`workbench rules`: the detector rules in force, a rule's backtest over stored history, rule
suggestions learned from history (suggest, list, accept, reject) and the revisions of learned
rules (list, roll back)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from pydantic import BaseModel

from app.cli.output import add_format, print_rows
from app.cli.types import parse_since, positive_integer
from app.cli.who import operator
from app.operator import accept_suggestion, parse_when, reject_suggestion, roll_back_rule
from app.settings import Paths
from learning.backtests import backtest, backtest_text
from ledger import db
from ledger.lifecycle import SuggestionStatus
from ledger.repo import rules as rule_repo
from ledger.samples import SampleStore
from policies.errors import WorkbenchError
from policies.loader import LEARNED, load_policy
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
    register_learning(rules_sub)


def cmd_list(args, paths: Paths) -> int:
    policy = load_policy(paths.policy_dir)
    with db.read_session(paths.ledger()) as session:
        latest = {name: rule_repo.revisions(session, name)[-1].revision for name in policy.learned
                  if rule_repo.revisions(session, name)}
    rows = [RuleItem(name=r.name, kind=r.kind, service=r.service, severity=r.severity, window=format_duration(r.window),
                     for_=format_duration(r.for_), keep_firing_for=format_duration(r.keep_firing_for),
                     origin="learned" if r.name in policy.learned else "policy", revision=latest.get(r.name),
                     mode="shadow" if r.shadow else "live", enabled=r.enabled) for r in policy.rules.resolved]
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


def register_learning(rules_sub) -> None:
    sg = rules_sub.add_parser("suggest", help="learn rule suggestions from history now")
    sg.add_argument("--service", help="only this service")
    sg.set_defaults(handler=cmd_suggest)
    ls = rules_sub.add_parser("suggestions", help="rule suggestions, newest first")
    ls.add_argument("--status", action="append", choices=list(SuggestionStatus), help="only this status (repeatable)")
    add_format(ls)
    ls.set_defaults(handler=cmd_suggestions)
    for verb in ("accept", "reject"):
        d = rules_sub.add_parser(verb, help=f"{verb} a rule suggestion")
        d.add_argument("id", type=positive_integer)
        d.add_argument("--reason", required=True, help="why (kept with the decision)")
        d.set_defaults(handler=cmd_decide, verb=verb)
    rv = rules_sub.add_parser("revisions", help="every revision of a learned rule")
    rv.add_argument("name")
    add_format(rv)
    rv.set_defaults(handler=cmd_revisions)
    rb = rules_sub.add_parser("rollback", help="put an earlier revision of a learned rule back in force (0: remove it)")
    rb.add_argument("name")
    rb.add_argument("revision", type=revision_number)
    rb.add_argument("--reason", required=True)
    rb.set_defaults(handler=cmd_rollback)


class SuggestionItem(BaseModel):
    """The stable JSON shape of ``workbench rules suggestions --format json``."""

    id: int
    created_at: datetime
    kind: str
    name: str
    replaces: str | None
    service: str | None
    status: str
    why: str
    rule: dict
    provenance: dict
    backtest: dict
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None


def cmd_suggest(args, paths: Paths) -> int:
    from learning.suggestions import suggest

    policy = load_policy(paths.policy_dir)
    if policy.rules.learning.mode == "off":
        raise WorkbenchError("learning is off (rules.yaml, learning.mode): nothing is suggested")
    made = suggest(paths.ledger(), SampleStore(paths.samples_dir), policy, db.utcnow(), args.service)
    print(f"{len(made)} suggestion(s){': ' + ', '.join(f'#{i}' for i in made) if made else ''}")
    return 0


def cmd_suggestions(args, paths: Paths) -> int:
    with db.read_session(paths.ledger()) as session:
        rows = [SuggestionItem.model_validate(s, from_attributes=True)
                for s in rule_repo.suggestions(session, args.status)]
    print_rows(rows, args.format, suggestion_table)
    return 0


def suggestion_table(rows) -> str:
    if not rows:
        return "(no suggestions)"
    lines = [f"{'ID':>4} {'STATUS':<10} {'KIND':<5} {'RULE':<32} RECALL  A DAY  WHY"]
    for s in rows:
        ours = s.backtest.get("suggested", {})
        recall = "-" if ours.get("recall") is None else f"{ours['recall']:.0%}"
        lines.append(f"{s.id:>4} {s.status:<10} {s.kind:<5} {s.name:<32} {recall:>6} {ours.get('fires_per_day', 0):>6g}"
                     f"  {s.why}")
    return "\n".join(lines)


def cmd_decide(args, paths: Paths) -> int:
    if args.verb == "accept":
        revision = accept_suggestion(paths.ledger(), paths.policy_dir, args.id, actor=operator(paths),
                                     reason=args.reason, now=db.utcnow())
        print(f"suggestion {args.id} accepted: revision {revision} written to {paths.policy_dir / LEARNED}")
    else:
        reject_suggestion(paths.ledger(), args.id, actor=operator(paths), reason=args.reason, now=db.utcnow())
        print(f"suggestion {args.id} rejected")
    return 0


def cmd_revisions(args, paths: Paths) -> int:
    from learning.suggestions import revisions

    rows = [RevisionItem.model_validate(r, from_attributes=True) for r in revisions(paths.ledger(), args.name)]
    if not rows:
        raise WorkbenchError(f"no learned rule named {args.name!r} has revisions")
    print_rows(rows, args.format, lambda rs: "\n".join(
        f"{r.revision:>3} {r.at:%Y-%m-%d %H:%M}Z {r.actor:<12} {'(removed)' if r.rule is None else 'in force':<10} "
        f"{r.reason}" for r in rs))
    return 0


class RevisionItem(BaseModel):
    name: str
    revision: int
    rule: dict | None
    suggestion_id: int | None
    actor: str
    at: datetime
    reason: str
    backtest: dict


def revision_number(text: str) -> int:
    """A revision of a learned rule: 0 (before the first: no rule), or a positive whole number."""
    return 0 if text.strip() == "0" else positive_integer(text)


def cmd_rollback(args, paths: Paths) -> int:
    new = roll_back_rule(paths.ledger(), paths.policy_dir, args.name, args.revision, actor=operator(paths),
                         reason=args.reason, now=db.utcnow())
    print(f"{args.name}: revision {args.revision} back in force as revision {new}")
    return 0
