"""Runs a few child processes as one: SIGINT or SIGTERM stops them all, and so does any one of
them exiting. Each child that is still running gets SIGTERM, then SIGKILL after the grace period."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

GRACE_S = 10.0
POLL_S = 0.2


def supervise(commands: Mapping[str, list[str]], env: Mapping[str, str], cwd: Path) -> tuple[str, int] | None:
    """Start ``commands`` (name -> argv) and wait until a signal or a child ends them all. Return the
    name and exit status of the child that exited on its own first, or None if a signal stopped them."""
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: dict[str, subprocess.Popen] = {}
    try:
        for name, argv in commands.items():
            children[name] = subprocess.Popen(argv, env=env, cwd=cwd)
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    return name, child.returncode
            time.sleep(POLL_S)
        return None
    finally:
        terminate(children.values())
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def terminate(children) -> None:
    """SIGTERM to every child still running; SIGKILL to those not gone within the grace period."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
