import re
import shutil
from pathlib import Path

import pytest

from policies.conditions import Condition
from policies.errors import PolicyError
from policies.holder import PolicyHolder
from policies.loader import DEFAULT_DIR, FILES, load_policy
from policies.schema import parse_duration

GOOD = """
targets:
  - name: web
    kind: http
    service: shop
    url: http://127.0.0.1:9/
    interval: 30s
    conditions: ["[STATUS] == 200", "[RESPONSE_TIME] < 500"]
"""


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy(directory)
    return [str(p) for p in caught.value.problems]


def test_default_policy_is_valid():
    policy = load_policy(DEFAULT_DIR)
    assert {t.kind for t in policy.targets} == {"http", "host"}


def test_good_policy_loads_with_defaults(policy_dir):
    policy = load_policy(policy_dir(GOOD))
    target = policy.target("web")
    assert target.failure_threshold == 3 and target.success_threshold == 2
    assert target.probe_timeout.total_seconds() == 10
    assert policy.settings.worker_port == 8502


def test_every_problem_is_reported_with_file_line_and_path(policy_dir):
    directory = policy_dir("""
targets:
  - name: web
    kind: http
    service: shop
    url: ftp://nowhere
    colour: red
    conditions: ["[STATUS] === 200"]
""", settings="worker_port: 99999\n")
    found = problems_of(directory)
    targets = str(directory / "targets.yaml")
    assert f"{targets}: line 6, targets[0].url: String should match pattern '^https?://'" in found
    assert f"{targets}: line 7, targets[0].colour: unknown key" in found
    assert f"{targets}: line 8, targets[0].conditions: [0] [STATUS] == needs a number, got '= 200'" in found
    assert any(p.startswith(f"{directory / 'settings.yaml'}: line 1, worker_port:") for p in found)


def test_yaml_syntax_error_names_line_and_column(policy_dir):
    found = problems_of(policy_dir("targets:\n  - name: [web\n"))
    assert len(found) == 1 and "line 3, column 1: not valid YAML" in found[0]


@pytest.mark.parametrize("name", [name for name in FILES if (DEFAULT_DIR / name).exists()])
def test_a_key_repeated_in_any_policy_file_is_refused(tmp_path, name):
    """The default policy with one line of a file said twice: the data YAML would load is the
    same, the repetition alone is refused, naming the line of the first."""
    directory = shutil.copytree(DEFAULT_DIR, tmp_path / "policy", ignore=shutil.ignore_patterns("*.py", "__*"))
    path = directory / name
    lines = path.read_text().splitlines(keepends=True)

    nested = next(i for i, line in enumerate(lines) if re.match(r" +\w+: *[^\s#]", line))  # `  key: value`
    key = lines[nested].split(":")[0].strip()
    path.write_text("".join(lines[:nested + 1] + lines[nested:]))
    [found] = problems_of(directory)
    assert re.fullmatch(rf"{re.escape(str(path))}: line {nested + 2}, \S+\.{key}: "
                        rf"duplicate key '{key}' \(first at line {nested + 1}\)", found), found

    top = next(i for i, line in enumerate(lines) if re.match(r"\w+:", line))  # and its block, again at the end
    end = next((i for i in range(top + 1, len(lines)) if re.match(r"\w+:", lines[i])), len(lines))
    top_key = lines[top].split(":")[0]
    path.write_text("".join(lines + lines[top:end]))
    assert problems_of(directory) == [
        f"{path}: line {len(lines) + 1}, {top_key}: duplicate key '{top_key}' (first at line {top + 1})"]


