"""A fleet on the real PostgreSQL server: three real worker processes in two locations share
2,000 targets on a real local HTTP server, through pgqueuer. Counted from the ledger: every
target is probed once per interval from each location; a worker killed with SIGKILL has its
buckets taken by the others within one interval, no target misses more than one slot and no run
is recorded twice; the silent worker opens one fleet incident; a target failing from one
location opens the lower-severity finding, one failing from both the incident."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict

import pytest
from sqlalchemy import text

from ledger.db import open_ledger
from ledger.queries import list_incidents
from tests.conftest import _reset_postgres
from tests.integration.conftest import WorkerProcess
from tests.support import ROOT, LocalServer, QuietHandler, free_port, wait_until

pytestmark = pytest.mark.integration

TARGETS = 2000
INTERVAL = 30  # seconds
LOCATIONS = ("eu-1", "office")
SETTINGS = """
fleet:
  bucket_size: 250
  window: 5s
  heartbeat: 1s
  lease: 4s
  dead_after: 8s
"""


class Target(QuietHandler):
    """200 for every path but /down/ (503) and /office-blocked/ (503 to the office's probes)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        office = "location office" in self.headers.get("User-Agent", "")
        failing = self.path.startswith("/down/") or (self.path.startswith("/office-blocked/") and office)
        self.reply(503 if failing else 200, b"{}")


def policy(directory, url: str) -> None:
    directory.mkdir()
    (directory / "settings.yaml").write_text(SETTINGS)
    lines = ["targets:"]
    paths = ["down", "office-blocked"] + [f"t{i:04d}" for i in range(TARGETS - 2)]
    for path in paths:
        name = path if not path.startswith("t") else f"web-{path[1:]}"
        lines += [f"  - name: {name}", "    kind: http", "    service: fleet", f"    url: {url}/{path}/",
                  f"    interval: {INTERVAL}s", "    timeout: 2s", "    failure_threshold: 2",
                  "    success_threshold: 2", f"    locations: [{', '.join(LOCATIONS)}]",
                  '    conditions: ["[STATUS] == 200"]']
    (directory / "targets.yaml").write_text("\n".join(lines) + "\n")


def fleet_worker(policy_dir, data, log, url: str, name: str, location: str) -> WorkerProcess:
    return WorkerProcess(policy_dir, data, log, env={"WORKBENCH_DATABASE_URL": url, "WORKBENCH_WORKER_NAME": name,
                                                     "WORKBENCH_LOCATION": location})


def runs(engine) -> dict[tuple[str, int], Counter]:
    """(location, slot) -> how many runs of each target the ledger holds."""
    found: dict[tuple[str, int], Counter] = defaultdict(Counter)
    with engine.connect() as conn:
        for target, key in conn.execute(text("SELECT target, slot_key FROM observation WHERE slot_key IS NOT NULL")):
            slot, location = key.split("@")
            found[location, int(slot)][target] += 1
    return found


@pytest.fixture
def target_server():
    server = LocalServer(Target)
    yield server
    server.close()


def test_three_workers_two_locations_share_2000_targets_and_survive_a_kill_9(
        postgres_database, target_server, tmp_path):
    _reset_postgres(postgres_database)
    policy(tmp_path / "policy", target_server.url)
    workers = {name: fleet_worker(tmp_path / "policy", tmp_path / "var", tmp_path / f"{name}.log", postgres_database,
                                  name, location)
               for name, location in (("eu-a", "eu-1"), ("eu-b", "eu-1"), ("office-a", "office"))}
    try:
        for w in workers.values():
            w.start()
        engine = open_ledger(postgres_database)
        twin = subprocess.run(
            [sys.executable, "-m", "app.cli", "--policy", str(tmp_path / "policy"), "--data", str(tmp_path / "var"),
             "worker", "--port", str(free_port())], cwd=ROOT, capture_output=True, text=True, timeout=120,
            env={**os.environ, "WORKBENCH_DATABASE_URL": postgres_database, "WORKBENCH_WORKER_NAME": "eu-a"})
        assert twin.returncode == 1
        assert "workbench: a worker named 'eu-a' is running on " in twin.stderr and "another --name" in twin.stderr
        first_full = (int(time.time()) + 2) // INTERVAL * INTERVAL + INTERVAL  # planned whole by every worker
        wait_until(lambda: time.time() > first_full + INTERVAL + 5, "a whole slot", attempts=1200)

        found = runs(engine)
        for slot in (first_full,):
            for location in LOCATIONS:
                assert len(found[location, slot]) == TARGETS, (location, slot, len(found[location, slot]))
        assert all(n == 1 for counts in found.values() for n in counts.values()), "a run recorded twice"

        killed_at = time.time()
        workers["eu-b"].stop(signal.SIGKILL)
        kill_slot = int(killed_at) // INTERVAL * INTERVAL
        wait_until(lambda: time.time() > kill_slot + 2 * INTERVAL + 5, "the slot after the kill", attempts=1200)

        found = runs(engine)
        slots = range(first_full, kill_slot + 2 * INTERVAL, INTERVAL)
        for location in LOCATIONS:
            for slot in (kill_slot + INTERVAL,):  # the next slot is whole again
                assert len(found[location, slot]) == TARGETS, (location, slot, len(found[location, slot]))
            missed = Counter()
            for target in (f"web-{i:04d}" for i in range(TARGETS - 2)):
                gaps = [slot for slot in slots if found[location, slot][target] == 0]
                assert all(b - a > INTERVAL for a, b in zip(gaps, gaps[1:])), (target, location, gaps)
                missed[len(gaps)] += 1
            print(f"\n{location}: targets by slots missed around the kill: {dict(missed)}")
        assert all(n == 1 for counts in found.values() for n in counts.values()), "a run recorded twice"

        incidents = list_incidents(engine)
        fleet = [i for i in incidents if i.correlation_key == "workbench/worker/eu-b"]
        assert len(fleet) == 1 and fleet[0].severity == "warning", incidents
        down = [i for i in incidents if i.correlation_key == "fleet/down"]
        assert len(down) == 1 and down[0].severity == "warning" and "failing from 2 of 2 locations" in down[0].title
        partial = [i for i in incidents if i.correlation_key == "fleet/office-blocked"]
        assert len(partial) == 1 and partial[0].severity == "info", partial
        assert partial[0].title.startswith("office-blocked unreachable from office (office: ")
        assert len(incidents) == 3, [i.title for i in incidents]

        listed = subprocess.run(
            [sys.executable, "-m", "app.cli", "--policy", str(tmp_path / "policy"), "workers", "list", "--format",
             "json"], cwd=ROOT, capture_output=True, text=True, check=True,
            env={**os.environ, "WORKBENCH_DATABASE_URL": postgres_database}).stdout
        state = {w["name"]: (w["location"], w["silent"], w["stopped_at"] is None) for w in json.loads(listed)}
        assert state == {"eu-a": ("eu-1", False, True), "eu-b": ("eu-1", True, True),
                         "office-a": ("office", False, True)}
        assert sum(w["house"] for w in json.loads(listed)) == 1
    finally:
        for w in workers.values():
            w.stop(signal.SIGKILL)
