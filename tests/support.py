"""Helpers the tests import: the checkout's root, free loopback ports, bounded polling."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, what: str, attempts: int = 300, pause: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` if it never does."""
    for _ in range(attempts):
        value = predicate()
        if value:
            return value
        time.sleep(pause)
    pytest.fail(f"gave up waiting for {what}")

# Responses captured from real Prometheus 2.42, Alertmanager 0.25, blackbox-exporter and Loki 3.4.6.
SAMPLES = ROOT / "tests" / "samples"
