"""`workbench up` starts the worker, the web app and the demo service; Ctrl-C stops them all."""

import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.support import ROOT, free_port, wait_until

pytestmark = pytest.mark.integration


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_up_starts_everything_and_ctrl_c_stops_it(tmp_path):
    worker, ui, demo = free_port(), free_port(), free_port()
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "targets.yaml").write_text(
        f"targets:\n  - {{name: demo-web, kind: http, service: demo, url: 'http://127.0.0.1:{demo}/', "
        f"interval: 1s, conditions: ['[STATUS] == 200']}}\n")
    (policy / "settings.yaml").write_text(f"worker_port: {worker}\nui_port: {ui}\ndemo: {{port: {demo}}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    up = subprocess.Popen([sys.executable, "-m", "app.cli", "--policy", str(policy), "--data", str(tmp_path / "var"),
                           "up"], cwd=ROOT, env=env, stderr=open(tmp_path / "up.log", "w"), start_new_session=True)
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{worker}/healthz"), "the worker", attempts=600)
        wait_until(lambda: answers(f"http://127.0.0.1:{ui}/"), "the web app", attempts=600)
        wait_until(lambda: answers(f"http://127.0.0.1:{demo}/"), "the demo service", attempts=600)
        wait_until(lambda: 'workbench_probe_runs_total{kind="http",target="demo-web"}'
                   in httpx.get(f"http://127.0.0.1:{worker}/metrics").text, "a probe of the demo")
        assert (tmp_path / "var" / "ledger.db").exists()
        os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert up.wait(timeout=30) == 0
        for port in (worker, ui, demo):
            assert not answers(f"http://127.0.0.1:{port}/healthz" if port == worker else f"http://127.0.0.1:{port}/")
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
