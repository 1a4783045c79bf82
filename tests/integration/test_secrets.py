"""No secret leaves a real worker in any encoding. The worker probes a local server with a
``${PROBE_TOKEN}`` header, which the server echoes back; Alertmanager deliveries to its webhook
carry that token (raw, URL-encoded, base64, JSON-escaped) and secret-shaped strings in their
labels and annotations; an action with a secret parameter in its webhook URL is proposed and
approved from the command line and run by the worker against a server that echoes the URL; the
model the worker asks for hypotheses answers with an error quoting the token. Then the whole
data directory (the SQLite ledger's bytes included, its WAL checkpointed), the worker's log,
the model's prompts, every JSON the CLI prints and every page, as Streamlit renders it and as a
headless Chromium shows it, hold none of those secrets. The readers (the CLI, the pages) are
not given the secrets: what they show is what the worker kept."""

from __future__ import annotations

import base64
import html
import json
import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.cli.serve import STREAMLIT_APP
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY, ENV_PORT
from ledger import queries
from ledger.db import open_ledger, sqlite_url
from tests.hypotheses.recorded import MODEL, RecordedOllama
from tests.integration.conftest import WorkerProcess
from tests.support import ROOT, LocalServer, QuietHandler, free_port, wait_until

pytestmark = pytest.mark.integration

PROBE_TOKEN = 'Pr0be/T0k+en"q=9f3c7a'  # quoting, JSON escaping and both base64 alphabets change it
HOOK_SECRET = "h00k/S3cret+pw&x=1 y"  # a secret parameter, URL-encoded in the action's webhook URL
INGEST_TOKEN = "ingest-b3arer-5e6f7a8b9c"
APPROVAL_KEY = "approval-signing-key-0123456789abcdef"
# Secret-shaped strings: masked by their shape whatever the policy references.
SHAPED = {"dsn": "postgres://admin:S3cretPw@db/x", "query": "token=abcd1234efgh",
          "stripe": "sk_live_4eC39HqLyjWDarjtT1zdp7dc"}
