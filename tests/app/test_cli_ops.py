"""The command as scripts, cron, monitoring wrappers and log shippers see it, in real processes: its
version, exit statuses and log lines."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from app.logs import json_formatter
from tests.support import ROOT, LocalServer, QuietHandler, free_port, wait_until

pytestmark = pytest.mark.integration

TARGET = """
targets:
  - name: shop-web
    kind: http
    service: shop
    url: {url}
    timeout: 1s
    conditions: ["[STATUS] == 200"]
"""


def clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}, **extra}


def workbench(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", "--data", str(tmp_path / "var"), *args], cwd=ROOT,
                          env=clean_env(), capture_output=True, text=True, timeout=60)


def test_version_of_the_console_script():
    script = Path(sys.executable).parent / "workbench"
    done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, f"workbench {version('sre-workbench')}\n")


@pytest.fixture
def shop():
    """A real HTTP server on 127.0.0.1 whose answer (200 or 503) the test switches."""

    class Handler(QuietHandler):
        status = 200

        def do_GET(self):
            self.reply(Handler.status, b"shop\n", "text/plain")

    server = LocalServer(Handler)
    server.handler = Handler
    yield server
    server.close()


def test_probe_run_exit_status_says_whether_a_probe_failed(tmp_path, policy_dir, shop):
    policy = str(policy_dir(TARGET.format(url=shop.url + "/")))
    passing = workbench(tmp_path, "--policy", policy, "probe", "run", "--once", "--exit-status")
    assert passing.returncode == 0 and re.match(r"shop-web +ok ", passing.stdout), passing.stderr

    shop.handler.status = 503
    failing = workbench(tmp_path, "--policy", policy, "probe", "run", "--once", "--exit-status")
    assert failing.returncode == 1 and re.match(r"shop-web +FAIL .*got 503", failing.stdout), failing.stderr
    assert failing.stderr == ""
    without_flag = workbench(tmp_path, "--policy", policy, "probe", "run", "--once")
    assert without_flag.returncode == 0 and " FAIL " in without_flag.stdout

    shop.handler.status = 200
    assert workbench(tmp_path, "--policy", policy, "probe", "run", "--once", "--exit-status").returncode == 0


def run_worker(tmp_path, policy, *flags: str, env: dict[str, str] | None = None) -> list[str]:
    """Start a worker, wait for /healthz, stop it with SIGTERM; its stderr lines."""
    port, log = free_port(), tmp_path / "worker.log"
    with open(log, "w") as stderr:
        worker = subprocess.Popen([sys.executable, "-m", "app.cli", *flags, "--policy", str(policy), "--data",
                                   str(tmp_path / "var"), "worker", "--port", str(port)],
                                  cwd=ROOT, env=clean_env(**(env or {})), stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_until(lambda: healthy(port) or worker.poll() is not None, "the worker to answer /healthz")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    return log.read_text().splitlines()


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_worker_logs_one_json_object_per_line(tmp_path, policy_dir, shop, how):
    policy = policy_dir(TARGET.format(url=shop.url + "/"))
    if how == "flag":
        lines = run_worker(tmp_path, policy, "--log-format", "json")
    else:
        lines = run_worker(tmp_path, policy, env={"WORKBENCH_LOG_FORMAT": "json"})
    records = [json.loads(line) for line in lines]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    messages = [(r["level"], r["logger"], r["message"]) for r in records]
    assert ("INFO", "workbench.worker", "worker started: 1 targets") in messages
    assert messages[-1] == ("INFO", "workbench.worker", "worker stopped")
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", r["time"]) for r in records)


def test_the_default_log_format_stays_text(tmp_path, policy_dir, shop):
    lines = run_worker(tmp_path, policy_dir(TARGET.format(url=shop.url + "/")))
    text = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO workbench.worker: "
    assert re.match(text + "serving /healthz, /metrics, /ingest/alertmanager, /channels/slack/interactions and "
                           "/api/incidents on http://127.0.0.1:", lines[0])
    assert re.fullmatch(text + "worker stopped", lines[-1])


def test_an_unknown_log_format_in_the_environment_is_a_usage_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "app.cli", "policy", "check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=clean_env(WORKBENCH_LOG_FORMAT="yaml"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines()[-1] == "workbench: error: WORKBENCH_LOG_FORMAT='yaml': use one of text, json"


def test_a_json_log_line_carries_the_exception():
    import logging

    try:
        raise RuntimeError("probe store unwritable")
    except RuntimeError:
        record = logging.LogRecord("workbench.worker", logging.ERROR, __file__, 1, "could not record %s", ("shop",),
                                   sys.exc_info())
    line = json.loads(json_formatter().format(record))
    assert (line["level"], line["message"]) == ("ERROR", "could not record shop")
    assert line["exception"].startswith("Traceback") and "RuntimeError: probe store unwritable" in line["exception"]


@pytest.mark.parametrize("command", [["worker"], ["worker", "--host"], ["ui"], ["up"]])
def test_nothing_listens_beyond_loopback_without_login_configured(tmp_path, command):
    """It never listens: the check comes before the port is opened (--host: the worker's older name of --bind)."""
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "targets.yaml").write_text(TARGET.format(url="http://127.0.0.1:9/"))
    flag = command[1] if len(command) > 1 else "--bind"
    done = workbench(tmp_path, "--policy", str(tmp_path / "policy"), command[0], flag, "0.0.0.0",
                     *(["--port", str(free_port())] if command[0] != "up" else []))
    assert done.returncode == 1
    what = "the worker" if command[0] == "worker" else "the web app"
    assert done.stderr.strip().splitlines()[-1] == (
        f"workbench: {what} would listen on 0.0.0.0, beyond loopback, and settings.yaml has no access: section: "
        "anyone reaching it could act without logging in. Configure access (docs/security.md), or listen on "
        "127.0.0.1")


@pytest.mark.parametrize("settings,flags,says", [
    ("", ["--location", "office"], "workbench: --name, --location and --probes-only are for a fleet: add fleet: to "
                                   "settings.yaml (docs/fleet.md)"),
    ("fleet:\n", [], "workbench: fleet: in settings.yaml needs a PostgreSQL ledger (WORKBENCH_DATABASE_URL); this one "
                     "is sqlite: remove fleet: for one worker on this ledger"),
])
def test_a_fleet_worker_needs_fleet_in_the_policy_and_postgresql(tmp_path, settings, flags, says):
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "targets.yaml").write_text(TARGET.format(url="http://127.0.0.1:9/"))
    (tmp_path / "policy" / "settings.yaml").write_text(settings)
    done = workbench(tmp_path, "--policy", str(tmp_path / "policy"), "worker", "--port", str(free_port()), *flags)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == says