def test_repeated_keys_are_named_by_line_and_path(policy_dir):
    directory = policy_dir(GOOD + """\
    headers: &same {Accept: text/plain, Accept: application/json}
  - name: api
    kind: http
    service: shop
    url: http://127.0.0.1:9/api
    headers: *same
    interval: 30s
    interval: 60s
""", settings="demo:\n  port: 8503\n  enabled: true\n  port: 8504\nui_port: 8501\n")
    targets, settings = directory / "targets.yaml", directory / "settings.yaml"
    assert problems_of(directory) == [
        # said once through an alias, reported once, where it is written
        f"{targets}: line 9, targets[0].headers.Accept: duplicate key 'Accept' (first at line 9)",
        f"{targets}: line 16, targets[1].interval: duplicate key 'interval' (first at line 15)",
        f"{settings}: line 4, demo.port: duplicate key 'port' (first at line 2)",
    ]


def test_unknown_file_duplicate_names_and_unknown_kind(policy_dir):
    directory = policy_dir(GOOD.replace("targets:\n", "targets:\n  - {name: web, kind: ping, service: x, conditions: ['[STATUS] == 1']}\n"))
    (directory / "alerts.yaml").write_text("{}\n")
    found = "\n".join(problems_of(directory))
    assert "alerts.yaml: unknown policy file" in found
    assert "targets[0]: Input tag 'ping' found using 'kind' does not match any of the expected tags" in found


def test_duplicate_target_names_are_refused(policy_dir):
    twice = GOOD + GOOD.split("targets:\n", 1)[1]
    assert any("target name 'web' is used twice" in p for p in problems_of(policy_dir(twice)))


def test_placeholder_must_fit_the_probe_kind(policy_dir):
    found = problems_of(policy_dir(GOOD.replace("[RESPONSE_TIME] < 500", "[CPU] < 90")))
    assert any("targets[0].conditions: [1] unknown placeholder [CPU] for a http probe" in p for p in found)


def test_timeout_longer_than_interval_is_refused(policy_dir):
    found = problems_of(policy_dir(GOOD.replace("interval: 30s", "interval: 5s\n    timeout: 10s")))
    assert any("timeout (0:00:10) must not exceed interval (0:00:05)" in p for p in found)


