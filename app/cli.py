"""The `workbench` command. Errors reach the operator as one line and a non-zero exit status."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from app import settings
from app.hypotheses_text import decision_table, hypotheses_text
from app.operator import act, create_silence, expire_silence, operator_name
from app.render import describe_when, incident_table, silence_table
from ledger import queries
from ledger.db import open_ledger, utcnow
from ledger.lifecycle import OPERATOR_ACTIONS, STATES, RequestStatus, needs_reason
from ledger.samples import SampleStore
from policies.errors import PolicyError, WorkbenchError
from policies.guard import suspicious
from policies.loader import load_policy
from remediation import flow
from remediation.tokens import signing_key

log = logging.getLogger("workbench")
STREAMLIT_APP = settings.ROOT / "app" / "streamlit_app.py"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for noisy in ("apscheduler", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    paths = settings.resolve(args.policy, args.data)
    try:
        return args.handler(args, paths) or 0
    except PolicyError as exc:
        print(f"workbench: policy invalid ({len(exc.problems)} problem(s)): {exc}", file=sys.stderr)
        return 2
    except WorkbenchError as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# --- commands ---------------------------------------------------------------------------
def cmd_up(args, paths: settings.Paths) -> int:
    policy = load_policy(paths.policy_dir)
    env = {**os.environ, **paths.environment()}
    commands = {"worker": ["worker"], "ui": ["ui"]}
    if policy.settings.demo.enabled:
        commands["demo"] = ["demo", "--port", str(policy.settings.demo.port)]
    children: dict[str, subprocess.Popen] = {}
    for name, sub in commands.items():
        children[name] = subprocess.Popen([sys.executable, "-m", "app.cli", *sub], env=env, cwd=settings.ROOT)
    print(f"workbench up: web app on http://127.0.0.1:{policy.settings.ui_port}, worker on "
          f"http://127.0.0.1:{policy.settings.worker_port}/healthz, ledger {paths.database_url}; Ctrl-C stops",
          file=sys.stderr)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    status = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"workbench up: {name} exited with status {child.returncode}; stopping the rest",
                      file=sys.stderr)
                status, stopping = 1, True
                break
        time.sleep(0.2)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return status


def cmd_worker(args, paths: settings.Paths) -> int:
    from app.worker.http import serve

    port = args.port or (int(os.environ[settings.ENV_PORT]) if os.environ.get(settings.ENV_PORT) else None)
    try:
        serve(paths.policy_dir, open_ledger(paths.database_url), SampleStore(paths.samples_dir), port)
    except OSError as exc:
        raise WorkbenchError(f"worker cannot serve on its port: {exc}") from exc
    return 0


def cmd_ui(args, paths: settings.Paths) -> int:
    port = args.port or load_policy(paths.policy_dir).settings.ui_port
    argv = [sys.executable, "-m", "streamlit", "run", str(STREAMLIT_APP), "--server.address=127.0.0.1",
            f"--server.port={port}", "--server.headless=true", "--browser.gatherUsageStats=false", "--client.toolbarMode=minimal"]
    os.execvpe(sys.executable, argv, {**os.environ, **paths.environment()})


def cmd_demo(args, paths: settings.Paths) -> int:
    from app.demo import make_server

    server = make_server(args.port, args.fault)
    print(f"demo service on http://127.0.0.1:{args.port}/ (fault: {args.fault}); "
          f"switch with: workbench demo fault errors|latency|down|none", file=sys.stderr)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def cmd_demo_fault(args, paths: settings.Paths) -> int:
    import httpx

    from app.demo import set_fault

    try:
        print(f"demo fault: {set_fault(args.port, args.mode)}")
    except httpx.HTTPError as exc:
        raise WorkbenchError(f"no demo service answered on port {args.port}: {exc}") from exc
    return 0


def cmd_probe_run(args, paths: settings.Paths) -> int:
    from detectors.cycle import run_rules
    from probes.context import ProbeClient, ProbeContext
    from probes.cycle import run_target

    policy = load_policy(paths.policy_dir)
    targets = [t for t in policy.targets if t.enabled]
    if args.target:
        targets = [t for t in policy.targets if t.name == args.target]
        if not targets:
            raise WorkbenchError(f"no target named {args.target!r} in {paths.policy_dir}")
    engine = open_ledger(paths.database_url)
    store = SampleStore(paths.samples_dir)

    async def run_all():
        ctx = ProbeContext(ProbeClient(policy.settings.max_connections),
                           max_body_bytes=policy.settings.max_body_bytes, engine=engine)
        try:
            return await asyncio.gather(*(run_target(engine, t, ctx, store) for t in targets))
        finally:
            await ctx.aclose()

    outcomes = asyncio.run(run_all())
    store.flush()
    for target, outcome in zip(targets, outcomes):
        obs = outcome.observation
        print(f"{target.name:<24} {'ok' if obs.ok else 'FAIL':<4} {obs.duration_ms:8.1f} ms  "
              f"{outcome.signal.value}{': ' + obs.error if obs.error else ''}")
    detected = run_rules(engine, store, policy)
    changed = {k: v for k, v in detected.signals.items() if k not in ("none", "still_firing")}
    print(f"rules: {detected.rules} evaluated over {detected.samples:,} samples"
          f"{', ' + ', '.join(f'{n} {k}' for k, n in changed.items()) if changed else ''}"
          f"{f', {detected.released} suppressed findings released' if detected.released else ''}")
    return 0


def cmd_incidents_list(args, paths: settings.Paths) -> int:
    engine = open_ledger(paths.database_url)
    rows = queries.list_incidents(engine, states=args.state, severities=args.severity, services=args.service)
    if args.format == "json":
        print_json(rows)
    else:
        print(incident_table(rows))
    return 0


def print_json(rows: list[BaseModel]) -> None:
    print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))


def cmd_incidents_show(args, paths: settings.Paths) -> int:
    detail = queries.incident_detail(open_ledger(paths.database_url), args.id)
    if args.format == "json":
        print(detail.model_dump_json(indent=2))
        return 0
    print(incident_table([detail]))
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


def cmd_incidents_act(args, paths: settings.Paths) -> int:
    state = act(open_ledger(paths.database_url), args.id, args.action, args.reason)
    print(f"incident {args.id} is now {state}")
    return 0


def cmd_incidents_hypotheses(args, paths: settings.Paths) -> int:
    from hypotheses.refine import hypotheses_view

    view = hypotheses_view(open_ledger(paths.database_url), SampleStore(paths.samples_dir),
                           load_policy(paths.policy_dir), args.id, utcnow())
    print(json.dumps(view.as_json(), indent=2) if args.format == "json" else hypotheses_text(view))
    return 0


def cmd_routing_decisions(args, paths: settings.Paths) -> int:
    since = _since(args.since, utcnow()) if args.since else None
    rows = queries.routing_decisions(open_ledger(paths.database_url), since=since, limit=args.limit)
    if args.format == "json":
        print_json(rows)
    else:
        print(decision_table(rows))
    return 0


def _since(text: str, now: datetime) -> datetime:
    """An ISO 8601 time, or a duration (24h, 7d) back from ``now``."""
    from app.operator import parse_when
    from policies.schema import parse_duration

    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        return parse_when(text, now)
    except ValueError:
        raise WorkbenchError(f"--since {text!r}: use an ISO 8601 time (2026-03-01T12:00Z) or a duration (24h, 7d)")


def cmd_routing_import(args, paths: settings.Paths) -> int:
    from hypotheses.imports import import_decisions

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WorkbenchError(f"cannot read {path}: {exc.strerror}") from None
    report = import_decisions(open_ledger(paths.database_url), data, path.name, load_policy(paths.policy_dir).routing)
    for number, reason in report.invalid:
        print(f"{path}: line {number}: {reason}", file=sys.stderr)
    print(f"{path}: imported {report.imported} decision(s); {report.already_imported} already imported, "
          f"{len(report.invalid)} invalid line(s)")
    return 1 if report.invalid else 0


def cmd_policy_check(args, paths: settings.Paths) -> int:
    directory = Path(args.directory).resolve() if args.directory else paths.policy_dir
    try:
        policy = load_policy(directory)
        if problems := suspicious(directory, policy, confirmed=args.allow_empty):
            raise PolicyError(problems)
    except PolicyError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"policy invalid: {len(exc.problems)} problem(s) in {directory}", file=sys.stderr)
        return 2
    print(f"policy ok: {directory}: {len(policy.targets)} targets, {len(policy.rules.rules)} rules")
    return 0


def cmd_silences_list(args, paths: settings.Paths) -> int:
    now = utcnow()
    rows = queries.list_silences(open_ledger(paths.database_url), now, include_expired=args.all)
    if args.format == "json":
        print_json(rows)
    else:
        print(silence_table(rows, now))
    return 0


def cmd_silences_add(args, paths: settings.Paths) -> int:
    window_options = {"--at": args.at, "--days": args.days, "--timezone": args.timezone, "--until": args.until}
    if args.every and not args.maintenance:
        raise WorkbenchError("--every makes a recurring maintenance window: add --maintenance")
    if args.every and not (args.at and args.timezone):
        raise WorkbenchError("a recurring window needs --at HH:MM and --timezone ZONE (e.g. Europe/Berlin)")
    if not args.every and (given := [flag for flag, value in window_options.items() if value]):
        raise WorkbenchError(f"{', '.join(given)}: only for a recurring window (--every daily|weekly)")
    now = utcnow()
    silence = create_silence(
        open_ledger(paths.database_url), kind="maintenance" if args.maintenance else "silence", matchers=args.match,
        duration=args.duration, comment=args.comment, author=args.author or operator_name(), now=now,
        starts=args.starts, every=args.every, at=args.at, timezone=args.timezone, until=args.until,
        days=[day.strip() for day in args.days.split(",")] if args.days else None,
    )
    print(f"{silence.kind} #{silence.id} created: {describe_when(silence, now)}")
    return 0


def cmd_silences_expire(args, paths: settings.Paths) -> int:
    now = utcnow()
    silence = expire_silence(open_ledger(paths.database_url), args.id, operator_name(), now)
    end = silence.expired_at or silence.ends_at
    verb = "expired" if silence.expired_at == now else "had already ended"
    print(f"{silence.kind} #{silence.id} {verb} at {end:%Y-%m-%d %H:%M:%S} UTC")
    return 0


def cmd_approvals_list(args, paths: settings.Paths) -> int:
    statuses = None if args.all else args.status or [RequestStatus.PENDING]
    rows = queries.list_action_requests(open_ledger(paths.database_url), statuses=statuses)
    if args.format == "json":
        print_json(rows)
        return 0
    print(f"{'ID':>5}  {'STATUS':<10} {'RISK':<12} {'ACTION':<20} {'INCIDENT':>8}  {'PROPOSED (UTC)':<19}  PLAN")
    for r in rows:
        print(f"{r.id:>5}  {r.status:<10} {r.risk:<12} {r.action:<20} {r.incident_id:>8}  "
              f"{r.proposed_at:%Y-%m-%d %H:%M:%S}  {r.plan.splitlines()[0] if r.plan else ''}")
    if not rows:
        print("(no action requests)")
    return 0


def cmd_approvals_propose(args, paths: settings.Paths) -> int:
    parameters = dict(_key_value(pair) for pair in args.param or [])
    request = flow.propose(open_ledger(paths.database_url), load_policy(paths.policy_dir), args.incident, args.action,
                           parameters, proposer=operator_name(), reason=args.reason, now=utcnow())
    waiting = (f"waiting for approval: workbench approvals approve {request.id} --reason TEXT"
               if request.status == RequestStatus.PENDING else "approved: it needs no approval; the worker runs it")
    print(f"action request #{request.id} ({request.action} on incident {request.incident_id}) {waiting}")
    return 0


def _key_value(pair: str) -> tuple[str, str]:
    name, equals, value = pair.partition("=")
    if not (equals and name.strip()):
        raise WorkbenchError(f"--param wants NAME=VALUE, got {pair!r}")
    return name.strip(), value


def cmd_approvals_approve(args, paths: settings.Paths) -> int:
    policy = load_policy(paths.policy_dir)
    key = signing_key(policy.settings.approval_key_env, paths.data_dir)
    request = flow.approve(open_ledger(paths.database_url), policy, key, args.id, actor=operator_name(),
                           reason=args.reason, now=utcnow())
    print(f"action request #{request.id} approved by {request.decided_by}: approval {request.approval_id}, good for "
          f"one run until {request.approval_expires_at:%Y-%m-%d %H:%M:%S} UTC; the worker runs it")
    print(f"token: {request.approval_token}")
    return 0


def cmd_approvals_reject(args, paths: settings.Paths) -> int:
    request = flow.reject(open_ledger(paths.database_url), args.id, actor=operator_name(), reason=args.reason,
                          now=utcnow())
    print(f"action request #{request.id} rejected by {request.decided_by}")
    return 0


# --- parser -----------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="SRE Workbench: probes, incidents, a web app.")
    parser.add_argument("--policy", metavar="DIR", help=f"policy directory (env {settings.ENV_POLICY}; default policies/)")
    parser.add_argument("--data", metavar="DIR", help=f"data directory (env {settings.ENV_DATA}; default var/)")
    parser.set_defaults(handler=lambda args, paths: parser.print_help() or 2)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("up", help="start the worker, the web app and the demo service; Ctrl-C stops all")
    p.set_defaults(handler=cmd_up)

    p = sub.add_parser("worker", help="run the scheduler and the /healthz, /metrics endpoint")
    p.add_argument("--port", type=int, help=f"port on 127.0.0.1 (env {settings.ENV_PORT}; default 8502)")
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("ui", help="run the Streamlit web app on 127.0.0.1")
    p.add_argument("--port", type=int, help="port (default from settings.yaml, 8501)")
    p.set_defaults(handler=cmd_ui)

    p = sub.add_parser("demo", help="run the demo service, or switch its fault")
    p.add_argument("--port", type=int, default=8503, help="port on 127.0.0.1 (default 8503)")
    p.add_argument("--fault", choices=("none", "errors", "latency", "down"), default="none", help="start with this fault")
    p.set_defaults(handler=cmd_demo)
    demo_sub = p.add_subparsers(title="demo commands", metavar="COMMAND")
    f = demo_sub.add_parser("fault", help="switch the fault of a running demo service")
    f.add_argument("mode", choices=("none", "errors", "latency", "down"))
    f.add_argument("--port", type=int, default=8503, help="port of the demo service (default 8503)")
    f.set_defaults(handler=cmd_demo_fault)

    p = sub.add_parser("probe", help="probe runs outside the worker (cron)")
    probe_sub = p.add_subparsers(title="probe commands", metavar="COMMAND", required=True)
    r = probe_sub.add_parser("run", help="run every probe once, record it and evaluate detectors")
    r.add_argument("--once", action="store_true", required=True, help="run once and exit (for cron)")
    r.add_argument("--target", metavar="NAME", help="only this target")
    r.set_defaults(handler=cmd_probe_run)

    p = sub.add_parser("incidents", help="list, show and work incidents")
    inc_sub = p.add_subparsers(title="incident commands", metavar="COMMAND", required=True)
    ls = inc_sub.add_parser("list", help="list incidents, newest open first")
    ls.add_argument("--state", action="append", choices=STATES, help="only this state (repeatable)")
    ls.add_argument("--severity", action="append", choices=("info", "warning", "critical"), help="repeatable")
    ls.add_argument("--service", action="append", help="only this service (repeatable)")
    ls.add_argument("--format", choices=("table", "json"), default="table")
    ls.set_defaults(handler=cmd_incidents_list)
    show = inc_sub.add_parser("show", help="one incident with its timeline and evidence")
    show.add_argument("id", type=int)
    show.add_argument("--format", choices=("table", "json"), default="table")
    show.set_defaults(handler=cmd_incidents_show)
    for action, state in OPERATOR_ACTIONS.items():
        a = inc_sub.add_parser(action, help=f"move an incident to {state}")
        a.add_argument("id", type=int)
        a.add_argument("--reason", required=needs_reason(action), help="why (recorded in the timeline)")
        a.set_defaults(handler=cmd_incidents_act, action=action)
    hyp = inc_sub.add_parser("hypotheses", help="the drafted root-cause hypotheses and the model's refinement")
    hyp.add_argument("id", type=int)
    hyp.add_argument("--format", choices=("table", "json"), default="table")
    hyp.set_defaults(handler=cmd_incidents_hypotheses)

    p = sub.add_parser("routing", help="routing decisions of LLM calls; import another system's")
    rt_sub = p.add_subparsers(title="routing commands", metavar="COMMAND", required=True)
    dec = rt_sub.add_parser("decisions", help="routing decisions, newest first (every one in the range)")
    dec.add_argument("--since", metavar="TIME", help="ISO 8601 time or a duration back from now (24h, 7d)")
    dec.add_argument("--limit", type=int, help="at most this many")
    dec.add_argument("--format", choices=("table", "json"), default="table")
    dec.set_defaults(handler=cmd_routing_decisions)
    imp = rt_sub.add_parser("import", help="import routing decisions another system logged (JSON Lines)")
    imp.add_argument("file", metavar="FILE.jsonl")
    imp.set_defaults(handler=cmd_routing_import)

    p = sub.add_parser("silences", help="silences and maintenance windows: covered findings open no incident")
    sil_sub = p.add_subparsers(title="silence commands", metavar="COMMAND", required=True)
    ls = sil_sub.add_parser("list", help="silences and maintenance windows in force or to come, newest first")
    ls.add_argument("--format", choices=("table", "json"), default="table")
    ls.add_argument("--all", action="store_true", help="expired ones too")
    ls.set_defaults(handler=cmd_silences_list)
    add = sil_sub.add_parser(
        "add", help="silence findings whose labels match, or add a maintenance window",
        description="Findings whose labels match every --match are kept but open no incident while the silence "
                    "or maintenance window is in force; still firing when it ends, they open one then.",
        epilog="examples:\n"
               "  workbench silences add --match service=shop --duration 2h --comment 'deploy'\n"
               "  workbench silences add --maintenance --match target=~'db-.*' --starts 2026-03-28T22:00Z "
               "--duration 4h --comment 'db upgrade'\n"
               "  workbench silences add --maintenance --match service=backup --every weekly --days sat,sun "
               "--at 02:00 --timezone Europe/Berlin --duration 2h --comment 'weekend backups'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("--match", action="append", required=True, metavar="KEY=VALUE",
                     help="label matcher KEY=VALUE, KEY!=VALUE, KEY=~REGEX or KEY!~REGEX (repeatable; all must match)")
    add.add_argument("--duration", required=True, help="how long, e.g. 30m, 2h, 1d (recurring: each occurrence)")
    add.add_argument("--comment", required=True, help="why (shown with it)")
    add.add_argument("--starts", default="now", metavar="ISO-8601|now",
                     help="when it starts, UTC unless the time has an offset (default now)")
    add.add_argument("--author", metavar="NAME", help="who (default: the local user)")
    add.add_argument("--maintenance", action="store_true", help="a maintenance window rather than a silence")
    rec = add.add_argument_group("recurring maintenance window")
    rec.add_argument("--every", choices=("daily", "weekly"), help="repeat the window every day or week")
    rec.add_argument("--at", metavar="HH:MM", help="local time each occurrence starts")
    rec.add_argument("--days", metavar="sat,sun", help="weekdays of a weekly window")
    rec.add_argument("--timezone", metavar="ZONE", help="IANA time zone of --at, e.g. Europe/Berlin or UTC")
    rec.add_argument("--until", metavar="ISO-8601", help="when the window ends for good (default: never)")
    add.set_defaults(handler=cmd_silences_add)
    exp = sil_sub.add_parser("expire", help="end a silence or maintenance window now")
    exp.add_argument("id", type=int)
    exp.set_defaults(handler=cmd_silences_expire)

    p = sub.add_parser("approvals", help="action requests: list, approve or reject them, propose an action")
    app_sub = p.add_subparsers(title="approval commands", metavar="COMMAND", required=True)
    ls = app_sub.add_parser("list", help="action requests waiting for a decision (or of --status), newest first")
    ls.add_argument("--status", action="append", choices=tuple(RequestStatus), help="only this status (repeatable; "
                    "default pending)")
    ls.add_argument("--all", action="store_true", help="every request, whatever its status")
    ls.add_argument("--format", choices=("table", "json"), default="table")
    ls.set_defaults(handler=cmd_approvals_list)
    for verb, handler in (("approve", cmd_approvals_approve), ("reject", cmd_approvals_reject)):
        d = app_sub.add_parser(verb, help=f"{verb} a pending action request")
        d.add_argument("id", type=int)
        d.add_argument("--reason", required=True, help="why (recorded in the incident's timeline)")
        d.set_defaults(handler=handler)
    prop = app_sub.add_parser("propose", help="propose an action of actions.yaml on an incident (gated)")
    prop.add_argument("incident", type=int)
    prop.add_argument("action", help="the action's id in actions.yaml")
    prop.add_argument("--param", action="append", metavar="NAME=VALUE", help="a parameter (repeatable)")
    prop.add_argument("--reason", default="proposed by the operator", help="why (recorded in the timeline)")
    prop.set_defaults(handler=cmd_approvals_propose)

    p = sub.add_parser("policy", help="validate policy files")
    pol_sub = p.add_subparsers(title="policy commands", metavar="COMMAND", required=True)
    c = pol_sub.add_parser("check", help="validate a policy directory; every problem with file, line and path")
    c.add_argument("directory", nargs="?", help="default: the --policy directory")
    c.add_argument("--allow-empty", action="store_true", help="accept a policy with no targets (the worker "
                   "takes one only with allow_empty: true at the top of targets.yaml)")
    c.set_defaults(handler=cmd_policy_check)
    return parser


if __name__ == "__main__":
    sys.exit(main())
