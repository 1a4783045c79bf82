import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import settings
from app.cli import build_parser, main
from ledger.db import known_secrets, read_session

ROOT = Path(__file__).resolve().parents[2]

TARGET = """
targets:
  - name: shop-web
    kind: http
    service: shop
    url: {url}
    timeout: 1s
    failure_threshold: 2
    conditions: ["[STATUS] == 200"]
"""


@pytest.fixture
def cli(tmp_path, capsys, monkeypatch):
    for name in ("WORKBENCH_POLICY_DIR", "WORKBENCH_DATA_DIR", "WORKBENCH_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str, policy=None):
        prefix = ["--data", str(tmp_path / "var")] + (["--policy", str(policy)] if policy else [])
        code = main(prefix + list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def shop_policy(policy_dir, demo_target):
    return policy_dir(TARGET.format(url=demo_target.url))


def test_probe_run_once_records_and_detects_across_runs(cli, shop_policy, demo_target):
    code, out, _ = cli("probe", "run", "--once", policy=shop_policy)
    assert code == 0 and out.startswith("shop-web") and " ok " in out
    demo_target.fault("errors")
    assert cli("probe", "run", "--once", policy=shop_policy)[0] == 0
    code, out, _ = cli("probe", "run", "--once", "--target", "shop-web", policy=shop_policy)
    assert code == 0 and "firing: [STATUS] == 200 -> got 503" in out
    code, out, _ = cli("incidents", "list", "--format", "json")
    incidents = json.loads(out)
    assert len(incidents) == 1
    assert {"id", "title", "state", "severity", "service", "correlation_key", "opened_at", "updated_at",
            "resolved_at", "finding_count"} <= set(incidents[0])
    assert incidents[0]["state"] == "observed" and incidents[0]["correlation_key"] == "shop/shop-web"


def test_work_an_incident_from_the_command_line(cli, shop_policy, demo_target):
    demo_target.fault("errors")
    for _ in range(2):
        cli("probe", "run", "--once", policy=shop_policy)
    assert cli("incidents", "triage", "1") == (0, "incident 1 is now triaged\n", "")
    code, _, err = cli("incidents", "triage", "1")
    assert code == 1 and err == "workbench: cannot go from triaged to triaged " \
        "(from triaged: contained, escalated, recovering, resolved, suppressed)\n"
    assert cli("incidents", "resolve", "1", "--reason", "fixed the upstream")[0] == 0
    code, out, _ = cli("incidents", "show", "1", "--format", "json")
    detail = json.loads(out)
    assert detail["state"] == "resolved" and detail["resolved_at"]
    assert [t["to_state"] for t in detail["timeline"] if t["to_state"]] == ["observed", "triaged", "resolved"]
    assert detail["timeline"][-1]["message"] == "fixed the upstream"
    code, out, _ = cli("incidents", "show", "1")
    assert "[STATUS] == 200 -> got 503" in out and "fixed the upstream" in out
    findings = out[out.index("Findings:"):out.index("Timeline:")].splitlines()
    assert findings[1].split() == ["ID", "SEV", "RULE", "TARGET", "FIRST", "SEEN", "(UTC)", "SEEN", "NOW", "SUMMARY"]
    assert findings[2].split()[:4] == ["1", "warning", "probe:http", "shop-web"]
    assert "recovered" in findings[2] and findings[2].endswith("shop-web failing: [STATUS] == 200 -> got 503")
    assert cli("incidents", "show", "42") == (1, "", "workbench: no incident with id 42\n")


def test_invalid_policy_exits_non_zero_with_one_line(cli, policy_dir):
    bad = policy_dir("targets:\n  - name: x\n    kind: http\n")
    code, out, err = cli("probe", "run", "--once", policy=bad)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("workbench: policy invalid (") and "targets.yaml: line 2, targets[0].service" in err


def test_policy_check_lists_every_problem(cli, policy_dir, shop_policy):
    assert cli("policy", "check", str(shop_policy))[0] == 0
    bad = policy_dir("targets:\n  - name: x\n    kind: http\n    service: s\n    url: nope\n    interval: soon\n")
    code, _, err = cli("policy", "check", str(bad))
    lines = err.strip().splitlines()
    assert code == 2 and lines[-1].startswith("policy invalid: 2 problem(s)")
    assert any("targets[0].url" in line for line in lines) and any("targets[0].interval" in line for line in lines)


def test_policy_check_refuses_a_repeated_key(cli, policy_dir):
    bad = policy_dir("targets:\n  - name: x\n    kind: host\n    service: s\n    interval: 10s\n"
                     "    conditions: ['[CPU] < 90']\n    interval: 20s\n", settings="ui_port: 8501\nui_port: 8601\n")
    code, out, err = cli("policy", "check", str(bad))
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"{bad / 'targets.yaml'}: line 7, targets[0].interval: duplicate key 'interval' (first at line 5)",
        f"{bad / 'settings.yaml'}: line 2, ui_port: duplicate key 'ui_port' (first at line 1)",
        f"policy invalid: 2 problem(s) in {bad}",
    ]
def test_policy_check_refuses_a_policy_without_targets_unless_confirmed(cli, policy_dir):
    empty = policy_dir("targets: []\n")
    (empty / "targets.yaml").unlink()
    code, out, err = cli("policy", "check", str(empty))
    assert (code, out) == (2, "") and err.splitlines() == [
        f"{empty / 'targets.yaml'}: is missing, so nothing would be probed: refused as suspicious; if that is meant, "
        "leave targets.yaml with allow_empty: true at the top",
        f"policy invalid: 1 problem(s) in {empty}"]
    assert cli("policy", "check", "--allow-empty", str(empty)) == (0, f"policy ok: {empty}: 0 targets, 0 rules\n", "")
    (empty / "targets.yaml").write_text("allow_empty: true\n")
    assert cli("policy", "check", str(empty))[0] == 0


def test_policy_check_names_file_line_and_reason_of_hostile_edits_on_one_line_each(cli, policy_dir, shop_policy):
    targets = shop_policy / "targets.yaml"
    targets.write_text(targets.read_text().replace("timeout: 1s", "interval: 99999999999d\n    \"a\\nb\": 1"))
    (shop_policy / "rules.yaml").write_text("rules:\n  - {name: r, kind: log_signature, target: shop-web, "
                                            "signature: oom, summary: '{window:.1f}'}\n")
    (shop_policy / "settings.yaml").symlink_to(shop_policy / "settings.yaml")
    code, _, err = cli("policy", "check", str(shop_policy))
    assert code == 2 and err.splitlines() == [
        f"{targets}: line 7, targets[0].interval: duration '99999999999d' is longer than 365d, the most this key "
        "allows",
        f"{targets}: line 8, targets[0].a\\nb: unknown key",
        f"{shop_policy / 'rules.yaml'}: line 2, rules[0].summary: {{window:.1f}} cannot be rendered: Unknown format "
        "code 'f' for object of type 'str' (window is text such as 5m)",
        f"{shop_policy / 'settings.yaml'}: cannot be read: it is a symbolic link that loops (too many levels of "
        "symbolic links)",
        f"policy invalid: 4 problem(s) in {shop_policy}"]


def test_unknown_target_is_a_clear_error(cli, shop_policy):
    assert cli("probe", "run", "--once", "--target", "nope", policy=shop_policy)[0:2] == (1, "")


def _commands(parser, prefix=()):
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for name, sub in action.choices.items():
            yield (*prefix, name)
            yield from _commands(sub, (*prefix, name))


def test_every_command_has_help(capsys):
    commands = list(_commands(build_parser()))
    assert ("probe", "run") in commands and ("incidents", "show") in commands and ("demo", "fault") in commands
    for command in [(), *commands]:
        with pytest.raises(SystemExit) as done:
            main([*command, "--help"])
        assert done.value.code == 0
        assert capsys.readouterr().out.startswith("usage: workbench")


def test_probe_run_once_also_evaluates_the_rules(cli, shop_policy, demo_target):
    (shop_policy / "rules.yaml").write_text(
        "rules:\n  - {name: shop-errors, kind: errors, service: shop, above: 0.4, window: 1h}\n")
    demo_target.fault("errors")
    code, out, _ = cli("probe", "run", "--once", policy=shop_policy)
    assert code == 0 and out.splitlines()[-1] == "rules: 1 evaluated over 1 samples, 1 firing"
    code, out, _ = cli("incidents", "list", "--format", "json")
    assert [i["correlation_key"] for i in json.loads(out)] == ["shop/shop-errors"]


def test_the_cli_and_the_pages_open_the_ledger_knowing_the_policys_secrets(tmp_path, policy_dir, monkeypatch):
    monkeypatch.setenv("SHOP_TOKEN", "shop-t0ken-value")
    directory = policy_dir(TARGET.format(url="http://127.0.0.1:9/?k=${SHOP_TOKEN}"))
    paths = settings.resolve(str(directory), str(tmp_path / "var"), env={})
    engine = paths.ledger()
    with read_session(engine) as session:
        assert known_secrets(session) == {"shop-t0ken-value"}
    engine.dispose()
    (directory / "targets.yaml").write_text("targets: [")
    engine = paths.ledger()
    with read_session(engine) as session:
        assert known_secrets(session) == frozenset(), "a policy that does not load: secret shapes only"
    engine.dispose()


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path):
    """`workbench incidents list | head -1`: the pipe is closed before the command writes."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, "WORKBENCH_DATA_DIR": str(tmp_path / "var")}
    done = subprocess.run([sys.executable, "-m", "app.cli", "incidents", "list"], stdout=write_end,
                          stderr=subprocess.PIPE, env=env, cwd=ROOT, text=True, check=False)
    os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")
