#!/usr/bin/env python3
"""Alert storms into a real worker's webhook while it probes, beside the previous implementation
in the same run:

    .venv/bin/python bench/ingest.py [--before /path/to/an/older/checkout] [--storm-seconds 30]

For each checkout (this one, and ``--before`` when given: e.g. ``git worktree add /tmp/old 0e83568``)
it starts ``python -m app.cli worker`` from that checkout (this venv's Python, a fresh SQLite ledger
in a temp dir) with ``--targets`` http targets at 1 s against a fast local target (the one
bench/probe_throughput.py serves) and hypothesis refinement off (see ROUTING), waits for the
first probe runs, then measures:

1. storm: ``--storm-clients`` clients POST single-alert webhook payloads back to back for
   ``--storm-seconds``; every alert is new (its own fingerprint and alertname, so each opens a
   finding and an incident; with ``--one-incident`` they share an alertname and fold into one). Alerts/s accepted, and dropped = alerts sent - alert rows in the
   ledger, counted from the ledger file after the run. Meanwhile: the probes' schedule lag p99
   (from the worker's ``workbench_schedule_lag_seconds`` histogram, the bucket holding p99 of the
   runs during the storm), probe runs and failures, the worker's CPU per alert.
2. paced: new alerts at a fixed ``--paced-rate`` for ``--paced-seconds`` (open loop: each request
   leaves at its planned time, whatever the earlier ones do; how late the client itself was is
   printed beside the latency).
3. redeliveries: the paced phase's payloads sent again back to back (every alert a duplicate).

The load generator is a separate process (aiohttp client); both share the machine with the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.probe_throughput import free_port, pct, proc_cpu_seconds, wait_http  # noqa: E402

WEBHOOK_SAMPLE = ROOT / "tests" / "samples" / "alertmanager-webhook.json"
# The hypotheses job reads every open incident each pass (30 s): with tens of thousands of them
# after a storm, that is seconds of CPU beside the webhook; left out here to measure the ingest.
ROUTING = "refinement: {enabled: false}\n"
WINDOW = 5.0  # seconds: the storm's rate is also given for its slowest window of this length
TARGET = """  - {{name: t{i:03d}, kind: http, service: bench, url: "{url}", interval: 1s, timeout: 1s,
     conditions: ["[STATUS] == 200"]}}