SHAPE_SECRETS = ["S3cretPw", "abcd1234efgh", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"]
ENV = {"PROBE_TOKEN": PROBE_TOKEN, "HOOK_SECRET": HOOK_SECRET, "WORKBENCH_INGEST_TOKEN": INGEST_TOKEN,
       "WORKBENCH_APPROVAL_KEY": APPROVAL_KEY}
STARTS_AT = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")

TARGETS = """
targets:
  - name: echo-web
    kind: http
    service: shop
    url: {url}/echo
    headers: {{Authorization: "Bearer ${{PROBE_TOKEN}}"}}
    interval: 300ms
    timeout: 250ms
    failure_threshold: 1
    success_threshold: 50
    conditions: ["[STATUS] == 200", "[BODY] == ok"]
"""
ACTIONS = """
actions:
  - id: page-hook
    runner: {{kind: webhook, method: POST, url: "{url}/hook/{{{{key}}}}?key={{{{key}}}}"}}
    parameters:
      key: {{secret: true}}
    risk: containment
    requires_approval: true
    postures: [demo]
    enabled: true
"""
ROUTING = """
providers:
  local: {{host: "{url}", model: "{model}", privacy: local, timeout: 10s}}
routes:
  hypothesis: {{chain: [local], max_attempts: 1}}
refinement: {{enabled: true, interval: 1s, per_run: 5}}
"""
SETTINGS = "remediation_interval: 300ms\n"


def forms(secret: str) -> set[str]:
    """The secret in every encoding it may travel in."""
    encoded = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(secret.encode()).decode()
        encoded |= {whole, whole.rstrip("=")}
    return encoded


LEAKS = sorted({form for secret in ENV.values() for form in forms(secret)} | set(SHAPE_SECRETS))


def leaks(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        return [form for form in LEAKS if form.encode() in text]
    return [form for form in LEAKS if form in text or html.escape(form) in text]


class Echo(QuietHandler):
    """``/echo`` answers 500 with the Authorization header it got, in several encodings;
    ``/hook/...`` answers 200 with the request line (the secret URL-encoded in it)."""

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        body = (f"auth={auth} quoted={quote(auth, safe='')} base64={base64.b64encode(auth.encode()).decode()} "
                f"json={json.dumps(auth)}")
        self.reply(500, body.encode(), "text/plain")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.reply(200, json.dumps({"got": self.requestline, "path": self.path}).encode())


def alert_payload() -> bytes:
    token = PROBE_TOKEN
    labels = {"alertname": "ShopDbDown", "service": "shop", "instance": "echo-web", "severity": "critical",
              "raw": token, "urlencoded": quote(token, safe=""), "base64": base64.b64encode(token.encode()).decode(),
              "ingest": INGEST_TOKEN, **SHAPED}
    annotations = {"summary": f"db down for {SHAPED['dsn']}; {SHAPED['query']}; key {SHAPED['stripe']}",
                   "description": f"probe token {token} (urlsafe {base64.urlsafe_b64encode(token.encode()).decode()})"}
    alert = {"status": "firing", "labels": labels, "annotations": annotations, "startsAt": STARTS_AT,
             "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "5ec2e75ec2e75ec2",
             "generatorURL": f"http://prometheus:9090/graph?g0.expr=up&{SHAPED['query']}&t={quote_plus(token)}"}
    return json.dumps({"version": "4", "status": "firing", "receiver": "workbench", "groupKey": "{}",
                       "alerts": [alert], "groupLabels": {}, "commonLabels": labels,
                       "commonAnnotations": annotations, "externalURL": "http://alertmanager:9093"}).encode()


def cli(policy: Path, data: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI as an operator runs it: the approval key to sign with, none of the other secrets."""
    done = subprocess.run([sys.executable, "-m", "app.cli", "--policy", str(policy), "--data", str(data), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(data), "WORKBENCH_APPROVAL_KEY": APPROVAL_KEY})
    assert done.returncode == 0, done.stderr
    return done


def rendered(at: AppTest) -> bytes:
    """Every element of the rendered page as the browser gets it (its protobuf messages)."""
    out = []

    def walk(node) -> None:
        if getattr(node, "proto", None) is not None:
            out.append(node.proto.SerializeToString())
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    walk(at.sidebar)
    return b"\n".join(out)


def run(at: AppTest) -> AppTest:
    at = at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


PAGES = {"trends": "Trends", "silences": "Suppressed findings", "routing": "Routing", "approvals": "History"}


@dataclass(frozen=True)
class World:
    """What the worker was fed, and what the test kept of it."""

    policy: Path
    data: Path
    log: Path
    incidents: list[int]
    alert_incident: int
    outputs: dict[str, str]  # what the CLI printed, by command
    prompts: list[str]  # what the model was sent


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    echo = LocalServer(Echo)
    model = RecordedOllama([(500, f"upstream refused Authorization: Bearer {PROBE_TOKEN} ({SHAPED['query']})")])
    root = tmp_path_factory.mktemp("secrets")
    policy, data, log = root / "policy", root / "var", root / "worker.log"
    policy.mkdir()
    for name, text in (("targets.yaml", TARGETS.format(url=echo.url)), ("actions.yaml", ACTIONS.format(url=echo.url)),
                       ("routing.yaml", ROUTING.format(url=model.url, model=MODEL)), ("settings.yaml", SETTINGS)):
        (policy / name).write_text(text)
    worker = WorkerProcess(policy, data, log, ENV).start()
    ledger = open_ledger(sqlite_url(data))
    try:
        wait_until(lambda: queries.list_incidents(ledger), "the probe of echo-web to open an incident")
        webhook = f"{worker.url}/ingest/alertmanager"
        bearer = {"Authorization": f"Bearer {INGEST_TOKEN}"}
        assert httpx.post(webhook, content=alert_payload(), headers=bearer, timeout=5).status_code == 200
        refused = httpx.post(webhook, content=b'{"version": "4", "token": "' + PROBE_TOKEN.encode() + b'"',
                             headers=bearer, timeout=5)
        assert refused.status_code == 400
        alert_incident = wait_until(lambda: next((i for i in queries.list_incidents(ledger)
                                                  if i.correlation_key == "shop/alert:ShopDbDown"), None),
                                    "the alert's incident")

        proposed = cli(policy, data, "approvals", "propose", str(alert_incident.id), "page-hook",
                       "--param", "key=${HOOK_SECRET}", "--reason", f"page them, {SHAPED['query']}")
        request_id = queries.list_action_requests(ledger, statuses=["pending"])[0].id
        approved = cli(policy, data, "approvals", "approve", str(request_id), "--reason", "go")
        silenced = cli(policy, data, "silences", "add", "--match", "alertname=NeverFires", "--duration", "1h",
                       "--comment", f"rotating {SHAPED['dsn']}")
        ran = wait_until(lambda: (r := queries.action_request(ledger, request_id)).verification and r,
                         "the worker to run the approved action and verify it")
        assert ran.status == "succeeded" and "/hook/***?key=***" in ran.output
        assert ran.parameters == {"key": "${HOOK_SECRET}"}, "a secret parameter stays its reference"
        refined = wait_until(lambda: [r for r in queries.latest_hypothesis_runs(
            ledger, [i.id for i in queries.list_incidents(ledger)]).values() if r.status == "failed"
            and "answered 500" in (r.reason or "")], "the worker to ask the model about an incident")
        assert "***" in refined[0].reason
        assert model.prompts, "the model was asked"
        incidents = [i.id for i in queries.list_incidents(ledger)]
    finally:
        worker.stop(signal.SIGTERM)
        ledger.dispose()
        echo.close()
        model.close()
    outputs = {"propose": proposed.stdout + proposed.stderr, "approve": approved.stdout + approved.stderr,
               "silence": silenced.stdout + silenced.stderr}
    return World(policy, data, log, incidents, alert_incident.id, outputs, model.prompts)


def test_no_secret_in_the_data_directory_the_worker_log_the_prompts_or_the_cli_json(world):
    outputs = dict(world.outputs)
    for args in (["incidents", "list", "--format", "json"], ["approvals", "list", "--all", "--format", "json"],
                 ["silences", "list", "--format", "json"], ["routing", "decisions", "--format", "json"],
                 *(["incidents", "show", str(i), "--format", "json"] for i in world.incidents),
                 *(["incidents", "hypotheses", str(i), "--format", "json"] for i in world.incidents)):
        done = cli(world.policy, world.data, *args)
        json.loads(done.stdout)
        outputs[" ".join(args)] = done.stdout + done.stderr
    shown = json.loads(outputs[f"incidents show {world.alert_incident} --format json"])
    labels = next(e["data"]["labels"] for e in shown["evidence"] if e["kind"] == "alert")
    assert labels["dsn"] == "postgres://admin:***@db/x" and labels["raw"] == labels["base64"] == "***"

    with sqlite3.connect(world.data / "ledger.db") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    files = {path: path.read_bytes() for path in sorted(world.data.rglob("*")) if path.is_file()}
    assert files[world.data / "ledger.db"], "the ledger's rows are in its file"
    found = {str(path): leaks(content) for path, content in files.items()}
    found |= {"worker log": leaks(world.log.read_text()), "model prompts": leaks("\n".join(world.prompts))}
    found |= {f"workbench {command}": leaks(text) for command, text in outputs.items()}
    assert {where: forms for where, forms in found.items() if forms} == {}


def test_no_secret_in_any_page_as_streamlit_renders_it(world, monkeypatch):
    for name in (ENV_DB, *ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENV_DATA, str(world.data))
    monkeypatch.setenv(ENV_POLICY, str(world.policy))
    st.cache_resource.clear()
    shown = {}
    try:
        for incident_id in world.incidents:  # the Incidents page once per incident, its tabs all drawn
            at = AppTest.from_file(str(STREAMLIT_APP), default_timeout=60)
            at.query_params["incident"] = str(incident_id)
            shown[f"incidents?incident={incident_id}"] = rendered(run(at))
        for name in PAGES:
            at = run(AppTest.from_file(str(STREAMLIT_APP), default_timeout=60))
            shown[name] = rendered(run(at.switch_page(f"../pages/{name}.py")))
    finally:
        st.cache_resource.clear()
    assert b"ShopDbDown" in shown[f"incidents?incident={world.alert_incident}"] and b"page-hook" in shown["approvals"]
    assert {name: found for name, content in shown.items() if (found := leaks(content))} == {}


@pytest.mark.e2e
def test_no_secret_in_any_page_in_a_browser(world, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, answers

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in (ENV_DATA, ENV_DB, ENV_POLICY, ENV_PORT, *ENV)}
    with open(tmp_path / "ui.log", "wb") as log:
        ui = subprocess.Popen([sys.executable, "-m", "app.cli", "--policy", str(world.policy), "--data",
                               str(world.data), "ui", "--port", str(port)], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    shown = {}
    try:
        wait_until(lambda: ui.poll() is None and answers(f"{url}_stcore/health"), "the web app", attempts=600)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            wanted = {f"?incident={i}": f"Incident #{i}" for i in world.incidents}
            wanted |= {name: heading for name, heading in PAGES.items()}
            for path, heading in wanted.items():
                page.goto(url + path)
                expect(page.get_by_text(heading, exact=True).first).to_be_visible(timeout=30_000)
                expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=30_000)
                for tab in page.get_by_role("tab").all():  # each tab's content drawn
                    tab.click()
                shown[path] = page.content() + page.inner_text("body")
            browser.close()
    finally:
        ui.send_signal(signal.SIGTERM)
        ui.wait(timeout=10)
    assert "ShopDbDown" in shown[f"?incident={world.alert_incident}"]
    assert {path: found for path, content in shown.items() if (found := leaks(content))} == {}

