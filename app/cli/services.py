"""`workbench services add`: onboard a service in one command, from what Prometheus has of it
(or, without Prometheus, as an HTTP probe), into the policy's targets, golden signals and rules."""

from __future__ import annotations

import re
import sys

from app.settings import Paths
from policies.errors import WorkbenchError
from policies.loader import load_policy
from policies.schema import _NAME, format_duration, parse_duration


def register(sub) -> None:
    p = sub.add_parser("services", help="onboard a service: its probes, golden signals and starter rules")
    s_sub = p.add_subparsers(title="services commands", metavar="COMMAND", required=True)
    add = s_sub.add_parser("add", help="read a service's metrics from Prometheus (or take its URL) and add its "
                           "probes, golden signals and starter rules to the policy")
    add.add_argument("name", metavar="NAME", help="the service's name (letters, digits, . _ -)")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--prometheus", metavar="URL", help="the Prometheus that scrapes it (with --selector)")
    source.add_argument("--url", metavar="URL", help="no Prometheus: probe this HTTP endpoint")
    add.add_argument("--selector", metavar="SEL", help='its series in Prometheus, e.g. \'{job="checkout"}\'')
    add.add_argument("--interval", default="15s", help="how often its probes run (default 15s)")
    add.add_argument("--rate-window", default="1m", help="the range of its rate() queries: at least four of "
                     "Prometheus's scrape intervals (default 1m)")
    add.add_argument("--history", default="6h", help="replay the starter rules over this much of Prometheus's "
                     "history first, to show how often each would have fired (default 6h; 0 to skip)")
    add.add_argument("--yes", action="store_true", help="write without asking")
    add.set_defaults(handler=cmd_add)


def cmd_add(args, paths: Paths) -> int:
    from learning import onboarding

    if not re.match(_NAME, args.name):
        raise WorkbenchError(f"{args.name!r} is not a service name: use lower-case letters, digits, . _ and -")
    if args.prometheus:
        if not args.selector:
            raise WorkbenchError("--prometheus needs --selector, the service's series, e.g. '{job=\"checkout\"}'")
        found = onboarding.discover(args.prometheus, args.selector)
        proposal = onboarding.plan(args.name, args.prometheus, args.selector, found, args.interval,
                                   args.rate_window)
    else:
        proposal = onboarding.http_plan(args.name, args.url, args.interval)
    print(f"Recognised for {args.name}:")
    for line in proposal.recognised:
        print(f"  - {line}")
    print(f"\nTo add to {paths.policy_dir}:\n")
    print(proposal.as_yaml())
    history = parse_duration(args.history) if args.history not in ("0", "0s") else None
    if args.prometheus and proposal.rules and history:
        noise = load_policy(paths.policy_dir).rules.noise
        print(f"Backtest of the rules over Prometheus's last {format_duration(history)}:")
        for line in onboarding.backtest_plan(proposal, args.prometheus, history, noise):
            print(f"  - {line}")
        print()
    if not args.yes:
        if not sys.stdin.isatty():
            print("Nothing written: run again with --yes to write it.", file=sys.stderr)
            return 1
        if input("Write it? [y/N] ").strip().lower() not in ("y", "yes"):
            print("Nothing written.")
            return 1
    onboarding.write(paths.policy_dir, proposal)
    print(f"Written: {len(proposal.targets)} target(s), {len(proposal.rules)} rule(s)"
          + (f", golden signals of {args.name}" if proposal.signals else "")
          + ". The worker takes the policy up within seconds.")
    return 0
