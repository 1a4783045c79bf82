"""`workbench approvals`: action requests waiting for a decision; approve or reject one, propose an action."""

from __future__ import annotations

from app import operator
from app.cli.output import add_format, print_rows
from app.cli.types import positive_integer
from app.cli.who import operator as who
from app.settings import Paths
from ledger import db, queries
from ledger.lifecycle import RequestStatus
from policies.errors import WorkbenchError
from policies.loader import load_policy


def register(sub) -> None:
    p = sub.add_parser("approvals", help="action requests: list, approve or reject them, propose an action")
    app_sub = p.add_subparsers(title="approval commands", metavar="COMMAND", required=True)
    ls = app_sub.add_parser("list", help="action requests waiting for a decision (or of --status), newest first")
    ls.add_argument("--status", action="append", choices=tuple(RequestStatus), help="only this status (repeatable; "
                    "default pending)")
    ls.add_argument("--all", action="store_true", help="every request, whatever its status")
    add_format(ls)
    ls.set_defaults(handler=cmd_list)
    for verb, handler in (("approve", cmd_approve), ("reject", cmd_reject)):
        d = app_sub.add_parser(verb, help=f"{verb} a pending action request")
        d.add_argument("id", type=positive_integer)
        d.add_argument("--reason", required=True, help="why (recorded in the incident's timeline)")
        d.set_defaults(handler=handler)
    prop = app_sub.add_parser("propose", help="propose an action of actions.yaml on an incident (gated)")
    prop.add_argument("incident", type=positive_integer)
    prop.add_argument("action", help="the action's id in actions.yaml")
    prop.add_argument("--param", action="append", metavar="NAME=VALUE", help="a parameter (repeatable)")
    prop.add_argument("--reason", default="proposed by the operator", help="why (recorded in the timeline)")
    prop.set_defaults(handler=cmd_propose)


def cmd_list(args, paths: Paths) -> int:
    statuses = None if args.all else args.status or [RequestStatus.PENDING]
    rows = queries.list_action_requests(paths.ledger(), statuses=statuses)
    print_rows(rows, args.format, request_table)
    return 0


def request_table(rows: list[queries.ActionRequestItem]) -> str:
    lines = [f"{'ID':>5}  {'STATUS':<10} {'RISK':<12} {'ACTION':<20} {'INCIDENT':>8}  {'PROPOSED (UTC)':<19}  PLAN"]
    lines += [f"{r.id:>5}  {r.status:<10} {r.risk:<12} {r.action:<20} {r.incident_id:>8}  "
              f"{r.proposed_at:%Y-%m-%d %H:%M:%S}  {r.plan.splitlines()[0] if r.plan else ''}" for r in rows]
    return "\n".join(lines if rows else [*lines, "(no action requests)"])


def cmd_propose(args, paths: Paths) -> int:
    parameters = dict(_key_value(pair) for pair in args.param or [])
    request = operator.propose(paths.ledger(), load_policy(paths.policy_dir), args.incident, args.action, parameters, actor=who(paths),
                               reason=args.reason, now=db.utcnow())
    waiting = (f"waiting for approval: workbench approvals approve {request.id} --reason TEXT"
               if request.status == RequestStatus.PENDING else "approved: it needs no approval; the worker runs it")
    print(f"action request #{request.id} ({request.action} on incident {request.incident_id}) {waiting}")
    return 0


def _key_value(pair: str) -> tuple[str, str]:
    name, equals, value = pair.partition("=")
    if not (equals and name.strip()):
        raise WorkbenchError(f"--param wants NAME=VALUE, got {pair!r}")
    return name.strip(), value


def cmd_approve(args, paths: Paths) -> int:
    request = operator.approve(paths.ledger(), load_policy(paths.policy_dir), paths.data_dir, args.id, actor=who(paths),
                               reason=args.reason, now=db.utcnow())
    print(f"action request #{request.id} approved by {request.decided_by}: approval {request.approval_id}, good for "
          f"one run until {request.approval_expires_at:%Y-%m-%d %H:%M:%S} UTC; the worker runs it")
    print(f"token: {request.approval_token}")
    return 0


def cmd_reject(args, paths: Paths) -> int:
    request = operator.reject(paths.ledger(), args.id, actor=who(paths),
                              reason=args.reason, now=db.utcnow())
    print(f"action request #{request.id} rejected by {request.decided_by}")
    return 0
