"""Host probe: CPU, memory, disk and load saturation of the machine the worker runs on."""

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
        first = _cpu_times(ctx.proc)
        await asyncio.sleep(CPU_WINDOW_S)
        second = _cpu_times(ctx.proc)
        values = {
            "CPU": _busy_percent(first, second),
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
