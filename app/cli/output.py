"""How listing commands print: a table for people, or JSON (the rows' stable shape) for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from pydantic import BaseModel

FORMATS = ("table", "json")


def add_format(parser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="table")


def print_rows(rows: Sequence[BaseModel], fmt: str, table: Callable[[Sequence[BaseModel]], str]) -> None:
    """``rows`` as a JSON array, or as ``table`` renders them."""
    if fmt == "json":
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
    else:
        print(table(rows))
