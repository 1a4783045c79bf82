import asyncio

from policies.schema import HostTarget
from probes import host
from probes.context import ProbeContext, make_client


def run(target: HostTarget, **ctx):
    async def go():
        async with make_client(1) as client:
            return (await host.run(target, ProbeContext(client, **ctx))).observation
    return asyncio.run(go())


def host_target(*conditions: str) -> HostTarget:
    return HostTarget(name="box", kind="host", service="host", conditions=list(conditions))


def test_reads_this_machine():
    obs = run(host_target("[CPU] <= 100", "[MEMORY] <= 100", "[DISK] <= 100", "[LOAD] >= 0"))
    assert obs.ok, obs.error
    assert set(obs.values) == {"CPU", "MEMORY", "DISK", "LOAD"}
    assert all(0 <= obs.values[k] <= 100 for k in ("CPU", "MEMORY", "DISK"))


def test_saturation_fails_with_actual_values(tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "stat").write_text("cpu  100 0 100 800 0 0 0 0 0 0\n")
    (proc / "meminfo").write_text("MemTotal: 1000 kB\nMemFree: 10 kB\nMemAvailable: 50 kB\n")
    obs = run(host_target("[MEMORY] < 90"), proc=proc)
    assert not obs.ok and obs.error == "[MEMORY] < 90 -> got 95.0"


def test_unreadable_proc_is_a_failed_observation(tmp_path):
    obs = run(host_target("[CPU] < 90"), proc=tmp_path / "missing")
    assert not obs.ok and obs.error.startswith("cannot read host figures")
