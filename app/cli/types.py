"""Argument types shared by the commands."""

from __future__ import annotations

import argparse
from datetime import datetime

from app.operator import parse_when
from policies.errors import WorkbenchError
from policies.schema import parse_duration

LARGEST = 2**63 - 1  # what the ledger's integer columns hold, on SQLite and PostgreSQL alike


def positive_integer(text: str) -> int:
    """An id of a ledger row, or a count: a whole number from 1 to LARGEST."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= LARGEST:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {LARGEST}, got {text[:40]!r}")
    return value


def parse_since(text: str, now: datetime) -> datetime:
    """An ISO 8601 time, or a duration (24h, 7d) back from ``now``."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        return parse_when(text, now)
    except ValueError:
        raise WorkbenchError(f"--since {text!r}: use an ISO 8601 time (2026-03-01T12:00Z) or a duration (24h, 7d)")
