"""Argument types shared by the commands."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from app.operator import parse_when
from policies.errors import WorkbenchError
from policies.schema import parse_duration

IMPORT_MAX_BYTES = 64 * 2**20  # a file to import is read whole; /dev/zero or a runaway log is refused
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
    except (ValueError, OverflowError):
        pass
    try:
        return parse_when(text, now)
    except ValueError:
        raise WorkbenchError(f"--since {text!r}: use an ISO 8601 time (2026-03-01T12:00Z) or a duration (24h, 7d)"
                             ) from None


def read_import(name: str) -> tuple[Path, bytes]:
    """A file to import, read whole: at most IMPORT_MAX_BYTES, else a clear error."""
    path = Path(name)
    try:
        with path.open("rb") as file:
            data = file.read(IMPORT_MAX_BYTES + 1)
    except OSError as exc:
        raise WorkbenchError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > IMPORT_MAX_BYTES:
        raise WorkbenchError(f"{path} is larger than {IMPORT_MAX_BYTES // 2**20} MiB: split it and import each part")
    return path, data


def write_output(name: str, text: str) -> Path:
    """Write ``text`` to the file the operator named (``--output``), or a clear error."""
    path = Path(name)
    with writing(path):
        path.write_text(text, encoding="utf-8")
    return path


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn a failure to write ``path`` (no such directory, a name the file system refuses) into
    one line saying so."""
    try:
        yield
    except OSError as exc:
        raise WorkbenchError(f"cannot write {path}: {exc.strerror or exc}") from None
    except UnicodeEncodeError:
        raise WorkbenchError(f"cannot write {path}: the name cannot be encoded for the file system") from None
