"""The worker in-process: jobs never overlap themselves, a crashing probe is an observation,
metrics render (without a gauge whose ledger read fails), and a ledger error answers a webhook
batch 503. (A real worker process is in tests/integration.)"""

import asyncio
import json
import re
import threading

import aiohttp
import pytest
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import generate_latest

import policies.holder
from app import access
from app.worker.http import make_app
from app.worker.jobs import Worker
from ledger.db import known_secrets, open_ledger, sqlite_url, utcnow, write_session
from ledger.queries import incident_detail, list_incidents
from ledger.samples import SampleStore
from policies.holder import PolicyHolder
from probes.context import observe
from probes.kinds import registry
from tests.support import SAMPLES

POLICY = """
targets:
  - {name: slow, kind: http, service: s, url: "http://127.0.0.1:9/", interval: 250ms,
     failure_threshold: 2, conditions: ["[STATUS] == 200"]}
"""


@pytest.fixture
def worker(tmp_path, policy_dir):
    holder = PolicyHolder(policy_dir(POLICY), now=lambda: None)
    return Worker(holder, open_ledger(sqlite_url(tmp_path / "var")), SampleStore(tmp_path / "var" / "samples"))


def run_worker(worker: Worker, until) -> None:
    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        for _ in range(200):
            await asyncio.sleep(0.05)
            if until():
                break
        stop.set()
        await task
    asyncio.run(main())


def test_a_job_never_overlaps_itself(worker, monkeypatch):
    running, most, done = 0, 0, []

    async def slow_probe(target, ctx):  # takes four intervals; the scheduler must not start it again meanwhile
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(1.0)
        running -= 1
        done.append(1)
        return observe(target, ctx.now(), 1000.0, {"STATUS": 200}, status=200)

    monkeypatch.setitem(registry.PROBES, "http", slow_probe)
    run_worker(worker, until=lambda: len(done) >= 2)
    assert len(done) >= 2 and most == 1


def test_a_crashing_probe_becomes_a_failed_observation_and_an_incident(worker, monkeypatch):
    async def broken_probe(target, ctx):
        raise RuntimeError("boom")

    monkeypatch.setitem(registry.PROBES, "http", broken_probe)
    run_worker(worker, until=lambda: list_incidents(worker.engine))
    incident = list_incidents(worker.engine)[0]
    assert incident.title.startswith("slow failing: probe error RuntimeError: boom (test_worker.py:")
    metrics = generate_latest(worker.registry).decode()
    failures = re.search(r'^workbench_probe_failures_total\{target="slow"\} (\S+)$', metrics, re.M)
    assert failures and float(failures[1]) >= 2
    assert 'workbench_open_incidents{state="observed"} 1' in metrics


def test_the_workers_ledger_masks_the_secrets_of_the_policy_in_force(tmp_path, policy_dir, monkeypatch):
    monkeypatch.setenv("SLOW_TOKEN", "slow-t0ken-value")
    monkeypatch.setenv("LATER_TOKEN", "later-t0ken-value")
    directory = policy_dir(POLICY.replace('url: "http://127.0.0.1:9/"', 'url: "http://127.0.0.1:9/?k=${SLOW_TOKEN}"'))
    worker = Worker(PolicyHolder(directory, now=lambda: None), open_ledger(sqlite_url(tmp_path / "var")),
                    SampleStore(tmp_path / "var" / "samples"))
    with write_session(worker.engine) as session:
        assert known_secrets(session) == {"slow-t0ken-value"}
    (directory / "targets.yaml").write_text((directory / "targets.yaml").read_text().replace("${SLOW_TOKEN}",
                                                                                             "${LATER_TOKEN}"))
    assert worker.holder.reload_if_changed()
    with write_session(worker.engine) as session:
        assert known_secrets(session) == {"later-t0ken-value"}, "a reloaded policy's secrets count at once"
def test_a_slow_policy_reload_never_holds_up_the_probes(tmp_path, policy_dir, monkeypatch):
    directory = policy_dir(POLICY, settings="policy_reload_interval: 100ms\n")
    worker = Worker(PolicyHolder(directory, now=utcnow), open_ledger(sqlite_url(tmp_path / "var")),
                    SampleStore(tmp_path / "var" / "samples"))
    loading, done, release = threading.Event(), threading.Event(), threading.Event()
    probed_while_loading = []
    load = policies.holder.load_policy

    def slow_load(path):
        loading.set()
        release.wait(10)  # the event loop goes on probing meanwhile, or this runs out
        done.set()
        return load(path)

    async def probe(target, ctx):
        if loading.is_set() and not done.is_set():
            probed_while_loading.append(target.name)
        return observe(target, ctx.now(), 1.0, {"STATUS": 200}, status=200)

    monkeypatch.setattr(policies.holder, "load_policy", slow_load)
    monkeypatch.setitem(registry.PROBES, "http", probe)
    (directory / "targets.yaml").write_text(POLICY.replace("250ms", "200ms"))

    def until() -> bool:
        if len(probed_while_loading) >= 3:
            release.set()
        return worker.holder.policy.target("slow").interval.total_seconds() == 0.2

    run_worker(worker, until)
    assert len(probed_while_loading) >= 3
    assert worker.holder.policy.target("slow").interval.total_seconds() == 0.2  # and the reload took effect


