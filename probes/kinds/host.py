"""Host probe: CPU, memory, disk, load and network saturation of the machine the worker runs on,
read through psutil (Linux, macOS, Windows, the BSDs).

CPU and network are deltas over one short sampling window: CPU times and network counters are
read at its start and at its end, and the loop sleeps in between (a run blocks nothing). Each
run measures its own window, so a first run, a one-off ``probe run --once`` and several host
targets all get a full figure. The window's length comes from the injected clock (ctx.now)."""

from __future__ import annotations

import asyncio
import time

import psutil

from policies.schema import HostTarget
from probes.context import ProbeContext, failed, observe

CPU_WINDOW_S = 0.25


async def run(target: HostTarget, ctx: ProbeContext):
    started_at = ctx.now()
    t0 = time.perf_counter()
    try:
        first, net_first = psutil.cpu_times(), _net_counters(target.interface)
        await asyncio.sleep(CPU_WINDOW_S)
        second, net_second = psutil.cpu_times(), _net_counters(target.interface)
        window = (ctx.now() - started_at).total_seconds()
        memory, disk = psutil.virtual_memory(), psutil.disk_usage(target.path)
        values = {
            "CPU": _busy_percent(first, second),
            **_net_rates(net_first, net_second, window if window > 0 else CPU_WINDOW_S),
            "MEMORY": round(100.0 * (memory.total - memory.available) / memory.total, 2),
            "DISK": round(100.0 * disk.used / (disk.used + disk.free), 2) if disk.used + disk.free else 0.0,
            "LOAD": psutil.getloadavg()[0] / (psutil.cpu_count() or 1),
        }
    except (OSError, ValueError, psutil.Error) as exc:
        reason = str(exc) or type(exc).__name__  # psutil's AccessDenied may carry no message
        return failed(target, started_at, (time.perf_counter() - t0) * 1000, f"cannot read host figures: {reason}")
    return observe(target, started_at, (time.perf_counter() - t0) * 1000, values)


def _busy_percent(first, second) -> float:
    """Share of CPU time not idle between two ``psutil.cpu_times()`` readings. As psutil's own
    cpu_percent: iowait is idle, and guest time (already in user and nice on Linux) is not
    counted twice."""
    def idle_and_total(times) -> tuple[float, float]:
        total = sum(times) - getattr(times, "guest", 0) - getattr(times, "guest_nice", 0)
        return times.idle + getattr(times, "iowait", 0), total

    (idle0, total0), (idle1, total1) = idle_and_total(first), idle_and_total(second)
    idle, total = idle1 - idle0, total1 - total0
    return 0.0 if total <= 0 else round(100.0 * (total - idle) / total, 2)


def _net_counters(interface: str | None) -> dict:
    """Per interface psutil's counters: ``interface`` alone, or every interface but the loopback.
    psutil keeps a counter that wraps or restarts (an interface re-created) from going back."""
    counters = psutil.net_io_counters(pernic=True)
    if interface is not None:
        if interface not in counters:
            raise ValueError(f"no network interface {interface!r} (there are: {', '.join(sorted(counters))})")
        return {interface: counters[interface]}
    loopback = {name for name, stats in psutil.net_if_stats().items() if "loopback" in stats.flags.split(",")}
    return {name: c for name, c in counters.items() if name not in loopback}


def _net_rates(first: dict, second: dict, seconds: float) -> dict[str, float]:
    """Deltas over the window of the interfaces seen at both ends: bytes received and sent per
    second, and errors and drops both ways."""
    both = first.keys() & second.keys()

    def delta(*fields: str) -> int:
        return sum(getattr(second[i], f) - getattr(first[i], f) for i in both for f in fields)

    return {"NET_RX_BPS": round(delta("bytes_recv") / seconds, 2),
            "NET_TX_BPS": round(delta("bytes_sent") / seconds, 2),
            "NET_ERRORS": delta("errin", "errout", "dropin", "dropout")}
