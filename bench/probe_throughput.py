#!/usr/bin/env python3
"""Throughput of the workbench's hot paths, measured in one run beside a peer: http probes
against blackbox-exporter, the scheduler's lag at 10,000 targets, and samples into the samples
store against SQLite. (Alerts through the webhook: bench/ingest.py.)

    .venv/bin/python bench/probe_throughput.py [--concurrency 50] [--duration 8] [--runs 3]

Everything runs on 127.0.0.1, every loop is bounded by count and time, and every process the
bench starts is stopped on exit. It measures:

1. probes/s: a fast local target (asyncio Protocol HTTP/1.1 server in a child process,
   keep-alive, ``ok`` 200 body), its own ceiling with wrk, prometheus-blackbox-exporter's
   ``/probe?module=http_2xx`` driven by wrk (a probe counts only when the body says
   ``probe_success 1``), and the workbench's probe, ``probes.kinds.http.run`` with an
   ``HttpTarget`` (``[STATUS] == 200``, ``[RESPONSE_TIME] < 1000``) over the client
   ``probes.context.ProbeClient`` the worker builds (keep-alive pool), and the same probe
   with a new connection per probe as blackbox-exporter makes (``keepalive=False``, what the
   worker uses for ``verify_tls: false`` targets). References: a bare request loop over
   ``httpx.AsyncClient`` with the same limits (httpx's own pool), and one over aiohttp (the
   library ProbeClient is built on). Each case runs ``--runs``
   times, round-robin, each in its own child process; medians and the ratio to
   blackbox-exporter are printed.
2. schedule lag: APScheduler as app/worker/jobs.py builds it (coalesce, max_instances=1,
   misfire_grace_time=interval), first runs at ``utcnow() + app.worker.buckets.spread(name,
   interval)``, ``--sched-targets`` (10,000) targets at 60 s, each job a real probe of the
   target (``probes.cycle.probe``) through ``ProbeClient(max_connections)``; lag = planned
   run time -> job start, over a 75 s window. The old behaviour (all first runs at
   ``utcnow()``) runs after it as a reference.
3. samples/s: ``ledger.samples.SampleStore`` append (one call per probe, the samples
   ``probes.cycle.probe_samples`` makes for an http probe) and flush (one per 5 s of probes
   at 10,000 targets / 60 s, as the worker's samples-flush job), against a plain sqlite3
   ``executemany`` of the same rows into a fresh SQLite file, one commit per batch.

Needs wrk and prometheus-blackbox-exporter (apt) for the probe peers; without blackbox-exporter
the ratios are left out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONDITIONS = ["[STATUS] == 200", "[RESPONSE_TIME] < 1000"]
BLACKBOX_BIN = os.environ.get("BLACKBOX_BIN", "prometheus-blackbox-exporter")
BLACKBOX_CONFIG = """\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
"""
PROBE_CHECK_LUA = """\
-- count blackbox /probe answers whose body says probe_success 1
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0 end
function response(status, headers, body)
  if status == 200 and string.find(body, "\\nprobe_success 1", 1, true) then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local o, b = 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); b = b + t:get("bad") end
  io.write(string.format("probe_ok %d probe_bad %d\\n", o, b))
end
"""
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, math.ceil(p / 100 * len(values)) - 1))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def version_of(dist: str) -> str:
    from importlib import metadata
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a running process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def children_cpu_seconds() -> float:
    r = os.times()
    return r.children_user + r.children_system


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read()
                return
        except Exception as exc:  # noqa: BLE001 - waiting for a server to come up
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout:g}s: {last}")


def reason_key(text) -> str:
    return _NUMBER.sub("N", str(text))


def top3(counts: dict) -> dict:
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:3])


# ------------------------------------------------------------------------------------------
# the fast target (child process)
# ------------------------------------------------------------------------------------------
def _response(close: bool) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
            + (b"Connection: close\r\n" if close else b"") + b"\r\nok\n")


RESP_KEEP, RESP_CLOSE = _response(False), _response(True)


class TargetProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1 for GET: keep-alive, Connection: close, pipelining; always ``ok``."""

    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head, self.buf = self.buf[:end], self.buf[end + 4:]
            lower = head.lower()
            close = b"connection: close" in lower or (
                head.split(b"\r\n", 1)[0].endswith(b"HTTP/1.0") and b"keep-alive" not in lower)
            self.transport.write(RESP_CLOSE if close else RESP_KEEP)
            if close:
                self.transport.close()
                return
        if len(self.buf) > 65536:
            self.transport.close()


