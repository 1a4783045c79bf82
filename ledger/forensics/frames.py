"""Turning the ledger's read models into Polars frames with fixed schemas: times in UTC whatever
the database gave back, nested values (checks, labels, parameters) as JSON text."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime

import polars as pl
from pydantic import BaseModel

from ledger.db import as_utc

TIME = pl.Datetime("us", "UTC")


def to_frame(rows: Iterable[BaseModel | Mapping], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """One row per model (or mapping), the columns of ``schema`` in its order; a column a row lacks is null."""
    records = [_record(row, schema) for row in rows]
    return pl.DataFrame(records, schema=dict(schema), orient="row")


def _record(row: BaseModel | Mapping, schema: Mapping[str, pl.DataType]) -> list:
    data = row if isinstance(row, Mapping) else row.model_dump()
    return [_cell(data.get(name), dtype) for name, dtype in schema.items()]


def _cell(value, dtype: pl.DataType):
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, (dict, list)) and dtype == pl.String:
        return as_json(value)
    return value


def as_json(value) -> str:
    """Nested data as compact JSON with sorted keys, so two ledgers holding the same give the same text."""
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    """``later - earlier`` in seconds, or None when either is missing."""
    if later is None or earlier is None:
        return None
    return (as_utc(later) - as_utc(earlier)).total_seconds()
