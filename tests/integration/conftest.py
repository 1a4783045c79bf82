"""Session-wide real peers for the integration tests (see tests/peers.py), and real worker
processes (`python -m app.cli worker`) probing the demo target."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.peers import Peers
from tests.support import ROOT, free_port, wait_until


@pytest.fixture(scope="session")
def peers(tmp_path_factory):
    """Prometheus, Alertmanager, node-exporter and blackbox-exporter, started once per session."""
    running = Peers(tmp_path_factory.mktemp("peers"))
    try:
        running.start()
        print(f"\npeers ready: {running.timings()}")
        yield running
    finally:
        running.stop()


POLICY = """
targets:
  - name: shop-web
    kind: http
    service: shop
    url: {url}
    interval: {interval}
    timeout: 250ms
    severity: critical
    failure_threshold: 2
    success_threshold: 2
    conditions: ["[STATUS] == 200"]
"""


class WorkerProcess:
    """A real worker process on a free loopback port; its stderr goes to ``log``."""

    def __init__(self, policy, data, log, env=None):
        self.port = free_port()
        self.policy, self.data, self.log = policy, data, log
        self.env = env or {}
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "--policy", str(self.policy), "--data", str(self.data),
             "worker", "--port", str(self.port)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(self.log, "a"),
            env={**{k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}, **self.env},
        )
        wait_until(self.health, "the worker to answer /healthz")
        return self

    def health(self):
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).json()
        except httpx.HTTPError:
            assert self.proc.poll() is None, f"worker exited: {open(self.log).read()[-2000:]}"
            return None

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=2).text

    def metric(self, line_start: str) -> float:
        """The value of the first /metrics line starting with ``line_start``; 0 if there is none."""
        for line in self.metrics().splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)


@pytest.fixture
def worker(tmp_path, demo_target):
    """worker(interval="300ms", env=None) -> a WorkerProcess (not started yet) whose policy has one
    http target, shop-web (service shop), on the demo target; killed after the test."""
    processes = []

    def make(interval="300ms", env=None):
        policy = tmp_path / "policy"
        policy.mkdir(exist_ok=True)
        (policy / "targets.yaml").write_text(POLICY.format(url=demo_target.url, interval=interval))
        w = WorkerProcess(policy, tmp_path / "var", tmp_path / "worker.log", env)
        processes.append(w)
        return w

    yield make
    for w in processes:
        w.stop(signal.SIGKILL)


def pytest_terminal_summary(terminalreporter):
    """The hostile-input suite's figures (tests/integration/test_hostile_input.py), when it ran."""
    from tests.hostile import FIGURES
    for part, figures in FIGURES.items():
        terminalreporter.write_line(f"hostile input, {part}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