def serve_target(port: int) -> None:
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(TargetProtocol, "127.0.0.1", port, backlog=4096, reuse_address=True)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            await stop.wait()
    try:  # the target is not what is measured; uvloop, when installed, keeps it out of the way
        import uvloop
        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


# ------------------------------------------------------------------------------------------
# probes/s (child process)
# ------------------------------------------------------------------------------------------
def make_target(url: str, name: str = "bench", interval: float = 60.0):
    from policies.schema import HttpTarget
    return HttpTarget(name=name, kind="http", service="bench", url=url, interval=f"{interval:g}s",
                      timeout=f"{min(10.0, interval):g}s", conditions=CONDITIONS)


async def load_loop(case: str, url: str, conc: int, duration: float, max_requests: int) -> dict:
    """Closed loop: ``conc`` workers, each doing one request after the other until the
    deadline or ``max_requests``."""
    lat: list[float] = []
    reasons: dict[str, int] = {}
    sent = errors = 0

    if case.startswith("probe-workbench"):  # the probe over the client the worker builds
        from probes.context import ProbeClient, ProbeContext
        from probes.kinds import http as http_probe
        client = ProbeClient(conc, keepalive=case != "probe-workbench-close")
        ctx, target = ProbeContext(client=client), make_target(url)

        async def one():
            obs = (await http_probe.run(target, ctx)).observation
            return obs.ok, obs.error

        close = client.aclose
    elif case == "raw-httpx":  # httpx's own pool, same limits
        import httpx
        limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
        session = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(10.0), trust_env=False)

        async def one():
            r = await session.get(url)
            return r.status_code == 200, f"status {r.status_code}"

        close = session.aclose
    elif case == "raw-aiohttp":
        import aiohttp
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc),
                                        timeout=aiohttp.ClientTimeout(total=10))

        async def one():
            async with session.get(url) as r:
                await r.read()
                return r.status == 200, f"status {r.status}"

        close = session.close
    else:
        raise ValueError(case)

    await asyncio.gather(*(one() for _ in range(conc)), return_exceptions=True)  # warm-up: open the pool
    deadline = time.perf_counter() + duration

    async def worker():
        nonlocal sent, errors
        while sent < max_requests and time.perf_counter() < deadline:
            sent += 1
            t = time.perf_counter()
            try:
                ok, reason = await one()
            except Exception as exc:  # noqa: BLE001 - a raw client raising is an error, counted
                ok, reason = False, f"{type(exc).__name__}: {exc}"
            lat.append(time.perf_counter() - t)
            if not ok:
                errors += 1
                key = reason_key(reason)
                reasons[key] = reasons.get(key, 0) + 1

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await close()
    ok_count = len(lat) - errors
    return {"probes": len(lat), "ok": ok_count, "errors": errors, "seconds": wall, "cpu_seconds": cpu,
            "rate": ok_count / wall, "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3,
            "reasons": top3(reasons)}


