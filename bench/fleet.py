#!/usr/bin/env python3
"""The fleet against one worker, on the same PostgreSQL and the same targets: N http targets at
60 s on a fast local target (bench/probe_throughput.py's, in a child process), first probed by
one worker alone (no ``fleet:``), then by ``--workers`` fleet workers (``fleet:`` in the policy,
pgqueuer). Each set-up runs ``--minutes`` after a warm-up of one interval; for each it prints:

- probes/s achieved (probe results the ledger committed during the window) against scheduled
  (targets / interval);
- the 99th percentile of the schedule lag (planned start of a run -> its start), from the
  workers' own ``workbench_schedule_lag_seconds`` histograms, summed ("no answer" when a worker is too busy to
  answer /metrics within two minutes);
- ledger writes/s: rows PostgreSQL inserted, updated or deleted in the bench's database, and the
  transactions it committed (pg_stat_database);
- CPU seconds per second of the workers, and of PostgreSQL's backends.

    .venv/bin/python bench/fleet.py [--targets 10000] [--workers 4] [--minutes 3]

Each set-up gets a fresh database (dropped after). Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import sqlalchemy

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from probe_throughput import free_port, serve_target  # noqa: E402 - bench/ is not a package

INTERVAL = 60
FLEET = "fleet:\n  heartbeat: 5s\n  lease: 20s\n"


def policy(directory: Path, targets: int, port: int, fleet: bool) -> None:
    directory.mkdir(parents=True)
    (directory / "settings.yaml").write_text((FLEET if fleet else "") + "demo:\n  enabled: false\n")
    lines = ["targets:"] + [f"  - {{name: t{i:06d}, kind: http, service: s{i % 100:02d}, "
                            f"url: 'http://127.0.0.1:{port}/t/{i}', interval: {INTERVAL}s, "
                            f"conditions: ['[STATUS] == 200']}}" for i in range(targets)]
    (directory / "targets.yaml").write_text("\n".join(lines) + "\n")


def database(admin: sqlalchemy.Engine, name: str, create: bool) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')


def written(admin: sqlalchemy.Engine, name: str) -> tuple[int, int]:
    """(rows written, transactions committed) in database ``name`` so far."""
    with admin.connect() as conn:
        return tuple(conn.exec_driver_sql(
            "SELECT tup_inserted + tup_updated + tup_deleted, xact_commit FROM pg_stat_database WHERE datname = %s",
            (name,)).one())


def observations(engine: sqlalchemy.Engine) -> int:
    """Probe results the ledger holds so far."""
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM observation").scalar()


def lag_buckets(ports: list[int]) -> dict[float, float] | None:
    """The summed cumulative buckets of workbench_schedule_lag_seconds: upper bound -> count; None
    when a worker is too busy to answer /metrics within two minutes."""
    total: dict[float, float] = {}
    for port in ports:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=120).text
        except httpx.TimeoutException:
            return None
        for line in text.splitlines():
            if line.startswith("workbench_schedule_lag_seconds_bucket"):
                bound = line.split('le="', 1)[1].split('"', 1)[0]
                total[float(bound)] = total.get(float(bound), 0) + float(line.rsplit(" ", 1)[1])
    return total


def p99(before: dict[float, float] | None, after: dict[float, float] | None) -> str:
    if before is None or after is None:
        return "no answer"
    counts = {bound: after[bound] - before.get(bound, 0) for bound in sorted(after)}
    total = counts.get(float("inf"), 0)
    if not total:
        return "n/a"
    for bound, count in counts.items():
        if count >= 0.99 * total:
            return f"<= {bound:g} s" if bound != float("inf") else "> the largest bucket"
    return "n/a"


def cpu_seconds(pids: list[int] | None) -> dict[int, float]:
    """CPU seconds so far of each process in ``pids``, or of each PostgreSQL process (None)."""
    procs = [psutil.Process(pid) for pid in pids] if pids is not None else [
        p for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("postgres")]
    seconds = {}
    for proc in procs:
        try:
            times = proc.cpu_times()
            seconds[proc.pid] = times.user + times.system
        except psutil.Error:
            pass
    return seconds


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two readings: a process that started meanwhile counts whole."""
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())


def run(label: str, admin_url: str, targets: int, workers: int, minutes: float, port: int) -> None:
    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = "wb_bench_fleet"
    database(admin, name, create=True)
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    ledger = sqlalchemy.create_engine(url)
    with tempfile.TemporaryDirectory() as tmp:
        policy(Path(tmp) / "policy", targets, port, fleet=workers > 1)
        procs, ports = [], []
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
        for i in range(workers):
            ports.append(free_port())
            argv = [sys.executable, "-m", "app.cli", "--policy", f"{tmp}/policy", "--data", f"{tmp}/var", "worker",
                    "--port", str(ports[-1])]
            if workers > 1:
                argv += ["--name", f"w{i}", "--location", "eu-1"]
            procs.append(subprocess.Popen(argv, cwd=ROOT, env={**env, "WORKBENCH_DATABASE_URL": url},
                                          stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/w{i}.log", "w")))
        try:
            for p in ports:
                for _ in range(600):
                    try:
                        httpx.get(f"http://127.0.0.1:{p}/healthz", timeout=1)
                        break
                    except httpx.HTTPError:
                        time.sleep(0.5)
            time.sleep(INTERVAL)  # warm-up: every target's first run
            lag0 = lag_buckets(ports)
            writes0, results0 = written(admin, name), observations(ledger)
            cpu0, pg0, t0 = cpu_seconds([p.pid for p in procs]), cpu_seconds(None), time.monotonic()
            time.sleep(minutes * 60)
            writes1, results1 = written(admin, name), observations(ledger)
            cpu1, pg1, seconds = cpu_seconds([p.pid for p in procs]), cpu_seconds(None), time.monotonic() - t0
            lag1 = lag_buckets(ports)
            achieved = (results1 - results0) / seconds
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
    ledger.dispose()
    database(admin, name, create=False)
    scheduled = targets / INTERVAL
    rows, commits = ((after - before) / seconds for before, after in zip(writes0, writes1))
    print(f"{label:<16} probes/s {achieved:7.1f} of {scheduled:7.1f} scheduled ({achieved / scheduled:6.1%})  "
          f"p99 lag {p99(lag0, lag1):>9}  ledger rows written/s {rows:7.1f}, commits/s {commits:7.1f}  "
          f"CPU s/s: workers {cpu_used(cpu0, cpu1) / seconds:4.2f}, PostgreSQL {cpu_used(pg0, pg1) / seconds:4.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    port = free_port()
    target = multiprocessing.Process(target=serve_target, args=(port,), daemon=True)
    target.start()
    print(f"{args.targets:,} http targets at {INTERVAL} s, {args.minutes:g} min after one interval of warm-up, "
          f"{os.cpu_count()} cores")
    try:
        run("one worker", args.url, args.targets, 1, args.minutes, port)
        run(f"{args.workers} fleet workers", args.url, args.targets, args.workers, args.minutes, port)
    finally:
        target.terminate()


if __name__ == "__main__":
    main()
