"""The fleet's rows (ledger/repo/fleet.py, ledger/fleet_samples.py), on SQLite and PostgreSQL:
a worker's name is its own while it heartbeats; a silent worker opens one finding, resolved when
it heartbeats again; a worker that stopped on purpose opens none; samples sent through the
ledger reach the store once; and on PostgreSQL a probe result waits for no other writer."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from ledger.db import write_session
from ledger.errors import WorkerNameTaken
from ledger.fleet_samples import LedgerSamples, take_in
from ledger.queries import fleet_workers, list_incidents
from ledger.repo import fleet
from ledger.samples import Sample, SampleStore
from policies.schema import HttpTarget
from probes.context import observe
from probes.cycle import record
from tests.ledger.test_db import wait_for_a_lock_wait

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DEAD_AFTER = timedelta(seconds=60)


def beat(name: str = "eu-a", pid: int = 100, **fields) -> fleet.Beat:
    return fleet.Beat(name=name, location="eu-1", host="box-1", pid=pid, started_at=T0, **fields)


def write(engine, change, *args):
    with write_session(engine) as session:
        return change(session, *args)


def test_a_live_workers_name_is_refused_to_another_process_and_free_once_it_is_silent(engine):
    write(engine, fleet.join, beat(pid=100), T0, DEAD_AFTER)
    with pytest.raises(WorkerNameTaken, match="a worker named 'eu-a' is running on box-1 \\(pid 100"):
        write(engine, fleet.join, beat(pid=200), T0 + timedelta(seconds=5), DEAD_AFTER)
    write(engine, fleet.join, beat(pid=100), T0 + timedelta(seconds=5), DEAD_AFTER)  # the same process again
    write(engine, fleet.join, beat(pid=200), T0 + timedelta(seconds=70), DEAD_AFTER)
    [row] = fleet_workers(engine, T0 + timedelta(seconds=70), DEAD_AFTER)
    assert (row.pid, row.silent, row.stopped_at) == (200, False, None)


def test_a_silent_worker_opens_one_finding_resolved_when_it_heartbeats_again(engine):
    write(engine, fleet.join, beat("eu-a", house=True), T0, DEAD_AFTER)
    write(engine, fleet.join, beat("eu-b", pid=101), T0, DEAD_AFTER)
    write(engine, fleet.leave, "eu-b", T0 + timedelta(seconds=10))  # stopped on purpose
    later = T0 + timedelta(seconds=90)
    assert write(engine, fleet.raise_silent, later, DEAD_AFTER) == ["eu-a"]
    assert write(engine, fleet.raise_silent, later + timedelta(minutes=5), DEAD_AFTER) == []
    [incident] = list_incidents(engine)
    assert (incident.correlation_key, incident.severity, incident.state) == ("workbench/worker/eu-a", "warning",
                                                                            "observed")
    assert incident.title.startswith("worker eu-a (eu-1, box-1) stopped heartbeating at 12:00:00 UTC")
    states = {w.name: (w.silent, w.stopped_at is not None, w.house) for w in fleet_workers(engine, later, DEAD_AFTER)}
    assert states == {"eu-a": (True, False, False), "eu-b": (False, True, False)}  # its house duties are stale

    write(engine, fleet.heartbeat, beat("eu-a", buckets=3, targets=700), later + timedelta(minutes=6))
    [incident] = list_incidents(engine)
    assert incident.state == "resolved"


def test_samples_sent_through_the_ledger_reach_the_store_once(engine, tmp_path):
    store = SampleStore(tmp_path / "samples")
    senders = [LedgerSamples(engine, name) for name in ("eu-a", "office-a")]
    for i, sender in enumerate(senders):
        sender.append([Sample("probe_success", {"service": "shop", "target": "web", "location": f"l{i}"}, 1.0,
                              T0 + timedelta(seconds=s)) for s in range(300)])
        assert sender.flush() == 300
    assert take_in(engine, store) == 600
    assert take_in(engine, store) == 0
    frame = store.query("SELECT count(*) AS n, count(DISTINCT labels) AS series FROM samples")
    assert frame.row(0) == (600, 2)


@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)
def test_a_probe_result_is_recorded_while_another_writer_holds_the_turn(engine):
    """The ledger's write lock no longer serializes every write: an operator's transaction is open,
    and a healthy target's result commits meanwhile (a failing one would wait for its turn)."""
    target = HttpTarget(kind="http", name="web", service="shop", url="http://127.0.0.1:9/")
    done = threading.Event()

    def probe_result() -> None:
        record(engine, target, observe(target, T0, 5.0, {"STATUS": 200}, status=200))
        done.set()

    with write_session(engine) as operator:
        operator.connection()  # begun: it holds the turn
        thread = threading.Thread(target=probe_result)
        thread.start()
        thread.join(timeout=60)
        assert done.is_set() and not wait_for_a_lock_wait(engine, attempts=1)
