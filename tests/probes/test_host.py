"""The host probe reads this machine through psutil; the cases a quiet test machine never shows
(traffic, errors, saturation) replace one psutil reading at a time."""

import asyncio
import threading
from collections import namedtuple
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import psutil
import pytest

from policies.schema import HostTarget
from probes.context import ProbeClient, ProbeContext
from probes.kinds import host


def run(target: HostTarget, **ctx):
    async def go():
        async with ProbeClient(1) as client:
            return (await host.run(target, ProbeContext(client, **ctx))).observation
    return asyncio.run(go())


def host_target(*conditions: str, **keys) -> HostTarget:
    return HostTarget(name="box", kind="host", service="host", conditions=list(conditions), **keys)


def test_reads_this_machine():
    obs = run(host_target("[CPU] <= 100", "[MEMORY] <= 100", "[DISK] <= 100", "[LOAD] >= 0", "[NET_RX_BPS] >= 0",
                          "[NET_TX_BPS] >= 0", "[NET_ERRORS] >= 0"))
    assert obs.ok, obs.error
    assert set(obs.values) == {"CPU", "MEMORY", "DISK", "LOAD", "NET_RX_BPS", "NET_TX_BPS", "NET_ERRORS"}
    assert all(0 <= obs.values[k] <= 100 for k in ("CPU", "MEMORY", "DISK"))
    loopback = next(name for name, stats in psutil.net_if_stats().items() if "loopback" in stats.flags.split(","))
    assert run(host_target("[NET_RX_BPS] >= 0", interface=loopback)).ok


def test_cpu_busy_while_this_process_spins():
    """A thread spinning through the sampling window keeps (at least) one core busy."""
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            pass

    async def spinning():
        busy = asyncio.create_task(asyncio.to_thread(spin))
        try:
            async with ProbeClient(1) as client:
                return (await host.run(host_target(), ProbeContext(client))).observation
        finally:
            stop.set()
            await busy

    assert asyncio.run(spinning()).values["CPU"] >= 50 / (psutil.cpu_count() or 1)


Times = namedtuple("Times", "user nice system idle iowait guest")


@pytest.mark.parametrize("second,busy", [
    (Times(150, 0, 100, 825, 25, 20), 50.0),  # iowait is idle; guest time is already in user
    (Times(100, 0, 100, 800, 0, 0), 0.0),  # no CPU time passed
])
def test_cpu_busy_share_as_psutil_counts_it(second, busy):
    assert host._busy_percent(Times(100, 0, 100, 800, 0, 0), second) == busy


def counters(rx: int, tx: int, errors: int = 0, drops: int = 0):
    return SimpleNamespace(bytes_recv=rx, bytes_sent=tx, errin=errors, errout=0, dropin=0, dropout=drops)


def stats(flags: str):
    return SimpleNamespace(flags=flags)


@pytest.fixture
def network(monkeypatch):
    """lo, eth0 and eth1; between the two reads of the window (0.5 s on the injected clock) lo
    moves 10 MB (not counted), eth0 receives 4000 bytes, sends 1000, and sees 2 errors and 1 drop,
    eth1 receives 500."""
    before = {"lo": counters(5, 5), "eth0": counters(1000, 2000, 1), "eth1": counters(100, 0)}
    after = {"lo": counters(10_000_005, 10_000_005), "eth0": counters(5000, 3000, 3, 1), "eth1": counters(600, 0)}
    readings = SimpleNamespace(now=before, clock=datetime(2026, 11, 22, 12, 0, tzinfo=UTC))

    async def window(seconds):
        readings.clock += timedelta(seconds=0.5)
        readings.now = after

    monkeypatch.setattr(psutil, "net_io_counters", lambda pernic: readings.now)
    monkeypatch.setattr(psutil, "net_if_stats", lambda: {"lo": stats("up,loopback,running"),
                                                          "eth0": stats("up,broadcast,running"), "eth1": stats("up")})
    monkeypatch.setattr(host, "asyncio", SimpleNamespace(sleep=window))
    return readings


def test_network_rates_over_the_sampling_window(network):
    obs = run(host_target("[NET_ERRORS] == 0"), now=lambda: network.clock)
    assert (obs.values["NET_RX_BPS"], obs.values["NET_TX_BPS"], obs.values["NET_ERRORS"]) == (9000.0, 2000.0, 3)
    assert not obs.ok and obs.error == "[NET_ERRORS] == 0 -> got 3"


def test_network_rates_of_one_interface(network):
    obs = run(host_target(interface="eth0"), now=lambda: network.clock)
    assert (obs.values["NET_RX_BPS"], obs.values["NET_TX_BPS"], obs.values["NET_ERRORS"]) == (8000.0, 2000.0, 3)


def test_unknown_interface_is_a_failed_observation(network):
    obs = run(host_target(interface="eth9"))
    assert not obs.ok
    assert obs.error == "cannot read host figures: no network interface 'eth9' (there are: eth0, eth1, lo)"


def test_saturation_fails_with_actual_values(monkeypatch):
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(total=1000, available=50))
    obs = run(host_target("[MEMORY] < 90"))
    assert not obs.ok and obs.error == "[MEMORY] < 90 -> got 95.0"


def test_missing_disk_path_is_a_failed_observation(tmp_path):
    obs = run(host_target("[CPU] < 90", path=str(tmp_path / "missing")))
    assert not obs.ok and obs.error.startswith("cannot read host figures: [Errno 2] No such file or directory")


def test_unreadable_figures_are_a_failed_observation(monkeypatch):
    def denied():
        raise psutil.AccessDenied()

    monkeypatch.setattr(psutil, "cpu_times", denied)
    obs = run(host_target("[CPU] < 90"))
    assert not obs.ok and obs.error == "cannot read host figures: AccessDenied"


def test_cpu_is_the_average_since_the_previous_run_not_one_busy_moment(monkeypatch):
    """Run one reads its own 250 ms window (fully busy); run two, 15 s later on the same context,
    counts from where run one ended: 15 s of which 3 were busy is 20 %, with no window of its own."""
    clock = SimpleNamespace(now=datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    readings = iter([Times(100, 0, 100, 800, 0, 0), Times(100.25, 0, 100, 800, 0, 0),
                     Times(102.25, 0, 101, 812, 0, 0)])
    slept = []

    async def window(seconds):
        slept.append(seconds)
        clock.now += timedelta(seconds=seconds)

    monkeypatch.setattr(psutil, "cpu_times", lambda: next(readings))
    monkeypatch.setattr(host, "asyncio", SimpleNamespace(sleep=window))

    async def two_runs():
        async with ProbeClient(1) as client:
            ctx = ProbeContext(client, now=lambda: clock.now)
            first = (await host.run(host_target("[CPU] < 95"), ctx)).observation
            clock.now += timedelta(seconds=15)
            return first, (await host.run(host_target("[CPU] < 95"), ctx)).observation

    first, second = asyncio.run(two_runs())
    assert (first.values["CPU"], first.ok, slept) == (100.0, False, [host.CPU_WINDOW_S])
    assert (second.values["CPU"], second.ok, slept) == (20.0, True, [host.CPU_WINDOW_S])
