import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

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


def net_dev(lo: int, eth0: tuple[int, int, int, int], eth1_rx: int) -> str:
    """/proc/net/dev with lo, eth0 (rx bytes, rx errs, tx bytes, tx drop) and eth1 (rx bytes)."""
    rx, rx_errs, tx, tx_drop = eth0
    return ("Inter-|   Receive                                                |  Transmit\n"
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
            f"    lo: {lo} 10 0 0 0 0 0 0 {lo} 10 0 0 0 0 0 0\n"
            f"  eth0: {rx} 10 {rx_errs} 0 0 0 0 0 {tx} 10 0 {tx_drop} 0 0 0 0\n"
            f"  eth1: {eth1_rx} 10 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n")


def fake_proc(tmp_path):
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "stat").write_text("cpu  100 0 100 800 0 0 0 0 0 0\n")
    (proc / "meminfo").write_text("MemTotal: 1000 kB\nMemFree: 10 kB\nMemAvailable: 50 kB\n")
    (proc / "net" / "dev").write_text(net_dev(5, (1000, 1, 2000, 0), 100))
    return proc


def test_reads_this_machine():
    obs = run(host_target("[CPU] <= 100", "[MEMORY] <= 100", "[DISK] <= 100", "[LOAD] >= 0", "[NET_RX_BPS] >= 0",
                          "[NET_TX_BPS] >= 0", "[NET_ERRORS] >= 0"))
    assert obs.ok, obs.error
    assert set(obs.values) == {"CPU", "MEMORY", "DISK", "LOAD", "NET_RX_BPS", "NET_TX_BPS", "NET_ERRORS"}
    assert all(0 <= obs.values[k] <= 100 for k in ("CPU", "MEMORY", "DISK"))
    assert run(host_target("[NET_RX_BPS] >= 0", interface="lo")).ok


def test_network_rates_over_the_sampling_window(tmp_path, monkeypatch):
    """The window is 0.5 s on the injected clock; between the two reads lo moves 10 MB (not
    counted), eth0 receives 4000 bytes, sends 1000, and sees 2 errors and 1 drop, eth1 receives 500."""
    proc = fake_proc(tmp_path)
    clock = SimpleNamespace(at=datetime(2026, 11, 22, 12, 0, tzinfo=UTC))

    async def window(seconds):
        clock.at += timedelta(seconds=0.5)
        (proc / "net" / "dev").write_text(net_dev(10_000_005, (5000, 3, 3000, 1), 600))

    monkeypatch.setattr(host, "asyncio", SimpleNamespace(sleep=window))
    obs = run(host_target("[NET_ERRORS] == 0"), proc=proc, now=lambda: clock.at)
    assert (obs.values["NET_RX_BPS"], obs.values["NET_TX_BPS"], obs.values["NET_ERRORS"]) == (9000.0, 2000.0, 3)
    assert not obs.ok and obs.error == "[NET_ERRORS] == 0 -> got 3"

    (proc / "net" / "dev").write_text(net_dev(5, (1000, 1, 2000, 0), 100))
    obs = run(host_target(interface="eth0"), proc=proc, now=lambda: clock.at)
    assert (obs.values["NET_RX_BPS"], obs.values["NET_TX_BPS"], obs.values["NET_ERRORS"]) == (8000.0, 2000.0, 3)


def test_unknown_interface_is_a_failed_observation(tmp_path):
    obs = run(host_target(interface="eth9"), proc=fake_proc(tmp_path))
    assert not obs.ok
    assert obs.error == f"cannot read host figures: no network interface 'eth9' in {tmp_path}/proc/net/dev"


def test_saturation_fails_with_actual_values(tmp_path):
    obs = run(host_target("[MEMORY] < 90"), proc=fake_proc(tmp_path))
    assert not obs.ok and obs.error == "[MEMORY] < 90 -> got 95.0"


def test_unreadable_proc_is_a_failed_observation(tmp_path):
    obs = run(host_target("[CPU] < 90"), proc=tmp_path / "missing")
    assert not obs.ok and obs.error.startswith("cannot read host figures")
