"""The real workbench processes (demo service, worker, web app) on loopback, and a headless
Chromium page on the web app. Every process is stopped at teardown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from app.settings import ENV_DATA, ENV_DB, ENV_POLICY, ENV_PORT, ROOT
from tests.conftest import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
WAIT_SECONDS = 60

TARGETS = """
targets:
  - name: demo-web
    kind: http
    service: demo
    url: http://127.0.0.1:{port}/
    interval: 1s
    severity: critical
    failure_threshold: 2
    conditions: ["[STATUS] == 200"]
"""


@dataclass
class Workbench:
    data_dir: Path
    ui_url: str
    logs: Path
    processes: list[subprocess.Popen]

    def wait_for(self, what: str, check: Callable[[], object], timeout: float = WAIT_SECONDS):
        """Poll ``check`` until it returns something truthy; fail when the bound is reached or a
        process has died, with the process logs in the message."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p for p in self.processes if p.poll() is not None]
            if dead:
                pytest.fail(f"waiting for {what}: {dead[0].args[3:]} exited with {dead[0].returncode}\n{self.log_text()}")
            result = check()
            if result:
                return result
            time.sleep(0.2)
        pytest.fail(f"gave up waiting for {what} after {timeout:g}s\n{self.log_text()}")

    def log_text(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
                         for log in sorted(self.logs.glob("*.log")))


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def workbench(tmp_path, policy_dir):
    """The demo service failing with 503s, a worker probing it every second (2 failures open an
    incident) and the web app, as ``python -m app.cli`` subprocesses on free loopback ports."""
    demo_port, worker_port, ui_port = free_port(), free_port(), free_port()
    policy = policy_dir(TARGETS.format(port=demo_port))
    data_dir, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in (ENV_DATA, ENV_DB, ENV_POLICY, ENV_PORT)}
    commands = {
        "demo": ["demo", "--port", str(demo_port), "--fault", "errors"],
        "worker": ["--policy", str(policy), "--data", str(data_dir), "worker", "--port", str(worker_port)],
        "ui": ["--policy", str(policy), "--data", str(data_dir), "ui", "--port", str(ui_port)],
    }
    processes = []
    try:
        for name, args in commands.items():
            with open(logs / f"{name}.log", "wb") as log:
                processes.append(subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env,
                                                  stdout=log, stderr=subprocess.STDOUT))
        stack = Workbench(data_dir, f"http://127.0.0.1:{ui_port}/", logs, processes)
        stack.wait_for("the web app", lambda: answers(f"{stack.ui_url}_stcore/health"))
        yield stack
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def page() -> Page:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()
