"""The alertmanager probe against a local server replaying answers captured from a real
Alertmanager 0.25, and against hostile ones."""

import asyncio
from datetime import UTC, datetime

from policies.schema import AlertmanagerTarget
from probes.context import ProbeClient, ProbeContext
from probes.kinds import alertmanager
from tests.support import free_port


def target(url: str, **extra) -> AlertmanagerTarget:
    fields = {"name": "am", "kind": "alertmanager", "service": "monitoring", "url": url, "interval": "10s",
              "timeout": "1s", **extra}
    return AlertmanagerTarget.model_validate(fields)


def probe(t: AlertmanagerTarget, **ctx):
    async def go():
        async with ProbeClient(10) as client:
            return await alertmanager.run(t, ProbeContext(client, **ctx))
    return asyncio.run(go())


def test_pulled_alerts_become_firing_alert_events(canned):
    canned.replay("alertmanager-v2-alerts.json")
    result = probe(target(canned.url + "/", conditions=["[ALERT_COUNT] == 2", "[CONNECTED] == true"]))
    assert result.observation.ok, result.observation.error
    assert result.observation.values["ALERT_COUNT"] == 2
    assert [(a.fingerprint, a.status, a.source, a.labels["alertname"]) for a in result.alerts] == [
        ("565779db822202a0", "firing", "alertmanager-pull", "PeerNodeExporterUp"),
        ("9e0d2a5f628de785", "firing", "alertmanager-pull", "BlackboxProbeFailed")]
    assert result.alerts[1].starts_at == datetime(2026, 11, 22, 13, 32, 3, 251000, tzinfo=UTC)


def test_request_asks_for_active_alerts_with_the_target_filter(canned):
    probe(target(canned.url, filter=['severity="critical"', "alertname=~Blackbox.*"]))
    probe(target(canned.url, include_silenced=True, include_inhibited=True))
    (path, plain, _), (_, wider, _) = canned.requests
    assert path == "/api/v2/alerts"
    assert plain == [("active", "true"), ("silenced", "false"), ("inhibited", "false"),
                     ("filter", 'severity="critical"'), ("filter", "alertname=~Blackbox.*")]
    assert wider == [("active", "true"), ("silenced", "true"), ("inhibited", "true")]


def test_alert_count_condition_is_evidence(canned):
    canned.replay("alertmanager-v2-alerts.json")
    result = probe(target(canned.url, conditions=["[ALERT_COUNT] == 0"]))
    assert result.observation.error == "[ALERT_COUNT] == 0 -> got 2"
    assert len(result.alerts) == 2  # a failing condition still folds the alerts in


def test_bad_answers_are_failed_observations_with_the_reason(canned):
    cases = [
        ("bad matcher format: severity=", 400, "alertmanager: HTTP 400: bad matcher format: severity="),
        ({"code": 500, "message": "boom"}, 500, "alertmanager: HTTP 500: boom"),
        (b"<html>Bad Gateway</html>", 502, "alertmanager: HTTP 502, not a JSON answer: '<html>Bad Gateway</html>'"),
        ({"alerts": []}, 200, "alertmanager: expected a JSON array of alerts, got dict"),
        ([{"labels": {}, "startsAt": "2026-11-22T13:32:03Z", "status": {"state": "active"}}], 200,
         "alertmanager: alerts[0].fingerprint: Field required"),
    ]
    for body, status, reason in cases:
        canned.reply(body, status)
        result = probe(target(canned.url))
        assert (result.observation.ok, result.observation.error, result.alerts) == (False, reason, [])
        assert "ALERT_COUNT" not in result.observation.values  # only a complete pull counts


def test_answer_over_the_body_limit_is_refused(canned):
    canned.replay("alertmanager-v2-alerts.json")
    result = probe(target(canned.url), max_body_bytes=512)
    assert result.observation.error == "alertmanager: answer larger than 512 bytes (the max_body_bytes setting)"


def test_unreachable_and_slow_servers_are_failed_observations(canned):
    assert probe(target(f"http://127.0.0.1:{free_port()}")).observation.error == "cannot connect: connection refused"
    canned.delay = 2
    assert probe(target(canned.url, timeout="200ms")).observation.error == "timed out after 0.2s"