"""


# ------------------------------------------------------------------------------------------
# the load generator (child process)
# ------------------------------------------------------------------------------------------
def payload(template: dict, fingerprint: str, one_incident: bool) -> bytes:
    alert = template["alerts"][0]
    alert["fingerprint"] = fingerprint
    alert["labels"]["alertname"] = "Storm" if one_incident else fingerprint
    return json.dumps(template).encode()


async def post(session, url: str, body: bytes) -> tuple[int, dict]:
    try:
        async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as answer:
            return answer.status, await answer.json(content_type=None)
    except Exception as exc:  # noqa: BLE001 - counted as an error, reported
        return 0, {"error": f"{type(exc).__name__}: {exc}"}


async def load(args) -> dict:
    """``closed``: ``clients`` back to back for ``seconds``; ``paced``: one request every
    1/``rate`` s for ``seconds``, whatever the earlier ones do."""
    import aiohttp
    template = json.loads(WEBHOOK_SAMPLE.read_text())
    prefix, lat, late, done, outcomes, errors = args.prefix, [], [], [], {}, {}
    sent = 0

    def tally(status, answer, started, planned=None):
        done.append(time.perf_counter())
        lat.append(done[-1] - started)
        if planned is not None:
            late.append(started - planned)
        if status == 200:
            for key, n in answer.items():
                if key != "status":
                    outcomes[key] = outcomes.get(key, 0) + n
        else:
            key = re.sub(r"\d+", "N", f"{status} {answer.get('error')}")
            errors[key] = errors.get(key, 0) + 1

    connector = aiohttp.TCPConnector(limit=args.clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        t0 = time.perf_counter()
        if args._load == "closed":
            deadline = t0 + args.seconds

            async def client():
                nonlocal sent
                while time.perf_counter() < deadline:
                    body = payload(template, f"{prefix}{sent % args.count if args.count else sent:07d}",
                                   args.one_incident)
                    sent += 1
                    started = time.perf_counter()
                    tally(*await post(session, args.url, body), started)

            await asyncio.gather(*(client() for _ in range(args.clients)))
        else:
            count = int(args.rate * args.seconds)
            bodies = [payload(template, f"{prefix}{i:07d}", args.one_incident) for i in range(count)]

            async def one(i):
                planned = t0 + i / args.rate
                await asyncio.sleep(max(0.0, planned - time.perf_counter()))
                started = time.perf_counter()
                tally(*await post(session, args.url, bodies[i]), started, planned)

            t0 = time.perf_counter() + 0.2
            sent = count
            await asyncio.gather(*(one(i) for i in range(count)))
        wall = time.perf_counter() - t0
    accepted = len(lat) - sum(errors.values())
    windows = [0] * max(1, int(wall // WINDOW))  # answers in each whole WINDOW seconds
    for at in done:
        if (i := int((at - t0) // WINDOW)) < len(windows):
            windows[i] += 1
    return {"sent": sent, "accepted": accepted, "seconds": wall, "rate": accepted / wall,
            "slowest_window_rate": min(windows) / WINDOW,
            "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3, "max_ms": max(lat, default=0) * 1e3,
            "late_p99_ms": pct(late, 99) * 1e3, "late_max_ms": max(late, default=0) * 1e3,
            "outcomes": outcomes, "errors": dict(sorted(errors.items(), key=lambda kv: -kv[1])[:3]),
            "client_cpu_s": time.process_time()}


# ------------------------------------------------------------------------------------------
# the orchestrator
# ------------------------------------------------------------------------------------------
def scrape(base: str) -> str:
    import urllib.request
    with urllib.request.urlopen(base + "/metrics", timeout=10) as answer:
        return answer.read().decode()


def series(text: str, name: str) -> dict[str, float]:
    """Every sample of ``name`` (exact name, any labels) by its label text."""
    found = {}
    for m in re.finditer(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", text, re.MULTILINE):
        found[m.group(1) or ""] = float(m.group(2))
    return found


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1e3
    return float("nan")


def lag_p99(before: str, after: str) -> str:
    """The upper bound of the schedule-lag bucket that holds the 99th percentile of the runs
    observed between two scrapes."""
    b, a = series(before, "workbench_schedule_lag_seconds_bucket"), series(after, "workbench_schedule_lag_seconds_bucket")
    buckets = sorted(((float(re.search(r'le="([^"]+)"', k).group(1)), a[k] - b.get(k, 0.0)) for k in a))
    total = buckets[-1][1] if buckets else 0
    if not total:
        return "no runs"
    bound = next(le for le, n in buckets if n >= math.ceil(0.99 * total))
    return f"<= {bound:g} s ({int(total)} runs)"


class Run:
    """One worker process from ``checkout`` with its own policy and ledger in ``tmp``."""

    def __init__(self, checkout: Path, tmp: Path, args, target_url: str):
        self.checkout, self.tmp, self.args = checkout, tmp, args
        policy, self.data = tmp / "policy", tmp / "data"
        policy.mkdir(parents=True)
        (policy / "targets.yaml").write_text("targets:\n" + "".join(TARGET.format(i=i, url=target_url)
                                                                      for i in range(args.targets)))
        (policy / "routing.yaml").write_text(ROUTING)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
        self.log = open(tmp / "worker.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "--policy", str(policy), "--data", str(self.data),
                                      "worker", "--port", str(self.port)], cwd=checkout, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def load(self, kind: str, prefix: str, **options) -> dict:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--_load", kind, "--url", self.base + "/ingest/alertmanager",
               "--prefix", prefix, *[f"--{k.replace('_', '-')}" + ("" if v is True else f"={v}")
                                     for k, v in options.items() if v is not False]]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError(f"load generator failed: {done.stderr.strip()[-2000:]}")
        return json.loads(lines[-1])

    def alert_rows(self, prefix: str) -> int:
        with sqlite3.connect(self.data / "ledger.db") as con:
            return con.execute("SELECT count(*) FROM alert WHERE fingerprint LIKE ?", (prefix + "%",)).fetchone()[0]

    def stop(self) -> float:
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return time.monotonic() - started


def measure(label: str, checkout: Path, args, target_url: str) -> dict:
    a = args
    tmp = Path(tempfile.mkdtemp(prefix="workbench-ingest-bench-"))
    run = Run(checkout, tmp, a, target_url)
    try:
        wait_http(run.base + "/healthz", timeout=60)
        time.sleep(3)  # first probe runs, the house jobs' first passes
        before, cpu0 = scrape(run.base), proc_cpu_seconds(run.proc.pid)
        storm = run.load("closed", "storm", clients=a.storm_clients, seconds=a.storm_seconds,
                         one_incident=a.one_incident)
        cpu, after = proc_cpu_seconds(run.proc.pid) - cpu0, scrape(run.base)
        storm["dropped"] = storm["sent"] - run.alert_rows("storm")
        storm["worker_cpu_ms"] = cpu / max(1, storm["accepted"]) * 1e3
        storm["lag_p99"] = lag_p99(before, after)
        runs = sum(series(after, "workbench_probe_runs_total").values()) - sum(
            series(before, "workbench_probe_runs_total").values())
        failures = sum(series(after, "workbench_probe_failures_total").values()) - sum(
            series(before, "workbench_probe_failures_total").values())
        storm["probes"] = f"{int(runs)} runs, {int(failures)} failed"
        storm["rss_mb"] = resident_mb(run.proc.pid)
        time.sleep(2)
        cpu0 = proc_cpu_seconds(run.proc.pid)
        paced = run.load("paced", "paced", clients=a.paced_clients, rate=a.paced_rate, seconds=a.paced_seconds,
                         one_incident=a.one_incident)
        paced["worker_cpu_ms"] = (proc_cpu_seconds(run.proc.pid) - cpu0) / max(1, paced["accepted"]) * 1e3
        paced["dropped"] = paced["sent"] - run.alert_rows("paced")
        cpu0 = proc_cpu_seconds(run.proc.pid)
        again = run.load("closed", "paced", clients=a.storm_clients, seconds=a.redelivery_seconds, count=paced["sent"],
                         one_incident=a.one_incident)
        again["worker_cpu_ms"] = (proc_cpu_seconds(run.proc.pid) - cpu0) / max(1, again["accepted"]) * 1e3
    finally:
        stop_s = run.stop()
        log = (tmp / "worker.log").read_text(errors="replace")
        shutil.rmtree(tmp, ignore_errors=True)
    return {"label": label, "storm": storm, "paced": paced, "again": again, "stop_s": stop_s,
            "tracebacks": log.count("Traceback"), "exit": run.proc.returncode}


def report(results: list[dict], args) -> None:
    a = args
    each = "a finding each, all in one incident" if a.one_incident else "a finding and an incident each"
    print(f"\nSTORM: {a.storm_clients} clients back to back for {a.storm_seconds:g} s, single-alert payloads, every "
          f"alert new ({each}); {a.targets} http targets at 1 s probed meanwhile")
    header = (f"{'worker':34s} {'alerts/s':>9s} {'slowest 5 s':>11s} {'sent':>7s} {'dropped':>7s} {'p50 ms':>7s} "
              f"{'p99 ms':>8s} {'CPU ms/alert':>12s} {'load cores':>10s} {'RSS MB':>6s} {'schedule lag p99':>22s}  probes")
    print(header + "\n" + "-" * len(header))
    for r in results:
        s = r["storm"]
        print(f"{r['label']:34s} {s['rate']:9.0f} {s['slowest_window_rate']:11.0f} {s['sent']:7d} {s['dropped']:7d} "
              f"{s['p50_ms']:7.1f} {s['p99_ms']:8.1f} "
              f"{s['worker_cpu_ms']:12.2f} {s['client_cpu_s'] / s['seconds']:10.2f} {s['rss_mb']:6.0f} "
              f"{s['lag_p99']:>22s}  {s['probes']}"
              + (f"  errors {s['errors']}" if s["errors"] else ""))
    print(f"\nPACED: new alerts at {a.paced_rate:g}/s for {a.paced_seconds:g} s (open loop: each request leaves at "
          f"its planned time; client late = how far behind the plan the client sent, p99)")
    header = (f"{'worker':34s} {'alerts/s':>9s} {'sent':>7s} {'dropped':>7s} {'p50 ms':>7s} {'p99 ms':>8s} {'max ms':>8s} "
              f"{'client late ms':>14s} {'CPU ms/alert':>12s}")
    print(header + "\n" + "-" * len(header))
    for r in results:
        p = r["paced"]
        print(f"{r['label']:34s} {p['rate']:9.0f} {p['sent']:7d} {p['dropped']:7d} {p['p50_ms']:7.1f} {p['p99_ms']:8.1f} "
              f"{p['max_ms']:8.1f} {p['late_p99_ms']:14.1f} {p['worker_cpu_ms']:12.2f}"
              + (f"  errors {p['errors']}" if p["errors"] else ""))
    print(f"\nREDELIVERIES: the paced alerts again, {a.storm_clients} clients back to back for "
          f"{a.redelivery_seconds:g} s (every alert a duplicate)")
    header = f"{'worker':34s} {'alerts/s':>9s} {'p50 ms':>7s} {'p99 ms':>8s} {'CPU ms/alert':>12s}  outcomes"
    print(header + "\n" + "-" * len(header))
    for r in results:
        g = r["again"]
        print(f"{r['label']:34s} {g['rate']:9.0f} {g['p50_ms']:7.1f} {g['p99_ms']:8.1f} {g['worker_cpu_ms']:12.2f}  "
              f"{g['outcomes']}" + (f"  errors {g['errors']}" if g["errors"] else ""))
    print()
    for r in results:
        print(f"{r['label']}: SIGTERM to exit {r['stop_s']:.2f} s, exit code {r['exit']}, {r['tracebacks']} tracebacks "
              "in its log")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, help="an older checkout to measure first, the same way")
    ap.add_argument("--targets", type=int, default=50, help="http targets probed every second meanwhile")
    ap.add_argument("--storm-clients", type=int, default=48)
    ap.add_argument("--storm-seconds", type=float, default=30.0)
    ap.add_argument("--paced-rate", type=float, default=500.0, help="alerts/s of the paced phase")
    ap.add_argument("--paced-seconds", type=float, default=20.0)
    ap.add_argument("--paced-clients", type=int, default=256, help="connections the paced client may open")
    ap.add_argument("--redelivery-seconds", type=float, default=10.0)
    ap.add_argument("--one-incident", action="store_true", help="every alert under one alertname: each still opens "
                    "a finding, all fold into one incident")
    # internal: the load generator
    ap.add_argument("--_load", choices=["closed", "paced"], help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--prefix", help=argparse.SUPPRESS)
    ap.add_argument("--clients", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)  # closed loop: repeat these alerts
    return ap.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args._load:
        return print(json.dumps(asyncio.run(load(args))), flush=True)
    from bench.probe_throughput import Bench
    bench = Bench(argparse.Namespace())
    try:
        bench.print_machine()
        port = free_port()
        bench.start([sys.executable, str(ROOT / "bench" / "probe_throughput.py"), "--_serve-target", str(port)],
                    "target.log")
        target_url = f"http://127.0.0.1:{port}/"
        wait_http(target_url)
        results = []
        if args.before:
            results.append(measure(f"before ({args.before.name})", args.before.resolve(), args, target_url))
        results.append(measure(f"this checkout ({ROOT.name})", ROOT, args, target_url))
        report(results, args)
        print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        bench.cleanup()


if __name__ == "__main__":
    main()