# ------------------------------------------------------------------------------------------
# schedule lag (child process)
# ------------------------------------------------------------------------------------------
def run_sched(args) -> None:
    """Schedule as app/worker/jobs.py ``_schedule_targets`` does; ``args._sched`` is ``spread``
    (the worker today) or ``aligned`` (the worker before: every first run at utcnow()).
    Prints one JSON line at the end of the window and exits at once (no drain)."""
    phase = args._sched
    from apscheduler.events import (
        EVENT_JOB_MAX_INSTANCES,
        EVENT_JOB_MISSED,
        EVENT_JOB_SUBMITTED,
    )
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from app.worker.buckets import spread
    from ledger.db import utcnow
    from probes.context import ProbeClient, ProbeContext
    from probes.cycle import probe

    n, window = args.sched_targets, float(args.sched_window)
    targets = {f"bench-{i:05d}": make_target(args.url, name=f"bench-{i:05d}", interval=args.sched_interval)
               for i in range(n)}
    interval = next(iter(targets.values())).interval
    planned_at: dict[str, object] = {}
    start_lag: list[tuple[float, float]] = []  # (planned time - t0 in seconds, lag)
    counts = {"missed": 0, "max_instances": 0, "probe_ok": 0, "probe_failed": 0}
    reasons: dict[str, int] = {}
    stalls: list[float] = []

    async def main():
        ctx = ProbeContext(ProbeClient(args.max_connections))
        sched = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})

        def on_event(event):
            if event.code == EVENT_JOB_SUBMITTED:
                planned_at[event.job_id] = max(event.scheduled_run_times)
            elif event.code == EVENT_JOB_MISSED:
                counts["missed"] += 1
            else:
                counts["max_instances"] += 1

        sched.add_listener(on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

        async def job(name: str) -> None:
            planned = planned_at[name]
            start_lag.append(((planned - t0).total_seconds(), (utcnow() - planned).total_seconds()))
            obs = (await probe(targets[name], ctx)).observation
            if obs.ok:
                counts["probe_ok"] += 1
            else:
                counts["probe_failed"] += 1
                key = reason_key(obs.error)
                reasons[key] = reasons.get(key, 0) + 1

        t0 = utcnow()
        for name, target in targets.items():
            first = utcnow() + spread(name, target.interval) if phase == "spread" else utcnow()
            sched.add_job(job, "interval", args=[name], id=name, replace_existing=True,
                          seconds=target.interval.total_seconds(), next_run_time=first,
                          misfire_grace_time=max(1, int(target.interval.total_seconds())))

        async def heartbeat():  # how long the loop is blocked at a time
            while True:
                t = time.perf_counter()
                await asyncio.sleep(0.01)
                stalls.append(time.perf_counter() - t - 0.01)

        sched.start()
        beat = asyncio.create_task(heartbeat())
        cpu0 = time.process_time()
        await asyncio.sleep(max(0.0, window - (utcnow() - t0).total_seconds()))
        cpu = time.process_time() - cpu0
        beat.cancel()
        lags = [lag for _, lag in start_lag]
        steady = [lag for planned, lag in start_lag if planned >= interval.total_seconds()]
        print(json.dumps({
            "runs": len(lags), "lag_p50_s": pct(lags, 50), "lag_p99_s": pct(lags, 99),
            "lag_max_s": max(lags, default=float("nan")), "steady_runs": len(steady),
            "steady_p99_s": pct(steady, 99), "stall_max_s": max(stalls, default=0.0), "cpu_s": cpu,
            **counts, "reasons": top3(reasons)}), flush=True)
        os._exit(0)  # bounded: do not wait for in-flight probes or cancel 10,000 jobs

    asyncio.run(main())


# ------------------------------------------------------------------------------------------
# samples/s (child process)
# ------------------------------------------------------------------------------------------
def run_samples(args) -> None:
    """The same batches into the samples store and into a fresh SQLite file; one JSON line."""
    from datetime import timedelta

    from ledger.db import utcnow
    from ledger.samples import SampleStore, series_labels
    from probes.context import observe
    from probes.cycle import probe_samples

    tmp = Path(args.tmp)
    # what one http probe run writes, per target: probe_success, probe_duration_seconds and a
    # probe_value for each numeric value (STATUS, RESPONSE_TIME, CONNECTED, BODY_TRUNCATED)
    templates = []
    for i in range(args.sched_targets):
        target = make_target("http://127.0.0.1:1/", name=f"bench-{i:05d}")
        values = {"STATUS": 200, "RESPONSE_TIME": 1.5 + i % 7, "CONNECTED": True, "BODY": "ok\n",
                  "BODY_TRUNCATED": False, "CERTIFICATE_EXPIRATION": None}
        templates.append(probe_samples(target, observe(target, utcnow(), 1.5, values, status=200)))
    per_probe = len(templates[0])
    probes_per_flush = max(1, round(args.sched_targets * args.flush_interval / args.sched_interval))
    step = timedelta(seconds=args.sched_interval / args.sched_targets)
    start = utcnow() - timedelta(seconds=args.samples / per_probe * step.total_seconds())

    def batches():  # lists of per-probe sample lists, built outside the timed part
        made, k = 0, 0
        while made < args.samples:
            batch = []
            while len(batch) < probes_per_flush and made < args.samples:
                at = start + k * step
                samples = [s._replace(at=at) for s in templates[k % len(templates)]][: args.samples - made]
                batch.append(samples)
                made += len(samples)
                k += 1
            yield batch

    store = SampleStore(tmp / "samples")
    store_s = 0.0
    flushes = 0
    for batch in batches():
        t = time.perf_counter()
        for samples in batch:
            store.append(samples)
        written = store.flush()
        store_s += time.perf_counter() - t
        flushes += 1
        assert written == sum(map(len, batch))
    stored = int(store.query("SELECT count(*) AS n FROM samples")["n"][0])

    con = sqlite3.connect(tmp / "peer.sqlite")
    con.execute("CREATE TABLE samples (ts TEXT, name TEXT, service TEXT, target TEXT, labels TEXT, value REAL)")
    con.commit()
    sqlite_s = 0.0
    for batch in batches():
        t = time.perf_counter()
        rows = [(s.at.isoformat(), s.name, s.labels.get("service"), s.labels.get("target"), series_labels(s.labels),
                 float(s.value)) for samples in batch for s in samples]
        con.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?)", rows)
        con.commit()
        sqlite_s += time.perf_counter() - t
    peer_rows = con.execute("SELECT count(*) FROM samples").fetchone()[0]
    con.close()
    print(json.dumps({
        "samples": args.samples, "per_probe": per_probe, "probes_per_flush": probes_per_flush, "flushes": flushes,
        "store_rate": args.samples / store_s, "store_s": store_s, "stored": stored,
        "store_bytes": sum(p.stat().st_size for p in (tmp / "samples").rglob("*.parquet")),
        "sqlite_rate": args.samples / sqlite_s, "sqlite_s": sqlite_s, "sqlite_rows": peer_rows,
        "sqlite_bytes": (tmp / "peer.sqlite").stat().st_size}), flush=True)