@pytest.mark.parametrize("text,seconds", [("250ms", 0.25), ("30s", 30), ("5m", 300), ("1.5h", 5400), (12, 12)])
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text,reason", [
    ("soon", "not a duration: 'soon'"), ("-5s", "not a duration: '-5s'"), ("0s", "duration must be positive"),
    ("5 minutes", "not a duration"), (float("nan"), "not a duration: nan"),
    ("99999999999d", "duration '99999999999d' is longer than 365d, the most this key allows"),
    (10**400, "is longer than 365d"), (float("inf"), "duration inf is longer than 365d"),
    ("9" * 400 + "s", "is longer than 365d"), ("0.5ms", "duration '0.5ms' is shorter than 1ms, the least allowed"),
])
def test_bad_durations(text, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_duration(text)


def test_durations_have_bounds_per_key_with_a_readable_reason(policy_dir):
    directory = policy_dir(GOOD.replace("interval: 30s", "interval: 99999999999d\n    timeout: 10m"),
                           settings="samples_retention: 3650d\nrollups_1h_retention: 3651d\n"
                                    "policy_reload_interval: 366d\n")
    targets, settings = directory / "targets.yaml", directory / "settings.yaml"
    assert problems_of(directory) == [
        f"{targets}: line 7, targets[0].interval: duration '99999999999d' is longer than 365d, the most this key allows",
        f"{targets}: line 8, targets[0].timeout: duration '10m' is longer than 5m, the most this key allows",
        f"{settings}: line 3, policy_reload_interval: duration '366d' is longer than 365d, the most this key allows",
        f"{settings}: line 2, rollups_1h_retention: duration '3651d' is longer than 3650d, the most this key allows",
    ]


@pytest.mark.parametrize("source,values,ok,text", [
    ("[STATUS] == 200", {"STATUS": 503}, False, "[STATUS] == 200 -> got 503"),
    ("[STATUS] == 200", {"STATUS": 200}, True, "[STATUS] == 200 -> got 200"),
    ("[RESPONSE_TIME] < 800", {"RESPONSE_TIME": 1234.56}, False, "[RESPONSE_TIME] < 800 -> got 1234.6"),
    ("[BODY] contains ok", {"BODY": '{"status": "ok"}'}, True, '[BODY] contains ok -> got {"status": "ok"}'),
    ("[CONNECTED] == true", {"CONNECTED": True}, True, "[CONNECTED] == true -> got true"),
    ("[STATUS] == 200", {}, False, "[STATUS] == 200 -> got nothing (not measured)"),
])
def test_conditions_keep_the_actual_value(source, values, ok, text):
    result = Condition.parse(source, "http").evaluate(values)
    assert (result.ok, result.text) == (ok, text)


def test_holder_keeps_last_good_policy_and_reports_the_error(policy_dir):
    directory = policy_dir(GOOD)
    holder = PolicyHolder(directory, now=lambda: None)
    assert holder.reload_if_changed() is False
    (directory / "targets.yaml").write_text(GOOD.replace("url: http://127.0.0.1:9/", "url: nope"))
    assert holder.reload_if_changed() is False
    assert holder.policy.target("web").url == "http://127.0.0.1:9/"
    assert "targets[0].url" in str(holder.error)
    (directory / "targets.yaml").write_text(GOOD.replace("interval: 30s", "interval: 60s"))
    assert holder.reload_if_changed() is True
    assert holder.error is None and holder.policy.target("web").interval.total_seconds() == 60
    (directory / "targets.yaml").write_text(GOOD.replace("interval: 30s", "interval: 90s\n    interval: 30s"))
    assert holder.reload_if_changed() is False
    assert holder.policy.target("web").interval.total_seconds() == 60
    assert str(holder.error) == (f"{directory / 'targets.yaml'}: line 8, targets[0].interval: "
                                 "duplicate key 'interval' (first at line 7)")


def test_every_problem_is_one_line_whatever_the_input(policy_dir):
    long_url = "http://" + "x" * 5000
    directory = policy_dir(f"""
targets:
  - name: web
    kind: "ht\\ntp"
  - name: db
    kind: tcp
    service: s
    host: h
    port: 9
    "co\\nlo\\u2028ur": red
    conditions: ["[BODY] contains \\u001b[31mred"]
  - {{name: "a\\rb", kind: http, service: s, url: "{long_url}", conditions: ["{long_url}"]}}
""")
    found = problems_of(directory)
    assert any("targets[0]: Input tag 'ht\\ntp' found using 'kind'" in p for p in found), found
    assert any("targets[1].co\\nlo\\u2028ur: unknown key" in p for p in found), found
    assert all("\n" not in p and "\r" not in p and "\u2028" not in p and "\x1b" not in p for p in found)
    assert all(len(p) < 1000 for p in found), [len(p) for p in found]


def test_learned_rules_run_beside_the_hand_written_ones_and_never_replace_one(policy_dir):
    directory = policy_dir("targets: []\nallow_empty: true\n")
    (directory / "rules.yaml").write_text("rules:\n  - {name: shop-latency, kind: latency, service: shop, above: 1}\n")
    (directory / "learned-rules.yaml").write_text(
        "rules:\n  - {name: shop-latency-learned, kind: latency, service: shop, above: 0.4, for: 2m}\n")
    policy = load_policy(directory)
    assert [r.name for r in policy.rules.resolved] == ["shop-latency", "shop-latency-learned"]
    assert policy.learned == {"shop-latency-learned"}

    (directory / "learned-rules.yaml").write_text(
        "rules:\n  - {name: other, kind: absence, series: up, parent: nowhere}\n"
        "  - {name: shop-latency, kind: latency, service: shop, above: 0.1}\n")
    assert problems_of(directory) == [
        f"{directory / 'learned-rules.yaml'}: line 3, rules[1].name: 'shop-latency' is the name of a rule in "
        "rules.yaml: a learned rule never replaces a hand-written one",
        f"{directory / 'learned-rules.yaml'}: line 2, rules[0].parent: names parent 'nowhere', which is not a "
        "target in targets.yaml"]
