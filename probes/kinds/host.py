"""Host probe: CPU, memory, disk, load and network saturation of the machine the worker runs on.

CPU and network are deltas over one short sampling window: /proc/stat and /proc/net/dev are
read at its start and at its end. The window's length comes from the injected clock (ctx.now)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from policies.schema import HostTarget
from probes.context import ProbeContext, failed, observe

CPU_WINDOW_S = 0.25


async def run(target: HostTarget, ctx: ProbeContext):
    started_at = ctx.now()
    t0 = time.perf_counter()
    try:
        first, net_first = _cpu_times(ctx.proc), _net_counters(ctx.proc, target.interface)
        await asyncio.sleep(CPU_WINDOW_S)
        second, net_second = _cpu_times(ctx.proc), _net_counters(ctx.proc, target.interface)
        window = (ctx.now() - started_at).total_seconds()
        values = {
            "CPU": _busy_percent(first, second),
            **_net_rates(net_first, net_second, window if window > 0 else CPU_WINDOW_S),
            "MEMORY": _memory_percent(ctx.proc),
            "DISK": _disk_percent(target.path),
            "LOAD": os.getloadavg()[0] / (os.cpu_count() or 1),
        }
    except (OSError, ValueError, IndexError, ZeroDivisionError) as exc:
        return failed(target, started_at, (time.perf_counter() - t0) * 1000, f"cannot read host figures: {exc}")
    return observe(target, started_at, (time.perf_counter() - t0) * 1000, values)


def _cpu_times(proc: Path) -> tuple[int, int]:
    """(idle, total) jiffies from the aggregate line of /proc/stat."""
    fields = [int(x) for x in (proc / "stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return idle, sum(fields[:8])


def _busy_percent(first: tuple[int, int], second: tuple[int, int]) -> float:
    idle, total = second[0] - first[0], second[1] - first[1]
    return 0.0 if total <= 0 else round(100.0 * (total - idle) / total, 2)


def _net_counters(proc: Path, interface: str | None) -> dict[str, tuple[int, int, int]]:
    """Per interface (rx bytes, tx bytes, rx+tx errors and drops) from /proc/net/dev:
    ``interface`` alone, or every interface but lo."""
    counters = {}
    for line in (proc / "net" / "dev").read_text().splitlines()[2:]:
        name, _, rest = line.partition(":")
        name, fields = name.strip(), [int(x) for x in rest.split()]
        if name == interface or (interface is None and name != "lo"):
            counters[name] = (fields[0], fields[8], fields[2] + fields[3] + fields[10] + fields[11])
    if interface is not None and not counters:
        raise ValueError(f"no network interface {interface!r} in {proc / 'net' / 'dev'}")
    return counters


def _net_rates(first: dict, second: dict, seconds: float) -> dict[str, float]:
    """Deltas over the window of the interfaces seen at both ends; a counter that went back
    (an interface re-created) adds nothing."""
    delta = [sum(max(0, second[i][k] - first[i][k]) for i in first.keys() & second.keys()) for k in range(3)]
    return {"NET_RX_BPS": round(delta[0] / seconds, 2), "NET_TX_BPS": round(delta[1] / seconds, 2),
            "NET_ERRORS": delta[2]}


def _memory_percent(proc: Path) -> float:
    info = {}
    for line in (proc / "meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        info[key] = int(rest.split()[0])
    return round(100.0 * (info["MemTotal"] - info["MemAvailable"]) / info["MemTotal"], 2)


def _disk_percent(path: str) -> float:
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    return round(100.0 * used / (used + free), 2) if used + free else 0.0
