"""Host probe: CPU, memory, disk, load and network saturation of the machine the worker runs on,
read through psutil (Linux, macOS, Windows, the BSDs).

CPU and network are deltas since the target's previous run (its readings are kept in the probe
context), so a figure is the average over the whole interval, not one instant: a single busy
moment does not fail a run. A first run, a one-off ``probe run --once``, or a run more than
MAX_SPAN after the previous one reads its own short window instead: the counters at its start
and its end, the loop sleeping in between (a run blocks nothing). Lengths come from the injected
clock (ctx.now)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import psutil

from policies.schema import HostTarget
from probes.context import ProbeContext, failed, observe

CPU_WINDOW_S = 0.25
MAX_SPAN = timedelta(minutes=10)  # older readings are not this interval's


async def run(target: HostTarget, ctx: ProbeContext):
    started_at = ctx.now()
    t0 = time.perf_counter()
    try:
        key = ("host", target.name, target.interface)
        kept = ctx.readings.get(key)
        if kept is not None and timedelta(0) < started_at - kept[2] <= MAX_SPAN:
            first, net_first, since = kept
        else:
            first, net_first, since = psutil.cpu_times(), _net_counters(target.interface), started_at
            await asyncio.sleep(CPU_WINDOW_S)
        second, net_second, until = psutil.cpu_times(), _net_counters(target.interface), ctx.now()
        ctx.readings[key] = (second, net_second, until)
        window = (until - since).total_seconds()
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