# ------------------------------------------------------------------------------------------
# the orchestrator
# ------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="workbench-bench-"))
        self.procs: list[subprocess.Popen] = []
        self.python = sys.executable
        self.blackbox = None
        self.figures: dict[str, str] = {}

    def start(self, cmd, log_name, env=None) -> subprocess.Popen:
        with open(self.tmp / log_name, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
                                    env=env)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def cleanup(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def child(self, extra: list[str], timeout: float) -> tuple[dict | None, str]:
        cmd = [self.python, str(Path(__file__).resolve()), *extra]
        try:
            done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        except subprocess.TimeoutExpired:
            return None, f"timed out after {timeout:g}s"
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            return None, (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return json.loads(lines[-1]), ""

    # main ------------------------------------------------------------------------------
    def run(self) -> None:
        a = self.args
        self.print_machine()
        if not (a.skip_throughput and a.skip_sched):
            port = free_port()
            self.target = self.start([self.python, str(Path(__file__).resolve()), "--_serve-target", str(port)],
                                     "target.log")
            self.target_url = f"http://127.0.0.1:{port}/"
            wait_http(self.target_url)
            print(f"target: {self.target_url} (pid {self.target.pid})")
        if not a.skip_throughput:
            self.throughput()
        if not a.skip_sched:
            self.sched()
        if not a.skip_samples:
            self.samples()
        print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    # probes/s --------------------------------------------------------------------------
    def start_blackbox(self) -> None:
        if not shutil.which(BLACKBOX_BIN):
            print(f"blackbox-exporter: {BLACKBOX_BIN} not found (apt-get install prometheus-blackbox-exporter); "
                  "no ratios")
            return
        (self.tmp / "blackbox.yml").write_text(BLACKBOX_CONFIG)
        port = free_port()
        self.blackbox = self.start([BLACKBOX_BIN, f"--config.file={self.tmp / 'blackbox.yml'}",
                                    f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], "blackbox.log")
        self.blackbox_url = f"http://127.0.0.1:{port}"
        wait_http(self.blackbox_url + "/metrics")
        out = subprocess.run([BLACKBOX_BIN, "--version"], check=False, capture_output=True, text=True, timeout=10)
        version = re.search(r"version (\S+)", out.stdout + out.stderr)
        print(f"blackbox-exporter: {self.blackbox_url} ({version.group(1) if version else '?'}, "
              f"pid {self.blackbox.pid})")

    def cases(self) -> list[dict]:
        cases = [{"name": "wrk -> target (ceiling)", "kind": "wrk", "url": self.target_url, "lua": False}]
        if self.blackbox:
            url = f"{self.blackbox_url}/probe?" + urllib.parse.urlencode({"module": "http_2xx",
                                                                          "target": self.target_url})
            cases.append({"name": "blackbox-exporter /probe (wrk)", "kind": "wrk", "url": url, "lua": True})
        cases += [{"name": "workbench http probe", "kind": "py", "case": "probe-workbench"},
                  {"name": "  same, new connection per probe", "kind": "py", "case": "probe-workbench-close"},
                  {"name": "  ref: raw httpx loop", "kind": "py", "case": "raw-httpx"},
                  {"name": "  ref: raw aiohttp loop", "kind": "py", "case": "raw-aiohttp"}]
        return cases

    def wrk(self, url: str, lua: bool) -> dict:
        a = self.args
        cmd = ["wrk", "-t1", f"-c{a.concurrency}", f"-d{a.duration:g}s", "--timeout", "10s", "--latency"]
        if lua:
            (self.tmp / "probe_check.lua").write_text(PROBE_CHECK_LUA)
            cmd += ["-s", str(self.tmp / "probe_check.lua")]
        out = subprocess.run([*cmd, url], check=False, capture_output=True, text=True, timeout=a.duration + 30).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        total = int(re.search(r"(\d+) requests in", out).group(1))
        lat = {p: _wrk_ms(m) for p, m in re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.MULTILINE)}
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        errors = sum(int(x) for x in m.groups()) if m else 0
        if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
            errors += int(m.group(1))
        ok = total
        if m := re.search(r"probe_ok (\d+) probe_bad (\d+)", out):
            ok, errors = int(m.group(1)), max(errors, int(m.group(2)))
        seconds = total / rps if rps else a.duration
        return {"probes": total, "ok": ok, "errors": errors, "seconds": seconds, "rate": ok / seconds,
                "p50_ms": lat.get("50", float("nan")), "p99_ms": lat.get("99", float("nan")), "reasons": {}}

    def measure(self, case: dict) -> dict:
        a = self.args
        target_cpu0 = proc_cpu_seconds(self.target.pid)
        bb_cpu0 = proc_cpu_seconds(self.blackbox.pid) if self.blackbox else 0.0
        child_cpu0 = children_cpu_seconds()
        if case["kind"] == "wrk":
            r = self.wrk(case["url"], case["lua"])
            prober_cpu = children_cpu_seconds() - child_cpu0
            if case["name"].startswith("blackbox"):
                prober_cpu += proc_cpu_seconds(self.blackbox.pid) - bb_cpu0
        else:
            r, err = self.child(["--_case", case["case"], "--url", self.target_url, "--concurrency",
                                 str(a.concurrency), "--duration", str(a.duration), "--max-requests",
                                 str(a.max_requests)], timeout=a.duration + 60)
            if r is None:
                return {"failed": err}
            prober_cpu = r["cpu_seconds"]
        r["prober_cpu_ms"] = prober_cpu / max(1, r["probes"]) * 1e3
        r["target_cpu_ms"] = (proc_cpu_seconds(self.target.pid) - target_cpu0) / max(1, r["probes"]) * 1e3
        return r

    def throughput(self) -> None:
        a = self.args
        self.start_blackbox()
        cases = self.cases()
        results: list[list[dict]] = [[] for _ in cases]
        print(f"\nprobes/s: concurrency {a.concurrency}, {a.runs} runs x {a.duration:g}s per case, round-robin")
        for run in range(a.runs):
            for i, case in enumerate(cases):
                r = self.measure(case)
                results[i].append(r)
                name = case["name"].strip()
                if "failed" in r:
                    print(f"  run {run + 1} {name}: FAILED {r['failed']}", flush=True)
                else:
                    print(f"  run {run + 1} {name}: {r['rate']:.0f}/s p50 {r['p50_ms']:.2f} ms "
                          f"p99 {r['p99_ms']:.2f} ms errors {r['errors']}", flush=True)
                time.sleep(0.5)
        if self.blackbox:
            self.stop(self.blackbox)

        med = []
        for rows in results:
            good = [r for r in rows if "failed" not in r]
            med.append(None if not good else {
                "rate": statistics.median(r["rate"] for r in good), "min": min(r["rate"] for r in good),
                "max": max(r["rate"] for r in good), "p50": statistics.median(r["p50_ms"] for r in good),
                "p99": statistics.median(r["p99_ms"] for r in good), "errors": sum(r["errors"] for r in good),
                "probes": sum(r["probes"] for r in good), "cpu": statistics.median(r["prober_cpu_ms"] for r in good),
                "tcpu": statistics.median(r["target_cpu_ms"] for r in good),
                "reasons": top3({k: v for r in good for k, v in r["reasons"].items()})})
        bb = next((m for c, m in zip(cases, med) if c["name"].startswith("blackbox") and m), None)
        print(f"\nPROBES/S (medians of {a.runs} runs x {a.duration:g}s, concurrency {a.concurrency}; CPU ms = CPU per "
              "probe of the prober side, driver included; cores = CPU ms x probes/s; tgt ms = target CPU per probe)")
        header = (f"{'case':32s} {'probes/s':>9s} {'min-max':>12s} {'p50 ms':>7s} {'p99 ms':>7s} {'errors':>13s} "
                  f"{'CPU ms':>7s} {'cores':>5s} {'tgt ms':>7s} {'vs blackbox':>11s}")
        print(header + "\n" + "-" * len(header))
        for case, m in zip(cases, med):
            if m is None:
                print(f"{case['name']:32s} failed")
                continue
            ratio = "-" if not bb or case["kind"] == "wrk" and not case["name"].startswith("blackbox") \
                else f"{m['rate'] / bb['rate']:.2f}x"
            print(f"{case['name']:32s} {m['rate']:9.0f} {m['min']:5.0f}-{m['max']:<6.0f} {m['p50']:7.2f} {m['p99']:7.2f} "
                  f"{m['errors']:>6d}/{m['probes']:<6d} {m['cpu']:7.3f} {m['cpu'] * m['rate'] / 1e3:5.2f} "
                  f"{m['tcpu']:7.3f} {ratio:>11s}")
            if m["reasons"]:
                print(f"{'':34s}errors: {m['reasons']}")
        print("(blackbox-exporter opens a new connection to the target per probe, as does the workbench's "
              "'new connection per probe' case; the other Python cases keep a pool of keep-alive connections; "
              "blackbox CPU = blackbox + wrk)")

    # schedule lag ----------------------------------------------------------------------
    def sched(self) -> None:
        a = self.args
        print(f"\nSCHEDULE LAG: APScheduler as app/worker/jobs.py builds it, {a.sched_targets} http targets at "
              f"{a.sched_interval:g}s, each job probes.cycle.probe() of the target over ProbeClient"
              f"({a.max_connections}); window {a.sched_window:g}s from scheduling; lag = planned run -> job start; "
              "steady = runs planned >= 1 interval after scheduling")
        header = (f"{'first runs':40s} {'runs':>6s} {'lag p50':>8s} {'p99':>8s} {'max':>8s} {'steady p99':>10s} "
                  f"{'stall max':>9s} {'missed':>6s} {'probes ok/failed':>17s} {'CPU s':>6s}")
        print(header + "\n" + "-" * len(header))
        labels = {"spread": "utcnow() + spread(name) (worker.py now)",
                  "aligned": "  ref: all at utcnow() (old worker.py)"}
        for variant in a.sched_variants.split(","):
            r, err = self.child(["--_sched", variant, "--url", self.target_url, "--sched-targets",
                                 str(a.sched_targets), "--sched-interval", str(a.sched_interval), "--sched-window",
                                 str(a.sched_window), "--max-connections", str(a.max_connections)],
                                timeout=a.sched_window + 120)
            if r is None:
                print(f"{labels[variant]:40s} failed: {err}", flush=True)
                continue
            print(f"{labels[variant]:40s} {r['runs']:6d} {r['lag_p50_s']:7.3f}s {r['lag_p99_s']:7.3f}s "
                  f"{r['lag_max_s']:7.3f}s {r['steady_p99_s']:9.3f}s {r['stall_max_s']:8.3f}s {r['missed']:6d} "
                  f"{r['probe_ok']:>9d}/{r['probe_failed']:<7d} {r['cpu_s']:6.1f}", flush=True)
            if r["reasons"]:
                print(f"{'':42s}probe failures: {r['reasons']}")

    # samples/s -------------------------------------------------------------------------
    def samples(self) -> None:
        a = self.args
        work = self.tmp / "samples-bench"
        work.mkdir()
        r, err = self.child(["--_samples", "--tmp", str(work), "--samples", str(a.samples), "--sched-targets",
                             str(a.sched_targets), "--sched-interval", str(a.sched_interval), "--flush-interval",
                             str(a.flush_interval)], timeout=900)
        shutil.rmtree(work, ignore_errors=True)
        if r is None:
            print(f"\nSAMPLES/S: failed: {err}")
            return
        print(f"\nSAMPLES/S: {r['samples']:,} samples, {r['per_probe']} per http probe, appended one probe at a time "
              f"and flushed every {r['probes_per_flush']} probes ({r['flushes']} flushes: {a.flush_interval:g} s of "
              f"{a.sched_targets:,} targets at {a.sched_interval:g}s)")
        header = f"{'writer':58s} {'samples/s':>10s} {'seconds':>8s} {'rows read back':>14s} {'MB on disk':>10s}"
        print(header + "\n" + "-" * len(header))
        print(f"{'SampleStore append+flush (Parquet zstd)':58s} {r['store_rate']:10,.0f} {r['store_s']:8.2f} "
              f"{r['stored']:14,d} {r['store_bytes'] / 1e6:10.1f}")
        print(f"{'  peer: sqlite3 executemany, commit per batch (defaults)':58s} {r['sqlite_rate']:10,.0f} "
              f"{r['sqlite_s']:8.2f} {r['sqlite_rows']:14,d} {r['sqlite_bytes'] / 1e6:10.1f}")
        print(f"SampleStore / sqlite3: {r['store_rate'] / r['sqlite_rate']:.2f}x")

    def print_machine(self) -> None:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), platform.machine())
        print(f"machine: nproc {os.cpu_count()} (usable {len(os.sched_getaffinity(0))}), {model}, load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, {platform.platform()}")
        print(f"python {platform.python_version()}; httpx {version_of('httpx')}, aiohttp {version_of('aiohttp')}, "
              f"APScheduler {version_of('APScheduler')}, polars "
              f"{version_of('polars')}, sqlite {sqlite3.sqlite_version}; wrk {'yes' if shutil.which('wrk') else 'missing'}")


