"""The real workbench processes (demo service, worker, web app) on loopback, and a headless
Chromium page on the web app. Every process is stopped at teardown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from app.settings import ENV_DATA, ENV_DB, ENV_POLICY, ENV_PORT, ROOT
from tests.support import free_port, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

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
    demo_port: int
    logs: Path
    processes: list[subprocess.Popen]
    policy: Path | None = None  # the policy directory, for cli()

    def cli(self, *args: str, stdin: str = "") -> str:
        """Run ``python -m app.cli ARGS`` on this workbench's policy and data directory; return what
        it printed (a failure fails the test with its words)."""
        done = subprocess.run([sys.executable, "-m", "app.cli", "--policy", str(self.policy), "--data",
                               str(self.data_dir), *args], cwd=ROOT, env=environment(), input=stdin,
                              capture_output=True, text=True, timeout=60)
        if done.returncode:
            pytest.fail(f"workbench {' '.join(args)} exited with status {done.returncode}: {done.stderr}")
        return done.stdout

    def wait_for(self, what: str, check: Callable[[], object]):
        """Poll ``check`` (bounded) until it returns something truthy; fail at once, with the
        process logs, when a process has died."""
        return wait_until(lambda: self.alive() and check(), f"{what} (process logs in {self.logs})", attempts=600)

    def alive(self) -> bool:
        for process in self.processes:
            if process.poll() is not None:
                logs = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
                                 for log in sorted(self.logs.glob("*.log")))
                pytest.fail(f"{' '.join(process.args[3:])} exited with status {process.returncode}\n{logs}")
        return True


def environment() -> dict[str, str]:
    """This environment without the workbench's own settings: the command line says them."""
    return {k: v for k, v in os.environ.items() if k not in (ENV_DATA, ENV_DB, ENV_POLICY, ENV_PORT)}


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def history():
    """What the data directory holds before the workbench starts: a function of the data
    directory (a test module overrides this fixture to seed samples); none by default."""
    return lambda data_dir: None


@pytest.fixture
def settings_yaml() -> str | None:
    """The policy's settings.yaml (a test module overrides this fixture, e.g. with an access:
    section); none by default."""
    return None


@pytest.fixture
def workbench(tmp_path, policy_dir, history, settings_yaml):
    """The demo service (healthy until a test switches its fault), a worker probing it every
    second (2 failures open an incident) and the web app, as ``python -m app.cli`` subprocesses
    on free loopback ports."""
    demo_port, worker_port, ui_port = free_port(), free_port(), free_port()
    policy = policy_dir(TARGETS.format(port=demo_port), settings_yaml)
    data_dir, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    history(data_dir)
    env = environment()
    commands = {
        "demo": ["demo", "--port", str(demo_port)],
        "worker": ["--policy", str(policy), "--data", str(data_dir), "worker", "--port", str(worker_port)],
        "ui": ["--policy", str(policy), "--data", str(data_dir), "ui", "--port", str(ui_port)],
    }
    processes = []
    try:
        for name, args in commands.items():
            with open(logs / f"{name}.log", "wb") as log:
                processes.append(subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env,
                                                  stdout=log, stderr=subprocess.STDOUT))
        stack = Workbench(data_dir, f"http://127.0.0.1:{ui_port}/", demo_port, logs, processes, policy)
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


SCREENSHOTS = ROOT / "var" / "e2e-screenshots"  # kept after the run, for a reviewer to look at


@pytest.fixture
def screenshots() -> Path:
    """Where the browser tests write their screenshots: var/e2e-screenshots/ in the checkout."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()
