"""The prometheus probe against a local server replaying answers captured from a real
Prometheus 2.42, and against hostile ones."""

import asyncio
import math
from datetime import UTC, datetime

from policies.schema import PrometheusTarget
from probes.context import ProbeClient, ProbeContext
from probes.kinds import prometheus
from tests.support import free_port

NOW = datetime(2026, 11, 22, 13, 32, 5, tzinfo=UTC)


def target(url: str, **extra) -> PrometheusTarget:
    fields = {"name": "prom-up", "kind": "prometheus", "service": "monitoring", "url": url, "query": "up",
              "interval": "10s", "timeout": "1s", **extra}
    return PrometheusTarget.model_validate(fields)


def probe(t: PrometheusTarget, **ctx):
    async def go():
        async with ProbeClient(10) as client:
            return await prometheus.run(t, ProbeContext(client, now=lambda: NOW, **ctx))
    return asyncio.run(go())


def test_instant_query_gives_one_sample_per_series_with_its_labels(canned):
    canned.replay("prometheus-query-up.json")
    result = probe(target(canned.url + "/", conditions=["[SERIES_COUNT] == 7", "[VALUE] == 1"]))
    assert result.observation.ok, result.observation.error
    assert result.observation.values["SERIES_COUNT"] == 7
    path, params, _ = canned.requests[0]
    assert path == "/api/v1/query" and ("query", "up") in params and ("timeout", "1") in params
    node = next(s for s in result.samples if s.labels.get("job") == "node")
    assert node.name == "up" and node.value == 1.0
    assert node.labels == {"instance": "127.0.0.1:19100", "job": "node",
                           "service": "monitoring", "target": "prom-up", "kind": "prometheus"}
    assert node.at == datetime.fromtimestamp(1795354325.89, UTC)


def test_range_query_gives_one_sample_per_point(canned):
    canned.replay("prometheus-query_range-probe_success.json")
    t = target(canned.url, query="probe_success", mode="range", range="5m", step="15s", metric="blackbox_up")
    result = probe(t)
    path, params, _ = canned.requests[0]
    assert path == "/api/v1/query_range"
    assert dict(params) == {"query": "probe_success", "timeout": "1", "start": f"{NOW.timestamp() - 300:.3f}",
                            "end": f"{NOW.timestamp():.3f}", "step": "15"}
    assert [(s.name, s.labels["instance"], s.value) for s in result.samples] == [
        ("blackbox_up", "http://127.0.0.1:18080/", 1.0), ("blackbox_up", "http://127.0.0.1:18080/", 1.0),
        ("blackbox_up", "http://127.0.0.1:18081/", 0.0), ("blackbox_up", "http://127.0.0.1:18081/", 0.0)]


def test_value_must_hold_for_every_series_and_the_failing_one_is_named(canned):
    canned.replay("prometheus-query_range-probe_success.json")
    result = probe(target(canned.url, mode="range", conditions=["[VALUE] == 1"]))
    assert not result.observation.ok
    assert result.observation.error == ('[VALUE] == 1 -> got 0 probe_success{instance="http://127.0.0.1:18081/", '
                                        'job="blackbox-http"}')


def test_when_every_series_holds_the_evidence_shows_the_worst(canned):
    canned.replay("prometheus-query-sum-by-job.json")
    result = probe(target(canned.url, query="sum by (job) (up)", conditions=["[VALUE] < 5", "[VALUE] >= 1"]))
    assert result.observation.ok
    assert [c["text"] for c in result.observation.checks] == [
        '[VALUE] < 5 -> got 2 {job="blackbox-http"}', '[VALUE] >= 1 -> got 1 {job="loki"}']
    # no __name__ and no metric: the target's name, made a series name a selector can use
    assert {s.name for s in result.samples} == {"prom_up"}


def test_series_labels_named_like_the_workbench_ones_are_kept_as_exported(canned):
    canned.reply({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "x", "service": "db", "target": "t1"}, "value": [1795354325, "0.93"]}]}})
    [sample] = probe(target(canned.url, conditions=["[VALUE] < 0.5"])).samples
    assert sample.labels == {"exported_service": "db", "exported_target": "t1",
                             "service": "monitoring", "target": "prom-up", "kind": "prometheus"}


