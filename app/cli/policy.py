"""`workbench policy check`: validate a policy directory, every problem with file, line and path."""

from __future__ import annotations

import sys
from pathlib import Path

from app.settings import Paths
from policies.errors import PolicyError, one_line
from policies.guard import suspicious
from policies.loader import load_policy


def register(sub) -> None:
    p = sub.add_parser("policy", help="validate policy files")
    pol_sub = p.add_subparsers(title="policy commands", metavar="COMMAND", required=True)
    c = pol_sub.add_parser("check", help="validate a policy directory; every problem with file, line and path")
    c.add_argument("directory", nargs="?", help="default: the --policy directory")
    c.add_argument("--allow-empty", action="store_true", help="accept a policy with no targets, or a file emptied "
                   "(the worker takes one only with allow_empty: true at the top of the file)")
    c.set_defaults(handler=cmd_check)


def cmd_check(args, paths: Paths) -> int:
    directory = Path(args.directory).resolve() if args.directory else paths.policy_dir
    try:
        policy = load_policy(directory)
        if problems := suspicious(directory, policy, confirmed=args.allow_empty):
            raise PolicyError(problems)
    except PolicyError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"policy invalid: {len(exc.problems)} problem(s) in {one_line(str(directory))}", file=sys.stderr)
        return 2
    print(f"policy ok: {one_line(str(directory))}: {len(policy.targets)} targets, {len(policy.rules.rules)} rules")
    return 0