def _wrk_ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}[m.group(2)]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--concurrency", type=int, default=50, help="probes/s: concurrent requests")
    ap.add_argument("--duration", type=float, default=8.0, help="probes/s: seconds per run")
    ap.add_argument("--runs", type=int, default=3, help="probes/s: runs per case")
    ap.add_argument("--max-requests", type=int, default=200_000, help="probes/s: cap per Python run")
    ap.add_argument("--sched-targets", type=int, default=10_000, help="targets scheduled (and per samples batch)")
    ap.add_argument("--sched-interval", type=float, default=60.0, help="their interval, seconds")
    ap.add_argument("--sched-window", type=float, default=75.0, help="seconds each schedule variant runs")
    ap.add_argument("--sched-variants", default="spread,aligned",
                    help="spread (worker.py now) and/or aligned (old worker.py, reference)")
    ap.add_argument("--max-connections", type=int, default=100, help="probe pool in the schedule test "
                    "(settings.max_connections)")
    ap.add_argument("--samples", type=int, default=1_000_000, help="samples written to each store")
    ap.add_argument("--flush-interval", type=float, default=5.0, help="settings.samples_flush_interval, seconds")
    for part in ("throughput", "sched", "samples"):
        ap.add_argument(f"--skip-{part}", action="store_true")
    # internal: child processes
    ap.add_argument("--_serve-target", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--_case", help=argparse.SUPPRESS)
    ap.add_argument("--_sched", help=argparse.SUPPRESS)
    ap.add_argument("--_samples", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args._serve_target:
        return serve_target(args._serve_target)
    if args._case:
        result = asyncio.run(load_loop(args._case, args.url, args.concurrency, args.duration, args.max_requests))
        return print(json.dumps(result), flush=True)
    if args._sched:
        return run_sched(args)
    if args._samples:
        return run_samples(args)
    bench = Bench(args)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        bench.run()
    except KeyboardInterrupt:
        print("interrupted; stopping what was started", file=sys.stderr)
    finally:
        bench.cleanup()


if __name__ == "__main__":
    main()
