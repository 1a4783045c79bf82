"""actions.yaml: the catalog is validated like every policy file (file, line, path, reason);
actions are disabled unless they say so; executables and webhook hosts are fixed."""

from __future__ import annotations

import pytest

from policies.errors import PolicyError
from policies.loader import DEFAULT_DIR, load_policy
from tests.remediation.support import write_policy


def problems(tmp_path, **files) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy(write_policy(tmp_path / "policy", **files))
    return [str(p) for p in caught.value.problems]


def test_the_default_catalog_turns_the_demo_fault_off_in_the_demo_posture_only():
    policy = load_policy(DEFAULT_DIR)
    action = policy.actions.action("demo-fault-off")
    assert (action.enabled, action.postures, action.risk, action.needs_approval) == (True, ["demo"], "containment", True)
    assert action.runner.url == "http://127.0.0.1:8503/fault?mode=none"
    assert policy.settings.posture == "demo"
    assert [r.actions for r in policy.actions.recommend] == [["demo-fault-off"]]


def test_an_action_is_disabled_unless_it_says_so(tmp_path):
    policy = load_policy(write_policy(tmp_path / "policy", actions="""
actions:
  - {id: note, runner: {kind: notify, message: hi}, risk: read_only, postures: [demo]}
"""))
    action = policy.actions.action("note")
    assert (action.enabled, action.requires_approval, action.max_attempts) == (False, True, 1)


def test_catalog_problems_name_the_file_line_and_path(tmp_path):
    found = problems(tmp_path, actions="""
actions:
  - id: restart
    runner: {kind: command, argv: ["systemctl", restart, "{{unit}}"]}
    parameters: {unit: {}}
    risk: disruptive
    postures: [demo]
  - id: hook
    runner: {kind: webhook, url: "http://{{host}}/x"}
    parameters: {host: {pattern: "[a-z]+"}}
    risk: containment
    postures: [lab]
  - id: notes
    runner: {kind: notify, message: "{{missing}}"}
    risk: read_only
    colour: red
    postures: [demo]
""", rules="rules:\n  - {name: r, kind: errors, above: 0.5, recommend: [reboot]}\n")
    actions, rules = str(tmp_path / "policy" / "actions.yaml"), str(tmp_path / "policy" / "rules.yaml")
    assert f"{actions}: line 4, actions[0].runner.argv: argv[0] must be a fixed absolute path to the program, " \
           "got 'systemctl'" in found
    assert f"{actions}: line 9, actions[1].runner.url: the scheme and host of a webhook are fixed: parameters only " \
           "in its path and query" in found
    assert f"{actions}: line 12, actions[1].postures[0]: Input should be 'demo', 'staging' or 'production'" in found
    assert f"{actions}: line 16, actions[2].colour: unknown key" in found
    assert not [p for p in found if p.startswith(rules)], "a catalog that does not load is not looked into"


def test_templates_name_declared_parameters_and_commands_constrain_strings(tmp_path):
    found = "\n".join(problems(tmp_path, actions="""
actions:
  - id: notes
    runner: {kind: notify, message: "{{missing}}"}
    risk: read_only
    postures: [demo]
  - id: restart
    runner: {kind: command, argv: [/bin/systemctl, restart, "{{unit}}"]}
    parameters: {unit: {}}
    risk: disruptive
    postures: [demo]
"""))
    assert "{{missing}} is not a parameter of 'notes'" in found
    assert "string parameters of a command need choices or a pattern: unit" in found


def test_recommendations_name_actions_of_the_catalog(tmp_path):
    assert problems(tmp_path, actions="""
actions:
  - {id: note, runner: {kind: notify, message: hi}, risk: read_only, postures: [demo]}
recommend:
  - {category: availability, actions: [note, nothing]}
""", rules="rules:\n  - {name: r, kind: errors, above: 0.5, recommend: [note, reboot]}\n") == [
        f"{tmp_path / 'policy' / 'rules.yaml'}: line 2, rules[0].recommend[1]: names action 'reboot', which is not "
        "in actions.yaml",
        f"{tmp_path / 'policy' / 'actions.yaml'}: line 5, recommend[0].actions[1]: names action 'nothing', which is "
        "not under actions"]
