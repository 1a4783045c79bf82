"""Argument types shared by the commands."""

from __future__ import annotations

import argparse

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
