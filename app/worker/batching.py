"""Group commit: requests that arrive together share one transaction. The first waiting item
starts a batch; a batch takes everything queued meanwhile, up to a count and a size; a thread of
its own commits it while the next batch gathers (so commits never wait behind other work in the
event loop's default executor); each item's answer is set after its batch's commit."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

log = logging.getLogger("workbench.worker")
Answer = TypeVar("Answer")


class GroupCommit(Generic[Answer]):
    def __init__(self, commit: Callable[[list[bytes]], list[Answer]], failed: Callable[[Exception], Answer], *,
                 max_count: int, max_bytes: int):
        """``commit`` runs in a thread and answers each item of a batch, in order; when it raises,
        every item of that batch is answered ``failed(exc)``."""
        self._commit, self._failed = commit, failed
        self._max_count, self._max_bytes = max_count, max_bytes
        self._queue: deque[tuple[bytes, asyncio.Future[Answer]]] = deque()
        self._committing: asyncio.Task | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="group-commit")

    async def submit(self, item: bytes) -> Answer:
        """The item's answer, once the batch it went into is committed (or failed)."""
        answer = asyncio.get_running_loop().create_future()
        self._queue.append((item, answer))
        if self._committing is None:
            self._committing = asyncio.create_task(self._commit_all())
        return await answer

    async def close(self) -> None:
        """Wait for the items queued so far to be committed, then let the thread go."""
        if self._committing is not None:
            await asyncio.shield(self._committing)
        self._thread.shutdown()

    async def _commit_all(self) -> None:
        try:
            while batch := self._next_batch():
                try:
                    answers = await asyncio.get_running_loop().run_in_executor(
                        self._thread, self._commit, [item for item, _ in batch])
                except Exception as exc:  # noqa: BLE001 - the batch's requests are told, the next batch goes on
                    log.exception("a batch of %d webhook payloads could not be committed", len(batch))
                    answers = [self._failed(exc) for _ in batch]
                for (_, future), answer in zip(batch, answers):
                    if not future.done():  # its request may have been cancelled (client gone)
                        future.set_result(answer)
        finally:
            self._committing = None

    def _next_batch(self) -> list[tuple[bytes, asyncio.Future[Answer]]]:
        batch, size = [], 0
        while self._queue and len(batch) < self._max_count:
            item, future = self._queue[0]
            if batch and size + len(item) > self._max_bytes:
                break
            self._queue.popleft()
            if not future.cancelled():  # nobody waits for it any more: leave it out
                batch.append((item, future))
                size += len(item)
        return batch