def test_a_failed_ledger_read_leaves_its_gauge_out_and_the_rest_is_served(worker):
    with worker.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE incident RENAME TO incident_away")
    metrics = generate_latest(worker.registry).decode()
    assert "workbench_open_incidents" not in metrics
    assert "# TYPE workbench_action_requests gauge" in metrics and "workbench_policy_valid 1.0" in metrics
    assert "workbench_targets 1.0" in metrics
    assert "process_resident_memory_bytes" in metrics


def test_a_ledger_error_answers_the_batch_503_with_the_reason_and_the_next_payload_goes_through(worker):
    webhook = (SAMPLES / "alertmanager-webhook.json").read_bytes()

    def rename(old, new):
        with worker.engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {new}")

    async def main():
        runner = web.AppRunner(make_app(worker))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/ingest/alertmanager"
        answers = []
        async with aiohttp.ClientSession() as client:
            for broken in (True, False):
                if broken:
                    rename("ingest_payload", "ingest_payload_away")
                async with client.post(url, data=webhook) as response:
                    answers.append((response.status, await response.json()))
                if broken:
                    rename("ingest_payload_away", "ingest_payload")
        await runner.cleanup()
        await worker.alert_batches.close()
        return answers

    assert asyncio.run(main()) == [
        (503, {"error": "the ledger could not commit this payload, retry later: no such table: ingest_payload"}),
        (200, {"status": "accepted", "new": 1})]
    metrics = generate_latest(worker.registry).decode()
    assert 'workbench_ingest_payloads_total{result="failed"} 1.0' in metrics


@pytest.mark.parametrize("headers, status, reason", [
    ({"Content-Type": "text/plain"}, 415, "Content-Type text/plain is refused: send application/json"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415,
     "Content-Type application/x-www-form-urlencoded is refused: send application/json"),
    ({"Content-Type": "application/json", "Origin": "http://evil.example"}, 403,
     "a request from a web page (Origin 'http://evil.example') is refused: the webhook is for Alertmanager"),
    ({"Content-Type": "application/json"}, 200, None),
])
def test_what_a_web_page_can_post_is_refused_and_alertmanager_is_not(worker, headers, status, reason):
    webhook = (SAMPLES / "alertmanager-webhook.json").read_bytes()

    async def main():
        runner = web.AppRunner(make_app(worker))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/ingest/alertmanager"
        async with aiohttp.ClientSession() as client, client.post(url, data=webhook, headers=headers) as response:
            answer = (response.status, await response.json())
        await runner.cleanup()
        await worker.alert_batches.close()
        return answer

    answer_status, body = asyncio.run(main())
    assert answer_status == status
    assert body.get("error") == reason
    assert len(list_incidents(worker.engine)) == (1 if status == 200 else 0)


@pytest.mark.parametrize("token, authorization, status, reason", [
    (None, None, 401, "the worker listens beyond loopback: send an API token with the ingest scope (workbench tokens "
                      "add) or the token of WORKBENCH_INGEST_TOKEN"),
    ("t0ken-for-alertmanager", None, 401, "missing or wrong bearer token"),
    ("t0ken-for-alertmanager", "Bearer t0ken-for-alertmanager", 200, None),
])
def test_beyond_loopback_the_webhook_takes_nothing_without_the_token(worker, monkeypatch, token, authorization,
                                                                     status, reason):
    """The worker started with its token, and the policy reloaded since naming a variable that is not set."""
    if token:
        monkeypatch.setenv("WORKBENCH_INGEST_TOKEN", token)
    else:
        monkeypatch.delenv("WORKBENCH_INGEST_TOKEN", raising=False)
    webhook = (SAMPLES / "alertmanager-webhook.json").read_bytes()
    headers = {"Content-Type": "application/json", **({"Authorization": authorization} if authorization else {})}

    async def main():
        runner = web.AppRunner(make_app(worker, host="0.0.0.0"))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()  # the test itself listens on loopback only
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/ingest/alertmanager"
        async with aiohttp.ClientSession() as client, client.post(url, data=webhook, headers=headers) as response:
            answer = (response.status, await response.json())
        await runner.cleanup()
        await worker.alert_batches.close()
        return answer

    answer_status, body = asyncio.run(main())
    assert (answer_status, body.get("error")) == (status, reason)


