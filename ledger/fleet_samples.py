"""Samples of a fleet's workers reach the one samples store through the ledger: each worker
flushes what it buffered as one Parquet file into ``sample_batch``; the worker holding the house
duties (on the host of the store the pages read) takes the batches in, oldest first, and writes
them to the store before it commits their removal. A store host that is down loses nothing: the
batches wait in the ledger."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable
from datetime import datetime

import polars as pl
from sqlalchemy import Engine

from ledger.db import utcnow, write_session
from ledger.repo import fleet
from ledger.samples import Sample, SampleStore, to_frame

TAKE_AT_ONCE = 200  # batches taken in per transaction


class LedgerSamples:
    """What a fleet worker's probes append; ``flush`` sends it to the ledger as one batch."""

    def __init__(self, engine: Engine, worker: str, now: Callable[[], datetime] = utcnow):
        self.engine, self.worker, self.now = engine, worker, now
        self._buffer: list[Sample] = []
        self._lock = threading.Lock()

    def append(self, samples: Iterable[Sample]) -> None:
        with self._lock:
            self._buffer.extend(samples)

    def flush(self) -> int:
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return 0
        data = io.BytesIO()
        to_frame(batch).write_parquet(data, compression="zstd")
        with write_session(self.engine, turns=False) as session:
            fleet.add_samples(session, self.worker, data.getvalue(), len(batch), self.now())
        return len(batch)


def take_in(engine: Engine, store: SampleStore) -> int:
    """Write the batches waiting in the ledger to ``store``; how many samples."""
    taken = 0
    while True:
        with write_session(engine, turns=False) as session:
            batches = fleet.take_samples(session, TAKE_AT_ONCE)
            if batches:
                store.write(pl.concat([pl.read_parquet(io.BytesIO(b.data)) for b in batches]))
        taken += sum(b.rows for b in batches)
        if len(batches) < TAKE_AT_ONCE:
            return taken
