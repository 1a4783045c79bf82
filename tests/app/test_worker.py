"""The worker's scheduling in-process: jobs never overlap themselves, a crashing probe is an
observation, and metrics render. (A real worker process is in tests/integration.)"""

import asyncio
import re

import pytest
from prometheus_client import generate_latest

from app.worker.jobs import Worker
from ledger.db import open_ledger, sqlite_url
from ledger.queries import list_incidents
from ledger.samples import SampleStore
from policies.holder import PolicyHolder
from probes.context import observe
from probes.kinds import registry

POLICY = """
targets:
  - {name: slow, kind: http, service: s, url: "http://127.0.0.1:9/", interval: 250ms,
     failure_threshold: 2, conditions: ["[STATUS] == 200"]}
"""


@pytest.fixture
def worker(tmp_path, policy_dir):
    holder = PolicyHolder(policy_dir(POLICY), now=lambda: None)
    return Worker(holder, open_ledger(sqlite_url(tmp_path / "var")), SampleStore(tmp_path / "var" / "samples"))


def run_worker(worker: Worker, until) -> None:
    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        for _ in range(200):
            await asyncio.sleep(0.05)
            if until():
                break
        stop.set()
        await task
    asyncio.run(main())


def test_a_job_never_overlaps_itself(worker, monkeypatch):
    running, most, done = 0, 0, []

    async def slow_probe(target, ctx):  # takes four intervals; the scheduler must not start it again meanwhile
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(1.0)
        running -= 1
        done.append(1)
        return observe(target, ctx.now(), 1000.0, {"STATUS": 200}, status=200)

    monkeypatch.setitem(registry.PROBES, "http", slow_probe)
    run_worker(worker, until=lambda: len(done) >= 2)
    assert len(done) >= 2 and most == 1


def test_a_crashing_probe_becomes_a_failed_observation_and_an_incident(worker, monkeypatch):
    async def broken_probe(target, ctx):
        raise RuntimeError("boom")

    monkeypatch.setitem(registry.PROBES, "http", broken_probe)
    run_worker(worker, until=lambda: list_incidents(worker.engine))
    incident = list_incidents(worker.engine)[0]
    assert incident.title.startswith("slow failing: probe error RuntimeError: boom (test_worker.py:")
    metrics = generate_latest(worker.registry).decode()
    failures = re.search(r'^workbench_probe_failures_total\{target="slow"\} (\S+)$', metrics, re.M)
    assert failures and float(failures[1]) >= 2
    assert 'workbench_open_incidents{state="observed"} 1' in metrics