def test_the_learning_job_follows_the_policy_and_counts_what_it_suggests(worker, monkeypatch):
    """Scheduled every learning.interval while learning is on, gone once a reload turns it off;
    a pass that fails is counted and the next one goes on."""
    made = iter([[4, 5], RuntimeError("samples store unreadable")])

    def fake_suggest(*args):
        outcome = next(made)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr("app.worker.jobs.suggest", fake_suggest)

    async def main():
        worker.scheduler = AsyncIOScheduler(timezone="UTC")
        worker.scheduler.start(paused=True)
        worker._schedule_learning()
        job = worker.scheduler.get_job("learning")
        await worker._learn()
        await worker._learn()
        rules = worker.holder.directory / "rules.yaml"
        rules.write_text("learning: {mode: off}\n")
        worker.holder.reload_if_changed()
        worker._schedule_learning()
        gone = worker.scheduler.get_job("learning")
        worker.scheduler.shutdown(wait=False)
        return job, gone

    job, gone = asyncio.run(main())
    assert job.trigger.interval.total_seconds() == 86400 and gone is None
    metrics = generate_latest(worker.registry).decode()
    assert "workbench_rule_suggestions_total 2.0" in metrics and "workbench_learning_errors_total 1.0" in metrics


def test_api_tokens_open_the_webhook_metrics_and_the_api_each_to_its_scope(tmp_path, policy_dir, monkeypatch):
    """A worker beyond loopback with access: (metrics behind a token) and no ingest variable: an API
    token with the ingest scope posts alerts, the read scope reads /metrics and /api/incidents, the
    act scope acknowledges and resolves as the token, recorded as such; any other is refused."""
    monkeypatch.delenv("WORKBENCH_INGEST_TOKEN", raising=False)
    holder = PolicyHolder(policy_dir(POLICY, "access:\n  metrics_token: true\n"), now=lambda: None)
    worker = Worker(holder, open_ledger(sqlite_url(tmp_path / "var")), SampleStore(tmp_path / "var" / "samples"))
    tokens = {scope: access.add_token(worker.engine, f"for-{scope}", [scope], created_by="root", now=utcnow())
              for scope in ("ingest", "read", "act")}
    webhook = (SAMPLES / "alertmanager-webhook.json").read_bytes()

    def bearer(scope):
        return {"Authorization": f"Bearer {tokens[scope]}"}

    async def main():
        runner = web.AppRunner(make_app(worker, host="0.0.0.0"))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        seen = []
        async with aiohttp.ClientSession() as client:
            async def call(method, path, headers, **kwargs):
                async with client.request(method, base + path, headers=headers, **kwargs) as response:
                    seen.append((path, response.status))
                    return await response.text()

            json_type = {"Content-Type": "application/json"}
            await call("POST", "/ingest/alertmanager", {**json_type, **bearer("read")}, data=webhook)
            await call("POST", "/ingest/alertmanager", {**json_type, **bearer("ingest")}, data=webhook)
            await call("GET", "/metrics", {})
            metrics = await call("GET", "/metrics", bearer("read"))
            await call("GET", "/api/incidents", bearer("ingest"))
            listed = json.loads(await call("GET", "/api/incidents", bearer("read")))
            incident = listed[0]["id"]
            await call("POST", f"/api/incidents/{incident}/acknowledge", bearer("read"))
            await call("POST", f"/api/incidents/{incident}/acknowledge", bearer("act"))
            await call("POST", f"/api/incidents/{incident}/resolve", {**json_type, **bearer("act")},
                       data=json.dumps({"reason": "fixed by the deploy script"}))
            await call("POST", f"/api/incidents/{incident}/explode", bearer("act"))
        await runner.cleanup()
        await worker.alert_batches.close()
        return seen, metrics, incident

    seen, metrics, incident = asyncio.run(main())
    assert [status for _, status in seen] == [401, 200, 401, 200, 401, 200, 401, 200, 200, 404]
    assert "workbench_" in metrics
    detail = incident_detail(worker.engine, incident)
    assert (detail.state, detail.acknowledged_by) == ("resolved", "token for-act")
    assert [t.actor for t in detail.timeline if t.to_state == "resolved"] == ["token for-act"]
