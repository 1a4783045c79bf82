"""What one bucket of probe work costs each PostgreSQL job queue the workers could share:
pgqueuer and Procrastinate, on the same PostgreSQL, in the same run.

A bucket is one queue job: a batch of targets of one interval slot. Per queue: the time to
enqueue BUCKETS jobs in one batch (with the dedupe key / queueing lock that makes planning
idempotent), then the time for one worker process to take, run (a no-op) and finish them all,
with 10 at a time. The figures are the queue's own cost per bucket, what the fleet pays on top
of the probes (docs/fleet.md projects 1,000,000 targets from them).

    python bench/queues.py [--buckets 2000] [--url postgresql://127.0.0.1/postgres]

Needs both queues installed (pip install pgqueuer procrastinate); each runs in a database of
its own, created and dropped here.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import timedelta

import psycopg

CONCURRENCY = 10


async def fresh_database(admin_url: str, name: str) -> str:
    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


async def drop_database(admin_url: str, name: str) -> None:
    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def bench_pgqueuer(url: str, buckets: int) -> tuple[float, float]:
    from pgqueuer import PsycopgDriver, Queries, QueueManager
    from pgqueuer.types import QueueExecutionMode

    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    queries = Queries(PsycopgDriver(conn))
    await queries.install()
    keys = [f"probe/eu-1/60/{slot}/{b}" for slot in (1,) for b in range(buckets)]
    t0 = time.perf_counter()
    await queries.enqueue(["bucket"] * buckets, [b"{}"] * buckets, [0] * buckets, dedupe_key=keys,
                          on_conflict="skip")
    enqueue = time.perf_counter() - t0
    again = await queries.enqueue(["bucket"] * buckets, [b"{}"] * buckets, [0] * buckets, dedupe_key=keys,
                                  on_conflict="skip")
    assert all(job is None for job in again), "planning twice enqueued twice"

    worker_conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    qm = QueueManager(Queries(PsycopgDriver(worker_conn)))
    done = 0

    @qm.entrypoint("bucket")
    async def bucket(job) -> None:
        nonlocal done
        done += 1

    t0 = time.perf_counter()
    await qm.run(mode=QueueExecutionMode.drain, batch_size=CONCURRENCY,
                 dequeue_timeout=timedelta(seconds=1))
    run = time.perf_counter() - t0
    assert done == buckets, (done, buckets)
    await worker_conn.close()
    await conn.close()
    return enqueue, run


async def bench_procrastinate(url: str, buckets: int) -> tuple[float, float]:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    done = 0

    @app.task(name="bucket", queue="probe")
    async def bucket(slot: int, bucket: int) -> None:
        nonlocal done
        done += 1

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        t0 = time.perf_counter()
        for b in range(buckets):  # a queueing lock per job: batch_defer takes one for all
            await bucket.configure(queueing_lock=f"probe/eu-1/60/1/{b}").defer_async(slot=1, bucket=b)
        enqueue = time.perf_counter() - t0
        t0 = time.perf_counter()
        await app.run_worker_async(queues=["probe"], wait=False, concurrency=CONCURRENCY,
                                   install_signal_handlers=False)
        run = time.perf_counter() - t0
    assert done == buckets, (done, buckets)
    return enqueue, run


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buckets", type=int, default=2000)
    parser.add_argument("--url", default="postgresql://127.0.0.1/postgres")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.buckets} bucket jobs per round, {args.rounds} rounds, one worker taking {CONCURRENCY} at a time")
    results = {}
    for name, bench in (("pgqueuer", bench_pgqueuer), ("procrastinate", bench_procrastinate)):
        enq, run = [], []
        for _ in range(args.rounds):
            url = await fresh_database(args.url, f"wb_bench_{name}")
            try:
                e, r = await bench(url, args.buckets)
            finally:
                await drop_database(args.url, f"wb_bench_{name}")
            enq.append(e)
            run.append(r)
        results[name] = (statistics.median(enq) / args.buckets, statistics.median(run) / args.buckets)
        print(f"{name:14} enqueue {results[name][0] * 1e6:8.0f} µs/bucket   take+run+finish "
              f"{results[name][1] * 1e6:8.0f} µs/bucket   ({1 / results[name][1]:,.0f} buckets/s per worker)")
    pgq, pro = results["pgqueuer"], results["procrastinate"]
    print(f"procrastinate/pgqueuer: enqueue x{pro[0] / pgq[0]:.1f}, take+finish x{pro[1] / pgq[1]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
