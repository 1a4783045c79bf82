#!/usr/bin/env python3
"""Notifications through the outbox to a local webhook, beside plain HTTP POSTs in the same run:

    .venv/bin/python bench/notifications.py [--notifications 2000] [--open 1000] [--new 200] [--rate 10]

1. throughput: ``--notifications`` incidents are opened in a fresh SQLite ledger; one planning
   pass puts a notification for each into the outbox, then delivery passes (as the worker runs
   them: 32 in flight, each attempt recorded before and after) drain it into a webhook receiver
   in a process of its own. The peer: the same bodies POSTed to the same receiver with the same
   concurrency by the same client, with no ledger at all.
2. delay: a real worker process (``python -m app.cli worker``, channels.yaml ``interval: 1s``, a
   route with ``group_wait: 1ms``) with ``--open`` incidents open (delivered first), then ``--new``
   incidents opened at ``--rate`` per second from this process: the time from each one's opening
   to its delivery as the ledger records it (``sent_at - opened_at``), p50 and p99. The planning
   pass reads every open incident, so this is the cost of ``--open`` of them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from sqlmodel import func, select  # noqa: E402

from bench.probe_throughput import free_port, pct, wait_http  # noqa: E402
from ledger.db import open_ledger, read_session, sqlite_url, utcnow, write_session  # noqa: E402
from ledger.repo import incidents  # noqa: E402
from ledger.tables import Incident, Notification  # noqa: E402
from notifications.outbox import CONCURRENCY, deliver_due  # noqa: E402
from notifications.plan import plan  # noqa: E402
from policies.loader import load_policy  # noqa: E402

RECEIVER = """
import sys
from aiohttp import web
async def hook(request):
    await request.read()
    return web.json_response({})
app = web.Application()
app.add_routes([web.post("/hook", hook), web.get("/", lambda r: web.Response(text="ok"))])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def open_incident(engine, i: int, at) -> int:
    spec = incidents.FindingSpec(rule="probe:http", target=f"t{i:05d}", service=f"svc{i % 50}", severity="critical",
                                 summary=f"t{i:05d} failing: [STATUS] == 200 -> got 503",
                                 correlation_key=f"bench/t{i:05d}", labels={"kind": "http", "category": "availability"})
    with write_session(engine) as session:
        return incidents.open_finding(session, spec, [], at).incident_id


def policy_dir(directory: Path, url: str, interval: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "targets.yaml").write_text("allow_empty: true\ntargets: []\n")
    (directory / "routing.yaml").write_text("refinement: {enabled: false}\n")
    (directory / "channels.yaml").write_text(f"""
channels:
  - {{name: hook, kind: webhook, url: "{url}/hook"}}
routes:
  - {{channels: [hook], group_wait: 1ms}}
interval: {interval}
""")
    return directory


async def throughput(tmp: Path, url: str, count: int) -> None:
    engine = open_ledger(sqlite_url(tmp / "throughput"))
    policy = load_policy(policy_dir(tmp / "policy-throughput", url, "1s"))
    opened = utcnow() - timedelta(minutes=1)
    for i in range(count):
        open_incident(engine, i, opened)
    started = time.perf_counter()
    planned = plan(engine, policy, utcnow())
    plan_seconds = time.perf_counter() - started
    async with aiohttp.ClientSession(trust_env=False) as client:
        started = time.perf_counter()
        sent = 0
        while sent < planned:
            done = await deliver_due(engine, policy.channels, {}, client)
            sent += sum(n for (_, result), n in done.results.items() if result == "sent")
        outbox_seconds = time.perf_counter() - started
        with read_session(engine) as session:
            bodies = [n.payload for n in session.exec(select(Notification))]
        gate = asyncio.Semaphore(CONCURRENCY)

        async def post(body):
            async with gate:
                (await client.post(f"{url}/hook", json=body)).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(post(body) for body in bodies))
        raw_seconds = time.perf_counter() - started
    print(f"throughput: {planned} notifications planned in {plan_seconds:.2f} s "
          f"({planned / plan_seconds:,.0f}/s); delivered through the outbox in {outbox_seconds:.2f} s: "
          f"{sent / outbox_seconds:,.0f}/s; plain POSTs of the same bodies: {len(bodies) / raw_seconds:,.0f}/s "
          f"(the outbox runs at {raw_seconds / outbox_seconds:.0%} of it)")
    engine.dispose()


def delay(tmp: Path, url: str, already: int, new: int, rate: float) -> None:
    data = tmp / "delay"
    engine = open_ledger(sqlite_url(data))
    opened = utcnow()
    for i in range(already):
        open_incident(engine, i, opened)
    port = free_port()
    log = open(tmp / "worker.log", "w")
    worker = subprocess.Popen([sys.executable, "-m", "app.cli", "--policy", str(policy_dir(tmp / "policy-delay", url,
                               "1s")), "--data", str(data), "worker", "--port", str(port)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=log,
                              env={k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")})
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        while sent_count(engine) < already:
            time.sleep(0.5)
        ids, started = [], time.monotonic()
        for j in range(new):
            time.sleep(max(0.0, started + j / rate - time.monotonic()))
            ids.append(open_incident(engine, already + j, utcnow()))
        while sent_count(engine) < already + new:
            time.sleep(0.5)
        with read_session(engine) as session:
            rows = session.exec(select(Notification)).all()
            opened_at = {i.id: i.opened_at for i in session.exec(select(Incident))}
        delays = sorted((r.sent_at - opened_at[r.incident_id]).total_seconds() for r in rows if r.incident_id in ids)
        print(f"delay with {already:,} incidents open: {new} new ones at {rate:g}/s, opening to delivery "
              f"p50 {pct(delays, 50):.2f} s, p99 {pct(delays, 99):.2f} s, max {delays[-1]:.2f} s "
              f"(planning and delivery every 1 s, group_wait 1 ms)")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        engine.dispose()


def sent_count(engine) -> int:
    with read_session(engine) as session:
        return session.exec(select(func.count()).select_from(Notification).where(Notification.status == "sent")).one()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notifications", type=int, default=2000)
    parser.add_argument("--open", type=int, default=1000)
    parser.add_argument("--new", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0)
    args = parser.parse_args()
    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/")
        with tempfile.TemporaryDirectory() as tmp:
            print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
            asyncio.run(throughput(Path(tmp), url, args.notifications))
            delay(Path(tmp), url, args.open, args.new, args.rate)
    finally:
        receiver.terminate()
        receiver.wait()


if __name__ == "__main__":
    main()
