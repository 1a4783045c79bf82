"""The runners for real: the webhook runner against a local HTTP server, the command runner
running local programs; timeouts, failures, output cut and secrets masked."""

from __future__ import annotations

import sys

from policies.actions import Action
from remediation.runners import RUNNERS, plan, run

SECRET = "tok-9f8e7d6c5b4a3210"


def action(runner: dict, parameters: dict | None = None, timeout: str = "5s") -> Action:
    return Action.model_validate({"id": "a", "runner": runner, "parameters": parameters or {}, "risk": "containment",
                                  "postures": ["demo"], "timeout": timeout})


def test_the_webhook_calls_the_server_with_secrets_and_parameters(canned):
    canned.reply({"echo": f"Bearer {SECRET}"}, status=202)
    hook = action({"kind": "webhook", "method": "POST", "url": f"{canned.url}/scale/{{{{svc}}}}?by={{{{n}}}}",
                   "headers": {"Authorization": "Bearer ${HOOK_TOKEN}", "X-Team": "{{svc}}"},
                   "body": '{"replicas": {{n}}}'},
                  {"svc": {"pattern": "[a-z /]+"}, "n": {"type": "integer"}})
    result = run(hook, {"svc": "shop web", "n": 3}, {"HOOK_TOKEN": SECRET}, max_bytes=4096)

    assert result.status == "succeeded"
    assert result.output == 'HTTP 202 Accepted\n{"echo": "Bearer ***"}'
    path, query, headers = canned.requests[0]
    assert (path, query) == ("/scale/shop%20web", [("by", "3")])
    assert (headers["Authorization"], headers["X-Team"]) == (f"Bearer {SECRET}", "shop web")
    assert canned.posted == [b'{"replicas": 3}']
    assert plan(hook, {"svc": "shop web", "n": 3}) == (f"POST {canned.url}/scale/shop%20web?by=3\n"
                                                       "Authorization: Bearer ${HOOK_TOKEN}\nX-Team: shop web\n\n"
                                                       '{"replicas": 3}')


def test_a_webhook_error_answer_fails_and_a_slow_one_times_out(canned):
    hook = action({"kind": "webhook", "url": canned.url}, timeout="300ms")
    canned.reply(b"x" * 5000, status=503, content_type="text/plain")
    failed = run(hook, {}, {}, max_bytes=1024)
    assert failed.status == "failed"
    assert failed.output == f"HTTP 503 Service Unavailable\n{'x' * 1024}\n... (cut: 5,000 bytes in all)"
    canned.delay = 1.0
    assert run(hook, {}, {}, max_bytes=1024).status == "timed_out"


def test_a_webhook_nobody_answers_and_a_missing_secret_fail_with_the_reason(canned):
    nobody = action({"kind": "webhook", "url": "http://127.0.0.1:9/"})
    assert run(nobody, {}, {}, max_bytes=1024).output.startswith("POST http://127.0.0.1:9/: ConnectError")
    missing = action({"kind": "webhook", "url": canned.url, "headers": {"Authorization": "Bearer ${NOT_SET}"}})
    result = run(missing, {}, {}, max_bytes=1024)
    assert (result.status, result.output) == ("failed", "not run: environment variable NOT_SET is not set")
    assert canned.requests == []


def test_the_command_runs_without_a_shell_and_without_the_worker_environment(tmp_path):
    script = tmp_path / "show.py"
    script.write_text("import os, sys\nprint(sys.argv[1:]); print(sorted(os.environ)); print(os.environ['TOKEN'])\n")
    command = action({"kind": "command", "argv": [sys.executable, str(script), "{{name}}", "a;b $(id)"],
                      "env": {"TOKEN": "${DEPLOY_TOKEN}"}}, {"name": {"pattern": ".+"}})
    result = run(command, {"name": "x y"}, {"DEPLOY_TOKEN": SECRET, "WORKBENCH_APPROVAL_KEY": "k" * 40},
                 max_bytes=4096)
    assert result.status == "succeeded"
    assert result.output.splitlines() == ["exit status 0", "['x y', 'a;b $(id)']", "['LANG', 'PATH', 'TOKEN']",
                                          "***"]


def test_a_command_that_fails_or_overruns_is_reported_and_killed(tmp_path):
    failing = action({"kind": "command", "argv": ["/bin/sh", "-c", "echo nope >&2; exit 3"]})
    assert run(failing, {}, {}, max_bytes=1024).output == "exit status 3\nnope\n"
    marker = tmp_path / "survived"
    slow = action({"kind": "command", "argv": ["/bin/sh", "-c", f"sleep 0.5 & sleep 5; touch {marker}"]},
                  timeout="200ms")
    result = run(slow, {}, {}, max_bytes=1024)
    assert (result.status, result.output) == ("timed_out", "killed after 0.2s\n")
    missing = action({"kind": "command", "argv": ["/nonexistent/tool"]})
    assert run(missing, {}, {}, max_bytes=1024).output == "cannot start /nonexistent/tool: No such file or directory"
    assert not marker.exists()


def test_command_output_is_cut(tmp_path):
    chatty = action({"kind": "command", "argv": ["/usr/bin/seq", "100000"]})
    result = run(chatty, {}, {}, max_bytes=1024)
    assert result.output.endswith("\n... (cut: 588,895 bytes in all)")
    assert len(result.output.encode()) < 1200


def test_notify_records_a_note():
    note = action({"kind": "notify", "message": "restart {{svc}} after the sale"}, {"svc": {}})
    result = run(note, {"svc": "shop"}, {}, max_bytes=1024)
    assert (result.status, result.note, result.output) == ("succeeded", "restart shop after the sale",
                                                           "note recorded: restart shop after the sale")
    assert plan(note, {"svc": "shop"}) == "note: restart shop after the sale"


def test_a_runner_bug_becomes_a_failed_result(monkeypatch):
    def broken(*_):
        raise KeyError("boom")

    monkeypatch.setitem(RUNNERS, "notify", broken)
    result = run(action({"kind": "notify", "message": "hello"}), {}, {}, max_bytes=1024)
    assert result.status == "failed" and result.output.startswith("runner error KeyError: 'boom' (test_runners.py:")
