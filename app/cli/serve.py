"""Commands that run the workbench's processes: up (all of them), worker, ui, demo (and its fault switch)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

import httpx

from app import logs, settings
from app.access import LOOPBACK, beyond_loopback_refused, streamlit_auth_file
from app.demo import MODES as FAULTS
from app.demo import make_server, set_fault
from app.supervisor import supervise
from app.worker.buckets import DEFAULT_LOCATION
from ledger.db import open_ledger
from ledger.samples import SampleStore
from policies.errors import WorkbenchError
from policies.loader import load_policy

ENV_WORKER_NAME, ENV_LOCATION = "WORKBENCH_WORKER_NAME", "WORKBENCH_LOCATION"
STREAMLIT_APP = settings.ROOT / "app" / "streamlit_app.py"


def register(sub) -> None:
    p = sub.add_parser("up", help="start the worker, the web app and the demo service; Ctrl-C stops all")
    p.add_argument("--bind", default=LOOPBACK, metavar="ADDRESS", help=f"address the web app and the worker listen "
                   f"on (default {LOOPBACK}); beyond loopback only with access: in settings.yaml")
    p.set_defaults(handler=cmd_up)

    p = sub.add_parser("worker", help="run the scheduler and the /healthz, /metrics endpoint")
    p.add_argument("--port", type=int, help=f"port (env {settings.ENV_PORT}; default 8502)")
    p.add_argument("--bind", "--host", dest="bind", default=LOOPBACK, metavar="ADDRESS", help=f"address to listen "
                   f"on (default {LOOPBACK}); beyond loopback only with access: in settings.yaml, and the webhook "
                   "then takes only a bearer token")
    p.add_argument("--name", default=os.environ.get(ENV_WORKER_NAME), help=f"this worker's name in the fleet "
                   f"(fleet: in settings.yaml; env {ENV_WORKER_NAME}; default the host name)")
    p.add_argument("--location", default=os.environ.get(ENV_LOCATION), help=f"where this worker probes from, for "
                   f"targets with locations (env {ENV_LOCATION}; default {DEFAULT_LOCATION})")
    p.add_argument("--probes-only", action="store_true", help="take probe buckets only, never the house duties "
                   "(a worker on a host without the samples store the web app reads)")
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("ui", help="run the Streamlit web app (on 127.0.0.1 unless --bind)")
    p.add_argument("--port", type=int, help="port (default from settings.yaml, 8501)")
    p.add_argument("--bind", default=LOOPBACK, metavar="ADDRESS", help=f"address to listen on (default {LOOPBACK}); "
                   "beyond loopback only with access: in settings.yaml")
    p.set_defaults(handler=cmd_ui)

    p = sub.add_parser("mcp", help="serve the workbench's reads as read-only MCP tools over stdio, for assistants")
    p.add_argument("--calls", type=int, metavar="N", help="instead, print the latest N calls assistants made")
    p.set_defaults(handler=cmd_mcp)

    p = sub.add_parser("demo", help="run the demo service, or switch its fault")
    p.add_argument("--port", type=int, default=8503, help="port on 127.0.0.1 (default 8503)")
    p.add_argument("--fault", choices=FAULTS, default="none", help="start with this fault")
    p.set_defaults(handler=cmd_demo)
    demo_sub = p.add_subparsers(title="demo commands", metavar="COMMAND")
    f = demo_sub.add_parser("fault", help="switch the fault of a running demo service")
    f.add_argument("mode", choices=FAULTS)
    f.add_argument("--port", type=int, default=8503, help="port of the demo service (default 8503)")
    f.set_defaults(handler=cmd_demo_fault)


def cmd_up(args, paths: settings.Paths) -> int:
    policy = load_policy(paths.policy_dir)
    env = {**os.environ, **paths.environment(), logs.ENV_LOG_FORMAT: args.log_format}
    for what in ("the web app", "the worker"):
        if reason := beyond_loopback_refused(args.bind, policy.settings, what):
            raise WorkbenchError(reason)
    commands = {"worker": ["worker", "--bind", args.bind], "ui": ["ui", "--bind", args.bind]}
    if policy.settings.demo.enabled:
        commands["demo"] = ["demo", "--port", str(policy.settings.demo.port)]
    print(f"workbench up: web app on http://{args.bind}:{policy.settings.ui_port}, worker on "
          f"http://{args.bind}:{policy.settings.worker_port}/healthz, ledger {paths.database_url}; Ctrl-C stops",
          file=sys.stderr)
    exited = supervise({name: [sys.executable, "-m", "app.cli", *argv] for name, argv in commands.items()}, env,
                       cwd=settings.ROOT)
    if exited is None:
        return 0
    name, status = exited
    print(f"workbench up: {name} exited with status {status}; stopping the rest", file=sys.stderr)
    return 1


def cmd_worker(args, paths: settings.Paths) -> int:
    from app.worker.fleet import Member
    from app.worker.http import serve

    port = args.port or (int(os.environ[settings.ENV_PORT]) if os.environ.get(settings.ENV_PORT) else None)
    member = None
    if args.name or args.location or args.probes_only:
        member = Member(name=args.name or socket.gethostname(), location=args.location or DEFAULT_LOCATION,
                        house=not args.probes_only)
    try:
        serve(paths.policy_dir, open_ledger(paths.database_url), SampleStore(paths.samples_dir), port, args.bind,
              member)
    except OSError as exc:
        raise WorkbenchError(f"worker cannot serve on its port: {exc}") from exc
    return 0


def cmd_ui(args, paths: settings.Paths) -> int:
    policy = load_policy(paths.policy_dir)
    if reason := beyond_loopback_refused(args.bind, policy.settings, "the web app"):
        raise WorkbenchError(reason)
    port = args.port or policy.settings.ui_port
    argv = [sys.executable, "-m", "streamlit", "run", str(STREAMLIT_APP), f"--server.address={args.bind}",
            f"--server.port={port}", "--server.headless=true", "--browser.gatherUsageStats=false",
            "--client.toolbarMode=minimal"]
    access = policy.settings.access
    if access is not None and access.oidc is not None:
        argv.append(f"--secrets.files={streamlit_auth_file(access, paths.data_dir, os.environ)}")
    os.execvpe(sys.executable, argv, {**os.environ, **paths.environment(), logs.ENV_LOG_FORMAT: args.log_format})


def cmd_demo(args, paths: settings.Paths) -> int:
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
    try:
        print(f"demo fault: {set_fault(args.port, args.mode)}")
    except httpx.HTTPError as exc:
        raise WorkbenchError(f"no demo service answered on port {args.port}: {exc}") from exc
    return 0


def cmd_mcp(args, paths: settings.Paths) -> int:
    if args.calls is not None:
        from app.render import aligned
        from ledger import queries

        calls = queries.assistant_calls(paths.ledger(), max(1, args.calls))
        print(aligned(["AT (UTC)", "TOOL", "OUTCOME", "BYTES", "CALLER", "ARGUMENTS", "DETAIL"],
                      [[f"{c.at:%Y-%m-%d %H:%M:%S}", c.tool, c.outcome, c.bytes, c.caller,
                        json.dumps(c.arguments), c.detail] for c in calls], "No calls yet."))
        return 0
    try:
        from app.assistants import build_server
    except ModuleNotFoundError as exc:
        raise WorkbenchError(f"workbench mcp needs the MCP SDK ({exc.name} is missing): "
                             ".venv/bin/pip install -e '.[mcp]'") from None
    build_server(paths).run("stdio")
    return 0
