"""Loading is bounded: file size, nesting, values (aliases expanded), items and digits each have a
limit named in the problem; a file that cannot be read says why, never "missing"."""

from __future__ import annotations

import errno
import os

import pytest

from policies import limits
from policies.errors import PolicyError
from policies.loader import load_policy

TARGET = '{name: web, kind: http, service: shop, url: "http://127.0.0.1:9/"}'


def problems_of(directory) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy(directory)
    return [str(p) for p in caught.value.problems]


def test_a_symbolic_link_loop_is_an_error_naming_the_file_and_the_reason(policy_dir):
    directory = policy_dir(f"targets: [{TARGET}]\n")
    targets = directory / "targets.yaml"
    targets.unlink()
    targets.symlink_to(directory / "loop.yaml")
    (directory / "loop.yaml").symlink_to(targets)
    found = problems_of(directory)
    assert f"{targets}: cannot be read: it is a symbolic link that loops (too many levels of symbolic links)" in found


def test_a_dangling_link_a_directory_and_a_fifo_cannot_be_read(policy_dir, tmp_path):
    directory = policy_dir(f"targets: [{TARGET}]\n")
    (directory / "rules.yaml").symlink_to(tmp_path / "gone.yaml")
    (directory / "settings.yaml").mkdir()
    os.mkfifo(directory / "actions.yaml")  # a reader would wait for a writer forever
    assert problems_of(directory) == [
        f"{directory / 'rules.yaml'}: cannot be read: it is a symbolic link to {tmp_path / 'gone.yaml'}, "
        "which does not exist",
        f"{directory / 'settings.yaml'}: cannot be read: it is a directory, not a file",
        f"{directory / 'actions.yaml'}: cannot be read: it is not a regular file (a FIFO, socket or device)",
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_a_file_without_read_permission_says_so(policy_dir):
    directory = policy_dir(f"targets: [{TARGET}]\n")
    (directory / "targets.yaml").chmod(0)
    assert problems_of(directory) == [f"{directory / 'targets.yaml'}: cannot be read: Permission denied"]


def test_a_policy_file_over_its_size_limit_is_refused_before_it_is_parsed(policy_dir):
    directory = policy_dir("targets: []\n" + "#" * (32 * 1024 * 1024))
    (directory / "settings.yaml").write_text("# " + "x" * (1024 * 1024))
    assert problems_of(directory) == [
        f"{directory / 'targets.yaml'}: too large: 33,554,444 bytes, over the limit of 32 MiB (33,554,432 bytes) "
        "for targets.yaml",
        f"{directory / 'settings.yaml'}: too large: 1,048,578 bytes, over the limit of 1 MiB (1,048,576 bytes) "
        "for settings.yaml",
    ]


def test_nesting_is_bounded(policy_dir):
    directory = policy_dir(f"targets: [{TARGET}]\nx: " + "[" * 40 + "]" * 40 + "\n")
    assert problems_of(directory) == [f"{directory / 'targets.yaml'}: line 2: nested more than 32 levels deep"]


def test_aliases_are_bounded_by_the_values_they_expand_to(policy_dir):
    laughs = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    laughs += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    directory = policy_dir("\n".join(laughs) + "\ntargets: *a8\n")
    (directory / "rules.yaml").write_text("\n".join(laughs) + "\nrules: *a8\n")
    found = problems_of(directory)
    assert found == [f"{directory / 'targets.yaml'}: line 7: more than 4,000,000 values (an alias counts the values "
                     "it repeats each time it is used)",
                     f"{directory / 'rules.yaml'}: line 6: more than 500,000 values (an alias counts the values "
                     "it repeats each time it is used)"]


def test_an_alias_inside_its_own_node_is_refused(policy_dir):
    directory = policy_dir("targets: &t\n  - *t\n")
    assert problems_of(directory) == [f"{directory / 'targets.yaml'}: line 2: alias *t is used inside the node it "
                                      "names, which would make it endless"]


def test_aliases_within_the_limits_load(policy_dir):
    directory = policy_dir("""
checks: &checks ["[STATUS] == 200"]
targets:
  - {name: a, kind: http, service: s, url: "http://127.0.0.1:9/a", conditions: *checks}
  - {name: b, kind: http, service: s, url: "http://127.0.0.1:9/b", conditions: *checks}
""".replace("checks: &checks", "x-checks: &checks"))
    found = problems_of(directory)
    assert found == [f"{directory / 'targets.yaml'}: line 2, x-checks: unknown key"]  # the anchor's own key


def test_item_counts_are_bounded(policy_dir):
    directory = policy_dir("targets: [" + ", ".join(["{}"] * 100_001) + "]\n")
    (directory / "rules.yaml").write_text("rules: [" + ", ".join(["{}"] * 5_001) + "]\n")
    assert problems_of(directory) == [
        f"{directory / 'targets.yaml'}: line 1, targets: 100,001 items, more than the 100,000 allowed",
        f"{directory / 'rules.yaml'}: line 1, rules: 5,001 items, more than the 5,000 allowed",
    ]


def test_a_number_past_pythons_digit_limit_and_an_impossible_date_are_problems_at_their_line(policy_dir):
    directory = policy_dir(f"targets: [{TARGET}]\n", settings="max_connections: " + "9" * 5000 + "\n")
    (directory / "rules.yaml").write_text("rules: []\nwhen: 2001-02-30\n")
    assert problems_of(directory) == [
        f"{directory / 'rules.yaml'}: line 2, column 7: not valid YAML: '2001-02-30' cannot be read as a "
        "timestamp: day is out of range for month",
        f"{directory / 'settings.yaml'}: line 1: a number of 5,000 digits; at most 4,300 are allowed",
    ]


def test_a_read_that_fails_halfway_says_why(policy_dir, monkeypatch):
    directory = policy_dir(f"targets: [{TARGET}]\n")

    def failing_read(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(limits.os, "fdopen", failing_read)
    assert problems_of(directory) == [f"{directory / 'targets.yaml'}: cannot be read: Input/output error"]