def test_nan_and_infinity_arrive_as_strings_and_fail_value_conditions(canned):
    canned.reply({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"instance": "a"}, "value": [1795354325, "NaN"]},
        {"metric": {"instance": "b"}, "value": [1795354325, "+Inf"]},
        {"metric": {"instance": "c"}, "value": [1795354325, "-Inf"]}]}})
    result = probe(target(canned.url, conditions=["[VALUE] < 0.5"]))
    assert math.isnan(result.samples[0].value) and [s.value for s in result.samples[1:]] == [math.inf, -math.inf]
    assert result.observation.error == '[VALUE] < 0.5 -> got nan {instance="a"}'


def test_scalar_is_one_series_and_string_is_a_clear_failure(canned):
    canned.reply({"status": "success", "data": {"resultType": "scalar", "result": [1795354325.5, "0.25"]}})
    result = probe(target(canned.url, query="scalar(up)", conditions=["[SERIES_COUNT] == 1", "[VALUE] < 0.5"]))
    assert result.observation.ok and [(s.name, s.value) for s in result.samples] == [("prom_up", 0.25)]
    canned.reply({"status": "success", "data": {"resultType": "string", "result": [1795354325.5, "abc"]}})
    assert probe(target(canned.url)).observation.error == (
        "prometheus: the query gives a string ([1795354325.5, 'abc']), not numbers")


def test_no_series_fails_value_but_counts_zero(canned):
    canned.reply({"status": "success", "data": {"resultType": "vector", "result": []}})
    result = probe(target(canned.url, conditions=["[SERIES_COUNT] == 0", "[VALUE] < 1"]))
    assert result.observation.error == "[VALUE] < 1 -> got nothing (none measured)"
    assert result.observation.checks[0]["ok"]


def test_bad_query_gives_prometheus_own_reason(canned):
    canned.replay("prometheus-query-error-400.json", status=400)
    obs = probe(target(canned.url, query="nonexistent_fn(up)")).observation
    assert not obs.ok and obs.status == 400
    assert obs.error == ('prometheus: bad_data: invalid parameter "query": 1:1: parse error: '
                         'unknown function with name "nonexistent_fn"')


def test_answers_that_are_not_query_results(canned):
    cases = [
        (b"<html>Bad Gateway</html>", 502, "prometheus: HTTP 502, not a JSON answer: '<html>Bad Gateway</html>'"),
        ({"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"}, 503,
         "prometheus: timeout: query timed out in expression evaluation"),
        ([1, 2], 200, "prometheus: HTTP 200, not a Prometheus API answer"),
        ({"status": "pending"}, 200, "prometheus: HTTP 200, status 'pending'"),
        ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}}, 200,
         "prometheus: malformed vector result (KeyError: 'value')"),
        ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "x"]}]}},
         200, "prometheus: malformed vector result (ValueError: could not convert string to float: 'x')"),
        ({"status": "success", "data": {"resultType": "histogram", "result": []}}, 200,
         "prometheus: unknown result type 'histogram'"),
    ]
    for body, status, reason in cases:
        canned.reply(body, status)
        assert probe(target(canned.url)).observation.error == reason


def test_answer_over_the_body_limit_is_refused(canned):
    canned.replay("prometheus-query-up.json")
    obs = probe(target(canned.url), max_body_bytes=100).observation
    assert obs.error == "prometheus: answer larger than 100 bytes (the max_body_bytes setting)"


def test_unreachable_and_slow_servers_are_failed_observations(canned):
    assert probe(target(f"http://127.0.0.1:{free_port()}")).observation.error == "cannot connect: connection refused"
    canned.delay = 2
    assert probe(target(canned.url, timeout="200ms")).observation.error == "timed out after 0.2s"


def test_headers_carry_secrets_from_the_environment_and_never_into_evidence(canned):
    canned.reply({"status": "error", "errorType": "bad_data", "error": "token s3cr3t-value rejected"}, 400)
    t = target(canned.url, headers={"Authorization": "Bearer ${PROM_TOKEN}"})
    obs = probe(t, env={"PROM_TOKEN": "s3cr3t-value"}).observation
    assert canned.requests[0][2]["Authorization"] == "Bearer s3cr3t-value"
    assert "s3cr3t" not in obs.error
