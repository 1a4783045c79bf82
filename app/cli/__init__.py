"""The `workbench` command. Each command group is a module that adds its parsers; this one parses,
sets up logging and turns errors into one line on stderr and a non-zero exit status."""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import version

from app import logs, settings
from app.cli import (
    approvals,
    channels,
    incidents,
    notebook,
    policy,
    probe,
    routing,
    rules,
    samples,
    serve,
    services,
    silences,
    users,
    workers,
)
from policies.errors import PolicyError, WorkbenchError, one_line

COMMAND_GROUPS = (serve, probe, incidents, notebook, services, rules, samples, routing, silences, approvals, channels,
                  users, workers, policy)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:  # bytes that are not UTF-8, which Python hands over as lone surrogates
            parser.error(f"argument {one_line(_as_typed(arg))} is not valid UTF-8")
    args = parser.parse_args(argv)
    args.log_format = args.log_format or os.environ.get(logs.ENV_LOG_FORMAT) or "text"
    if args.log_format not in logs.FORMATS:
        parser.error(f"{logs.ENV_LOG_FORMAT}={args.log_format!r}: use one of {', '.join(logs.FORMATS)}")
    logs.configure(args.log_format)
    try:
        status = args.handler(args, settings.resolve(args.policy, args.data)) or 0
        sys.stdout.flush()  # a closed pipe shows here, not after main has returned
        return status
    except PolicyError as exc:
        print(f"workbench: policy invalid ({len(exc.problems)} problem(s)): {one_line(str(exc))}", file=sys.stderr)
        return 2
    except WorkbenchError as exc:
        print(f"workbench: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `workbench ... | head`: the reader has had enough; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _as_typed(arg: str) -> str:
    """The bytes of an argument that is not UTF-8 as the shell passed them, escaped (b'caf\\xe9' as caf\\xe9)."""
    try:
        return arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no shell passes: given by a caller in Python
        return arg.encode("utf-8", "backslashreplace").decode()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="SRE Workbench: probes, incidents, a web app.")
    parser.add_argument("--version", action="version", version=f"workbench {version('sre-workbench')}")
    parser.add_argument("--policy", metavar="DIR", help=f"policy directory (env {settings.ENV_POLICY}; default "
                        "policies/ in a checkout, else policies/ in the user's config directory)")
    parser.add_argument("--data", metavar="DIR", help=f"data directory (env {settings.ENV_DATA}; default var/ in a "
                        "checkout, else the user's data directory)")
    parser.add_argument("--log-format", choices=logs.FORMATS,
                        help=f"log lines on stderr as text or one JSON object each (env {logs.ENV_LOG_FORMAT}; "
                             "default text)")
    parser.set_defaults(handler=lambda args, paths: parser.print_help() or 2)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser
