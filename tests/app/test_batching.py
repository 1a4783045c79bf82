"""Group commit: what arrives during a commit goes into the next batch, within its bounds; a
failed commit answers its own batch only; an item nobody waits for any more is left out."""

import asyncio
import threading

from app.worker.batching import GroupCommit


def run_batches(commit, arrivals: list[list[bytes]], cancel: bytes | None = None, **bounds):
    """Submit ``arrivals[0]``, hold its commit until every later item is queued, then let the
    commits run; return each item's answer and the batches committed."""
    batches, queued = [], threading.Event()

    def held(items):
        batches.append(items)
        if len(batches) == 1:
            queued.wait(10)
        return commit(items)

    async def main():
        group = GroupCommit(held, lambda exc: f"failed: {exc}", **({"max_count": 10, "max_bytes": 1000} | bounds))
        tasks = {item: asyncio.create_task(group.submit(item)) for item in arrivals[0]}
        while not batches:
            await asyncio.sleep(0.001)
        for wave in arrivals[1:]:
            tasks |= {item: asyncio.create_task(group.submit(item)) for item in wave}
        await asyncio.sleep(0)
        if cancel:
            tasks.pop(cancel).cancel()
        queued.set()
        answers = {item: await task for item, task in tasks.items()}
        await group.close()
        return answers

    return asyncio.run(main()), batches


def echo(items):
    return [f"committed {item.decode()} with {len(items)}" for item in items]


def test_what_arrives_during_a_commit_goes_together_into_the_next_batches_within_bounds():
    answers, batches = run_batches(echo, [[b"a"], [b"b", b"c", b"d", b"eeee", b"f"]], max_count=3, max_bytes=5)
    assert batches == [[b"a"], [b"b", b"c", b"d"], [b"eeee", b"f"]]
    assert answers == {b"a": "committed a with 1", b"b": "committed b with 3", b"c": "committed c with 3",
                       b"d": "committed d with 3", b"eeee": "committed eeee with 2", b"f": "committed f with 2"}


def test_a_failed_commit_answers_its_own_batch_and_the_next_one_commits():
    def commit(items):
        if b"bad" in items:
            raise OSError("disk I/O error")
        return echo(items)

    answers, batches = run_batches(commit, [[b"bad"], [b"ok"]])
    assert answers == {b"bad": "failed: disk I/O error", b"ok": "committed ok with 1"}


def test_an_item_nobody_waits_for_is_left_out():
    answers, batches = run_batches(echo, [[b"a"], [b"gone", b"kept"]], cancel=b"gone")
    assert batches == [[b"a"], [b"kept"]]
    assert answers == {b"a": "committed a with 1", b"kept": "committed kept with 1"}
