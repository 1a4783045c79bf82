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
from pathlib import Path

from app import settings
from app.operator import act
from app.render import incident_table
from ledger import queries
from ledger.db import open_ledger
from ledger.lifecycle import OPERATOR_ACTIONS, STATES
from ledger.samples import SampleStore
from policies.errors import PolicyError, WorkbenchError
from policies.loader import load_policy

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
    from probes.worker import serve

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
    return 0


def cmd_incidents_list(args, paths: settings.Paths) -> int:
    engine = open_ledger(paths.database_url)
    rows = queries.list_incidents(engine, states=args.state, severities=args.severity, services=args.service)
    if args.format == "json":
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
    else:
        print(incident_table(rows))
    return 0


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


def cmd_policy_check(args, paths: settings.Paths) -> int:
    directory = Path(args.directory).resolve() if args.directory else paths.policy_dir
    try:
        policy = load_policy(directory)
    except PolicyError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"policy invalid: {len(exc.problems)} problem(s) in {directory}", file=sys.stderr)
        return 2
    print(f"policy ok: {directory}: {len(policy.targets)} targets")
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
        a.add_argument("--reason", required=state in ("suppressed", "resolved"), help="why (recorded in the timeline)")
        a.set_defaults(handler=cmd_incidents_act, action=action)

    p = sub.add_parser("policy", help="validate policy files")
    pol_sub = p.add_subparsers(title="policy commands", metavar="COMMAND", required=True)
    c = pol_sub.add_parser("check", help="validate a policy directory; every problem with file, line and path")
    c.add_argument("directory", nargs="?", help="default: the --policy directory")
    c.set_defaults(handler=cmd_policy_check)
    return parser


if __name__ == "__main__":
    sys.exit(main())
