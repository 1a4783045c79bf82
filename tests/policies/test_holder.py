"""The holder keeps the last good policy in force through hostile edits, refuses a policy that
would silently stop what the one in force does unless the files confirm it, runs one reload at
a time, and tells which policy is in force and what became of the files on disk."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

import policies.holder
from policies.errors import PolicyError
from policies.holder import PolicyHolder

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TARGETS = """
targets:
  - name: web
    kind: http
    service: shop
    url: http://127.0.0.1:9/
    interval: 30s
"""
RULES = "rules:\n  - {name: shop-down, kind: errors, service: shop, above: 0.5}\n"


@pytest.fixture
def holder(policy_dir):
    directory = policy_dir(TARGETS)
    (directory / "rules.yaml").write_text(RULES)
    return PolicyHolder(directory, now=lambda: NOW)


def rejected(holder: PolicyHolder) -> list[str]:
    assert holder.reload_if_changed() is False
    assert holder.policy.target("web").interval.total_seconds() == 30, "the last good policy stays in force"
    return [str(p) for p in holder.error.problems]


def test_a_deleted_targets_file_is_refused_until_the_file_confirms_it(holder):
    targets = holder.directory / "targets.yaml"
    targets.unlink()
    assert rejected(holder) == [f"{targets}: is missing, but the policy in force has 1 target from it: refused as "
                                "suspicious, the last good policy stays in force; if that is meant, leave "
                                "targets.yaml with allow_empty: true at the top"]
    targets.write_text("targets: []\n")
    assert rejected(holder)[0].startswith(f"{targets}: holds no targets, but the policy in force has 1 target")
    targets.write_text("allow_empty: true\ntargets: []\n")
    assert holder.reload_if_changed() is True
    assert holder.policy.targets == [] and holder.error is None


def test_a_whole_file_lost_against_the_policy_in_force_is_refused(holder):
    rules = holder.directory / "rules.yaml"
    rules.unlink()
    assert rejected(holder) == [f"{rules}: is missing, but the policy in force has 1 rule from it: refused as "
                                "suspicious, the last good policy stays in force; if that is meant, leave rules.yaml "
                                "with allow_empty: true at the top"]
    rules.write_text("allow_empty: true\n")
    assert holder.reload_if_changed() is True and holder.policy.rules.rules == []
    rules.unlink()  # it held nothing in force: nothing is lost
    assert holder.reload_if_changed() is True and holder.error is None


def test_a_symbolic_link_loop_is_refused_with_the_reason_not_taken_as_missing(holder):
    targets = holder.directory / "targets.yaml"
    targets.unlink()
    targets.symlink_to(targets)
    assert rejected(holder) == [f"{targets}: cannot be read: it is a symbolic link that loops (too many levels of "
                                "symbolic links)"]


def test_allow_empty_is_true_or_false(holder):
    (holder.directory / "targets.yaml").write_text("allow_empty: maybe\n" + TARGETS)
    assert rejected(holder) == [f"{holder.directory / 'targets.yaml'}: line 1, allow_empty: must be true or false, "
                                "got 'maybe'"]


def test_a_policy_without_targets_is_refused_at_start_unless_confirmed(policy_dir):
    directory = policy_dir("targets: []\n")
    with pytest.raises(PolicyError, match="targets.yaml: has no targets, so nothing would be probed: refused as "
                                          "suspicious; if that is meant, leave targets.yaml with allow_empty: true"):
        PolicyHolder(directory, now=lambda: NOW)
    (directory / "targets.yaml").write_text("allow_empty: true  # a worker for the webhook alone\ntargets: []\n")
    assert PolicyHolder(directory, now=lambda: NOW).policy.targets == []


def test_health_tells_the_policy_in_force_and_the_files_on_disk(holder):
    ok = holder.health()
    digest = ok["policy"]["digest"]
    assert (ok["status"], ok["reason"], ok["policy"]["errors"]) == ("ok", None, [])
    assert ok["policy"]["on_disk"] == {"digest": digest, "since": NOW.isoformat(), "accepted": True}
    assert ok["policy"]["loaded_at"] == NOW.isoformat() and len(digest) == 64

    (holder.directory / "targets.yaml").write_text(TARGETS.replace("30s", "99999999999d"))
    holder.reload_if_changed()
    bad = holder.health()
    problem = f"{holder.directory / 'targets.yaml'}: line 7, targets[0].interval: duration '99999999999d' is " \
              "longer than 365d, the most this key allows"
    assert bad["status"] == "degraded" and bad["policy"]["errors"] == [problem]
    assert bad["reason"] == f"the policy files on disk were rejected, the last good policy stays in force: {problem}"
    assert bad["policy"]["digest"] == digest and bad["policy"]["in_force"].startswith("last good policy")
    assert bad["policy"]["on_disk"]["digest"] != digest and bad["policy"]["on_disk"]["accepted"] is False


def test_one_reload_runs_at_a_time(holder, monkeypatch):
    running, most, entered, release = 0, 0, threading.Event(), threading.Event()
    load = policies.holder.load_policy

    def slow_load(directory):
        nonlocal running, most
        running += 1
        most = max(most, running)
        entered.set()
        release.wait(5)
        running -= 1
        return load(directory)

    monkeypatch.setattr(policies.holder, "load_policy", slow_load)
    (holder.directory / "targets.yaml").write_text(TARGETS.replace("30s", "60s"))
    results = []
    threads = [threading.Thread(target=lambda: results.append(holder.reload_if_changed())) for _ in range(3)]
    for thread in threads:
        thread.start()
    assert entered.wait(5)
    for _ in range(50):  # give the other two every chance to load alongside the first
        if running > 1:
            break
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join()
    assert most == 1 and sorted(results) == [False, False, True]


def test_a_learned_rules_file_edited_into_invalid_yaml_leaves_the_learned_rules_in_force(holder):
    learned = holder.directory / "learned-rules.yaml"
    learned.write_text("rules:\n  - {name: shop-slow, kind: latency, service: shop, above: 0.4}\n")
    assert holder.reload_if_changed() is True and holder.policy.learned == {"shop-slow"}
    learned.write_text("rules:\n  - {name: shop-slow, kind: latency, service: shop, above: [0.4\n")
    [problem] = rejected(holder)
    assert problem.startswith(f"{learned}: line 3, column 1: not valid YAML")
    assert holder.policy.learned == {"shop-slow"} and holder.health()["status"] == "degraded"
