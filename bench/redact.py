#!/usr/bin/env python3
"""Secret masking on hostile text: ``policies.secrets.redact`` over bodies up to the webhook
limit, built so that a backtracking pattern rescans them from every position. Each run is timed
(CPU seconds) in its own process, stopped at a cap.

    .venv/bin/python bench/redact.py [--sizes 269312,1048576] [--cap 120] [--rev REV]

``--rev`` measures policies/secrets.py as it was at a git revision (for a before/after figure).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# name: (repeated unit, text before it, mask e-mail addresses too)
PAYLOADS = {
    "eyJ- repeated": ("eyJ-", "", False),
    "token=aaa...": ("a", "token=", False),
    "bearer repeated": ("bearer ", "", False),
    "://a: repeated": ("://a:", "", False),
    "sk- repeated": ("sk-", "", False),
    "aaa... (e-mails)": ("a", "", True),
    "a. repeated (e-mails)": ("a.", "", True),
}


def payload(name: str, size: int) -> tuple[str, bool]:
    unit, prefix, emails = PAYLOADS[name]
    return prefix + unit * ((size - len(prefix)) // len(unit)), emails


def redact_at(rev: str | None):
    if rev is None:
        from policies.secrets import redact
        return redact
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:policies/secrets.py"],
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("secrets_at_rev")
    exec(compile(source, f"{rev}:policies/secrets.py", "exec"), module.__dict__)
    return module.redact


def measure_one(name: str, size: int, rev: str | None) -> None:
    redact = redact_at(rev)
    text, emails = payload(name, size)
    started = time.process_time()
    redact(text, emails=emails)
    print(f"{time.process_time() - started:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="269312,1048576", help="body sizes in bytes, comma-separated")
    parser.add_argument("--cap", type=float, default=120.0, help="seconds a run may take before it is stopped")
    parser.add_argument("--rev", help="git revision of policies/secrets.py to measure (default: the checkout)")
    parser.add_argument("--one", nargs=2, metavar=("NAME", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return measure_one(args.one[0], int(args.one[1]), args.rev)
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"redact at {args.rev or 'the checkout'}, CPU seconds (cap {args.cap:g} s)")
    print(f"{'payload':24}" + "".join(f"{size:>14,}" for size in sizes))
    for name in PAYLOADS:
        cells = []
        for size in sizes:
            command = [sys.executable, __file__, "--one", name, str(size)] + (["--rev", args.rev] if args.rev else [])
            try:
                run = subprocess.run(command, check=True, capture_output=True, text=True, timeout=args.cap)
                cells.append(run.stdout.strip())
            except subprocess.TimeoutExpired:
                cells.append(f"> {args.cap:g}")
        print(f"{name:24}" + "".join(f"{cell:>14}" for cell in cells), flush=True)


if __name__ == "__main__":
    main()
