"""`workbench incidents`: list, show, work (triage, contain, escalate, suppress, resolve), the
root-cause hypotheses and the post-mortem draft of one incident, and importing past outages from
another tool."""

from __future__ import annotations

import json
import sys

from app.cli.output import add_format, print_rows
from app.cli.types import positive_integer, read_import, write_output
from app.cli.who import operator
from app.hypotheses_text import hypotheses_text
from app.operator import acknowledge, act, feedback, import_history, needs_reason
from app.render import finding_table, incident_table
from app.settings import Paths
from ledger import db, queries
from ledger.lifecycle import OPERATOR_ACTIONS, STATES, Verdict
from ledger.postmortem import postmortem
from ledger.samples import SampleStore
from policies.errors import one_line
from policies.loader import load_policy


def register(sub) -> None:
    p = sub.add_parser("incidents", help="list, show and work incidents")
    inc_sub = p.add_subparsers(title="incident commands", metavar="COMMAND", required=True)
    ls = inc_sub.add_parser("list", help="list incidents, newest open first")
    ls.add_argument("--state", action="append", choices=STATES, help="only this state (repeatable)")
    ls.add_argument("--severity", action="append", choices=("info", "warning", "critical"), help="repeatable")
    ls.add_argument("--service", action="append", help="only this service (repeatable)")
    add_format(ls)
    ls.set_defaults(handler=cmd_list)
    show = inc_sub.add_parser("show", help="one incident with its timeline and evidence")
    show.add_argument("id", type=positive_integer)
    add_format(show)
    show.set_defaults(handler=cmd_show)
    for action, state in OPERATOR_ACTIONS.items():
        a = inc_sub.add_parser(action, help=f"move an incident to {state}")
        a.add_argument("id", type=positive_integer)
        a.add_argument("--reason", required=needs_reason(action), help="why (recorded in the timeline)")
        a.set_defaults(handler=cmd_act, action=action)
    ack = inc_sub.add_parser("ack", help="acknowledge an incident: you have it, its escalation stops")
    ack.add_argument("id", type=positive_integer)
    ack.set_defaults(handler=cmd_ack)
    hyp = inc_sub.add_parser("hypotheses", help="the drafted root-cause hypotheses and the model's refinement")
    hyp.add_argument("id", type=positive_integer)
    add_format(hyp)
    hyp.set_defaults(handler=cmd_hypotheses)
    fb = inc_sub.add_parser("feedback", help="say whether an incident's findings were useful, noise or expected")
    fb.add_argument("id", type=positive_integer)
    fb.add_argument("--verdict", required=True, choices=list(Verdict))
    fb.add_argument("--finding", type=positive_integer, help="only this finding (default: every finding of it)")
    fb.add_argument("--reason", help="why (on the timeline)")
    fb.set_defaults(handler=cmd_feedback)
    pm = inc_sub.add_parser("postmortem", help="the post-mortem draft of one incident, as Markdown")
    pm.add_argument("id", type=positive_integer)
    pm.add_argument("--format", choices=("md",), default="md")
    pm.add_argument("--output", metavar="PATH", help="write it there instead of printing it")
    pm.set_defaults(handler=cmd_postmortem)
    imp = inc_sub.add_parser("import", help="record past outages from another tool's export (CSV or JSON Lines)")
    imp.add_argument("file", metavar="FILE", help=".csv with a header row, or .jsonl")
    imp.set_defaults(handler=cmd_import)


def cmd_list(args, paths: Paths) -> int:
    engine = paths.ledger()
    rows = queries.list_incidents(engine, states=args.state, severities=args.severity, services=args.service)
    print_rows(rows, args.format, incident_table)
    return 0


def cmd_show(args, paths: Paths) -> int:
    detail = queries.incident_detail(paths.ledger(), args.id)
    if args.format == "json":
        print(detail.model_dump_json(indent=2))
        return 0
    print(incident_table([detail]))
    print("\nFindings:")
    print(finding_table(detail.findings))
    print("\nTimeline:")
    for item in detail.timeline:
        change = f" [{item.from_state or '-'} -> {item.to_state}]" if item.to_state else ""
        print(f"  {item.at:%Y-%m-%d %H:%M:%S}Z {item.actor:<12} {item.kind:<10}{change} {item.message}")
    print("\nEvidence:")
    for item in detail.evidence:
        print(f"  {item.at:%Y-%m-%d %H:%M:%S}Z {item.summary}")
        for check in item.checks:
            print(f"      {'ok  ' if check['ok'] else 'FAIL'} {check['text']}")
    return 0


def cmd_act(args, paths: Paths) -> int:
    state = act(paths.ledger(), args.id, args.action, args.reason, actor=operator(paths))
    print(f"incident {args.id} is now {state}")
    return 0


def cmd_ack(args, paths: Paths) -> int:
    incident = acknowledge(paths.ledger(), args.id, actor=operator(paths), via="CLI")
    print(f"incident {args.id} acknowledged by {incident.acknowledged_by} at "
          f"{incident.acknowledged_at:%Y-%m-%d %H:%M:%S} UTC")
    return 0


def cmd_hypotheses(args, paths: Paths) -> int:
    from hypotheses.refine import hypotheses_view

    view = hypotheses_view(paths.ledger(), SampleStore(paths.samples_dir),
                           load_policy(paths.policy_dir), args.id, db.utcnow())
    print(json.dumps(view.as_json(), indent=2) if args.format == "json" else hypotheses_text(view))
    return 0


def cmd_postmortem(args, paths: Paths) -> int:
    text = postmortem(paths.ledger(), args.id)
    if args.output:
        print(f"wrote {write_output(args.output, text)}")
    else:
        print(text, end="")
    return 0


def cmd_import(args, paths: Paths) -> int:
    path, data = read_import(args.file)
    report = import_history(paths.ledger(), data, path.name, actor=operator(paths))
    shown = one_line(str(path))
    for number, reason in report.invalid:
        print(f"{shown}: line {number}: {one_line(reason)}", file=sys.stderr)
    print(f"{shown}: imported {report.imported} incident(s); {report.already} already imported, "
          f"{len(report.invalid)} invalid line(s)")
    return 1 if report.invalid else 0


def cmd_feedback(args, paths: Paths) -> int:
    marked = feedback(paths.ledger(), args.id, args.verdict, actor=operator(paths), reason=args.reason,
                      finding_id=args.finding)
    print(f"incident {args.id}: finding(s) {', '.join(f'#{i}' for i in marked)} marked {args.verdict}")
    return 0
