"""`workbench channels` (list, test), `workbench notifications` (list, read) and `workbench incidents
ack` on a real ledger (SQLite and PostgreSQL), a real webhook receiver and a real SMTP server; a
channels.yaml with a wrong name or a secret written out is refused with its file, line and reason."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY
from ledger.db import open_ledger
from tests.notifications.standins import SmtpServer
from tests.notifications.support import open_incident
from tests.support import free_port


@pytest.fixture
def cli(ledger_url, tmp_path, capsys, monkeypatch):
    """run(channels_yaml, *args) -> (exit status, stdout, stderr) of `workbench` on the test's ledger."""
    monkeypatch.delenv(ENV_DATA, raising=False)
    monkeypatch.setenv(ENV_DB, ledger_url)
    monkeypatch.setenv("HOOK_TOKEN", "hook-token-abcdef123456")
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "targets.yaml").write_text("targets: []\n")
    monkeypatch.setenv(ENV_POLICY, str(policy))

    def run(channels: str | None, *args: str):
        if channels is not None:
            (policy / "channels.yaml").write_text(channels)
        code = main(["--data", str(tmp_path / "var"), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_list_shows_each_channel_without_its_secrets_and_test_delivers(cli, receiver, ledger_url):
    channels = f"""
channels:
  - {{name: hook, kind: webhook, url: "{receiver.url}/hook", headers: {{Authorization: "Bearer ${{HOOK_TOKEN}}"}}}}
  - {{name: down, kind: webhook, url: "http://127.0.0.1:{free_port()}/x"}}
  - {{name: tg, kind: telegram, token: "${{TG}}", chat_id: "42"}}
routes:
  - {{channels: [hook, down]}}
"""
    code, out, _ = cli(channels, "channels", "list", "--format", "json")
    assert code == 0
    assert json.loads(out)[0] == {"name": "hook", "kind": "webhook", "destination": f"{receiver.url}/hook",
                                  "routes": ["routes[0]"], "answers": False, "sent": 0, "failed": 0,
                                  "last_error": None}
    assert [(c["name"], c["answers"]) for c in json.loads(out)] == [("hook", False), ("down", False), ("tg", True)]
    assert cli(None, "channels", "test", "hook") == (0, "test notification delivered to hook\n", "")
    (path, headers, body), = receiver.received
    assert headers["Authorization"] == "Bearer hook-token-abcdef123456" and body["category"] == "test"
    code, out, err = cli(None, "channels", "test", "down")
    assert (code, out) == (1, "") and err.startswith("workbench: test notification to down failed: ClientConnectorError: Cannot connect to host")
    code, _, err = cli(None, "channels", "test", "nope")
    assert (code, err) == (1, "workbench: no channel 'nope' (channels: hook, down, tg)\n")
    code, out, _ = cli(None, "channels", "list")
    assert "hook             webhook       1      0  routes[0]" in out and "last error: ClientConnectorError" in out
    code, out, _ = cli(None, "notifications", "list", "--format", "json", "--status", "failed")
    (failed,) = json.loads(out)
    assert {k: failed[k] for k in ("channel", "incident_id", "status", "attempts")} == {
        "channel": "down", "incident_id": None, "status": "failed", "attempts": 1}
    assert failed["error"].startswith("ClientConnectorError: Cannot connect to host 127.0.0.1") and failed["at"]
    code, out, _ = cli(None, "notifications", "list")
    assert "hook           test       sent         1        -  [TEST] SRE Workbench" in out
    assert "hook-token-abcdef123456" not in out


def test_email_test_goes_to_a_real_smtp_server(cli, tmp_path):
    smtp = SmtpServer(tmp_path / "certs")
    try:
        channels = f"""
channels:
  - {{name: mail, kind: email, host: 127.0.0.1, port: {smtp.port}, ca_file: "{smtp.ca_file}",
      from: wb@example.test, to: [oncall@example.test]}}
"""
        assert cli(channels, "channels", "test", "mail")[0] == 0
        (sender, recipients, content), = smtp.messages
        assert recipients == ["oncall@example.test"] and "Subject: [TEST] SRE Workbench" in content
    finally:
        smtp.close()


def test_notifications_list_filters_by_incident_and_ack_records_who(cli, receiver, ledger_url, capsys):
    engine = open_ledger(ledger_url)
    incident = open_incident(engine)
    code, out, _ = cli(None, "incidents", "ack", str(incident))
    assert code == 0 and out.startswith(f"incident {incident} acknowledged by ")
    code, out, _ = cli(None, "incidents", "show", str(incident), "--format", "json")
    shown = json.loads(out)
    assert shown["acknowledged_by"] and shown["seconds_to_acknowledge"] >= 0
    assert any(t["message"].startswith(f"acknowledged by {shown['acknowledged_by']} (CLI)") for t in shown["timeline"])
    assert cli(None, "incidents", "ack", "999")[2] == "workbench: no incident with id 999\n"
    code, out, _ = cli(None, "notifications", "list", "--incident", str(incident), "--format", "json")
    assert (code, json.loads(out)) == (0, [])
    engine.dispose()


@pytest.mark.parametrize("channels, where, reason", [
    ("channels:\n  - {name: a, kind: webhook, url: 'http://x/'}\nroutes:\n  - channels: [b]\n",
     "channels.yaml: line 4, routes[0].channels[0]", "names channel 'b', which is not under channels"),
    ("channels:\n  - name: s\n    kind: slack\n    token: xoxb-123456789012\n    channel: C1\n",
     "channels.yaml: line 4, channels[0].slack.token", "a secret is written as a reference to the environment, ${NAME}"),
    ("channels:\n  - {name: a, kind: webhook, url: 'http://x/'}\napprovals: [a]\n",
     "channels.yaml: line 3, approvals[0]", "a webhook channel, which cannot take an answer"),
    ("channels:\n  - {name: a, kind: pager}\n", "channels.yaml: line 2, channels[0]", "kind"),
    ("routes:\n  - {channels: [a], matchers: ['service=~(']}\n", "channels.yaml: line 2, routes[0].matchers",
     "not a valid regex"),
])
def test_a_wrong_channels_file_is_refused_with_file_line_and_reason(cli, channels, where, reason):
    code, _, err = cli(channels, "policy", "check")
    assert code == 2 and where in err and reason in err
