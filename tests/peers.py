"""Real monitoring peers for integration tests: node-exporter, blackbox-exporter, Alertmanager
(cluster off) and Prometheus on free 127.0.0.1 ports, configured and storing into one
temporary folder, stopped at teardown (SIGTERM, then kill).

Prometheus scrapes every peer and evaluates rules every second, and sends alerts to the
Alertmanager. Tests extend the running peers:

    peers.scrape("workbench", ["127.0.0.1:8502"])  # file_sd targets, labelled job="workbench"
    peers.add_rules("mine", RULES_YAML)             # a rule file; Prometheus reloads
    peers.set_webhook("http://127.0.0.1:P/path")    # Alertmanager's webhook receiver; it reloads
    peers.set_webhook(url, bearer_token="t0ken")    # ... sending Authorization: Bearer t0ken
    peers.wait_for('up{job="node"}')                # an instant query's result once it has series

The binaries come from Debian's packages; tests/run.sh installs them on a fresh machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support import free_port, wait_until

READY_ATTEMPTS, READY_PAUSE = 300, 0.1  # 30 s per peer at most
STOP_TIMEOUT = 10


class Peer:
    """One server process: its binary, loopback port, readiness path and log file."""

    def __init__(self, name: str, binary: str, ready_path: str, root: Path):
        self.name, self.binary, self.ready_path = name, binary, ready_path
        self.port = free_port()
        self.log = root / "logs" / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.ready_after: float | None = None  # seconds from start to ready, for the report

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *args: str) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([shutil.which(self.binary), *args], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        self.started_at = time.monotonic()

    def wait_ready(self) -> None:
        for _ in range(READY_ATTEMPTS):
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with code {self.proc.returncode}\n{self.tail()}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=1).status_code == 200:
                    self.ready_after = time.monotonic() - self.started_at
                    return
            except httpx.HTTPError:
                pass
            time.sleep(READY_PAUSE)
        pytest.fail(f"{self.name} not ready at {self.url}{self.ready_path} after "
                    f"{READY_ATTEMPTS * READY_PAUSE:g}s\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return f"--- last {lines} lines of {self.log} ---\n" + "\n".join(text[-lines:])

    def post(self, path: str, **kwargs) -> httpx.Response:
        """POST to this peer; fail the test with the answer and the log tail unless it is 2xx."""
        response = httpx.post(self.url + path, timeout=10, **kwargs)
        if not response.is_success:
            pytest.fail(f"{self.name} answered POST {path} with {response.status_code}: "
                        f"{response.text.strip()}\n{self.tail()}")
        return response


class Peers:
    def __init__(self, root: Path):
        self.root = root
        self.node_exporter = Peer("node-exporter", "prometheus-node-exporter", "/metrics", root)
        self.blackbox = Peer("blackbox-exporter", "prometheus-blackbox-exporter", "/-/healthy", root)
        self.alertmanager = Peer("alertmanager", "prometheus-alertmanager", "/-/ready", root)
        self.prometheus = Peer("prometheus", "prometheus", "/-/ready", root)
        self.all = [self.node_exporter, self.blackbox, self.alertmanager, self.prometheus]
        self.webhook_url = f"http://127.0.0.1:{free_port()}/alertmanager"  # nobody listens until set_webhook
        self.webhook_token: str | None = None

    def start(self) -> Peers:
        """Start every peer, then wait for each (they start in parallel)."""
        missing = [p.binary for p in self.all if shutil.which(p.binary) is None]
        if missing:
            pytest.fail(f"not on PATH: {', '.join(missing)}; tests/run.sh installs them "
                        "(Debian packages of the same names)")
        for folder in ("rules", "targets", "data/prometheus", "data/alertmanager"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self._write("blackbox.yml", {"modules": {"http_2xx": {"prober": "http", "timeout": "5s"}}})
        self._write_alertmanager_config()
        self._write("prometheus.yml", self._prometheus_config())
        self.node_exporter.start(f"--web.listen-address={self.node_exporter.address}")
        self.blackbox.start(f"--config.file={self.root / 'blackbox.yml'}",
                            f"--web.listen-address={self.blackbox.address}")
        self.alertmanager.start(f"--config.file={self.root / 'alertmanager.yml'}",
                                f"--storage.path={self.root / 'data/alertmanager'}",
                                f"--web.listen-address={self.alertmanager.address}",
                                f"--web.external-url={self.alertmanager.url}", "--cluster.listen-address=")
        self.prometheus.start(f"--config.file={self.root / 'prometheus.yml'}",
                              f"--storage.tsdb.path={self.root / 'data/prometheus'}",
                              f"--web.listen-address={self.prometheus.address}",
                              f"--web.external-url={self.prometheus.url}", "--web.enable-lifecycle",
                              # a reload forgets the Alertmanagers for ~5 s (discovery throttle) and alerts
                              # sent meanwhile are dropped; resend firing ones every second, not minute
                              "--rules.alert.resend-delay=1s")
        for peer in self.all:
            peer.wait_ready()
        return self

    def stop(self) -> None:
        for peer in reversed(self.all):
            peer.stop()

    def timings(self) -> str:
        return ", ".join(f"{p.name} {p.ready_after:.2f}s" for p in self.all if p.ready_after is not None)

    # --- what tests change while the peers run ------------------------------------------
    def scrape(self, job: str, targets: list[str]) -> None:
        """Have Prometheus scrape ``targets`` (host:port, path /metrics) as ``job``, every second;
        an empty list stops it. Wait for the data with ``wait_for``."""
        self._write(f"targets/{job}.json", [{"targets": targets, "labels": {"job": job}}])

    def add_rules(self, name: str, rules_yaml: str) -> None:
        """Add (or replace) a Prometheus rule file and reload; a bad file fails with Prometheus' reason."""
        self._write_text(f"rules/{name}.yml", rules_yaml)
        self.prometheus.post("/-/reload")

    def set_webhook(self, url: str, bearer_token: str | None = None) -> None:
        """Point Alertmanager's one receiver (a webhook, send_resolved) at ``url``, sending
        ``Authorization: Bearer <bearer_token>`` when one is given, and reload."""
        self.webhook_url, self.webhook_token = url, bearer_token
        self._write_alertmanager_config()
        self.alertmanager.post("/-/reload")

    def wait_for(self, promql: str) -> list[dict]:
        """The result of an instant query once it has series (Prometheus applies new scrape
        targets within ~5 s, its discovery throttle; evaluates rules every second)."""
        try:
            return wait_until(lambda: self._query(promql), f"series for {promql} in Prometheus")
        except pytest.fail.Exception as exc:
            targets = httpx.get(f"{self.prometheus.url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
            health = "\n".join(f"  {t['labels'].get('job')} {t['scrapeUrl']}: {t['health']} {t['lastError']}"
                               for t in targets)
            pytest.fail(f"{exc}\nscrape targets:\n{health}\n{self.prometheus.tail()}")

    def _query(self, promql: str) -> list[dict]:
        response = httpx.get(f"{self.prometheus.url}/api/v1/query", params={"query": promql}, timeout=10)
        if response.status_code != 200:
            pytest.fail(f"Prometheus answered {response.status_code} to {promql}: {response.text}")
        return response.json()["data"]["result"]

    # --- configuration ------------------------------------------------------------------
    def _prometheus_config(self) -> dict:
        def job(name: str, peer: Peer) -> dict:
            return {"job_name": name, "static_configs": [{"targets": [peer.address]}]}

        return {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules/*.yml"],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [self.alertmanager.address]}]}]},
            "scrape_configs": [
                job("prometheus", self.prometheus), job("node", self.node_exporter),
                job("blackbox", self.blackbox), job("alertmanager", self.alertmanager),
                {"job_name": "file_sd", "file_sd_configs": [{"files": ["targets/*.json"], "refresh_interval": "1s"}]},
            ],
        }

    def _write_alertmanager_config(self) -> None:
        webhook = {"url": self.webhook_url, "send_resolved": True}
        if self.webhook_token:
            webhook["http_config"] = {"authorization": {"type": "Bearer", "credentials": self.webhook_token}}
        self._write("alertmanager.yml", {
            "route": {"receiver": "webhook", "group_by": ["alertname"], "group_wait": "1s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "webhook", "webhook_configs": [webhook]}],
        })

    def _write(self, relative: str, doc) -> None:
        text = json.dumps(doc, indent=2) if relative.endswith(".json") else yaml.safe_dump(doc, sort_keys=False)
        self._write_text(relative, text)

    def _write_text(self, relative: str, text: str) -> None:
        """Replace the file in one rename, so a watcher (file_sd) never reads half of it."""
        path = self.root / relative
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(text)
        os.replace(temporary, path)
