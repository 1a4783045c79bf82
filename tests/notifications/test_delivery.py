"""Delivery through the outbox to real servers: a webhook receiver, an SMTP server with STARTTLS
and a login (aiosmtpd), a local server Apprise posts to, and the Slack stand-in (Slack cannot be
reached from here; tests/notifications/standins.py says what it answers). Failed attempts keep
their reasons, retry with backoff, fall back to the next channel and stay in the inbox; secrets
never reach the ledger."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from sqlmodel import select

from ledger.db import read_session
from ledger.notifications import delivery_attempts, inbox, list_notifications
from ledger.tables import DeliveryAttempt, Notification
from notifications.outbox import report_trouble
from tests.notifications.standins import SlackStandIn, SmtpServer
from tests.notifications.support import NOW, channels_policy, open_incident, outbox, run_pass
from tests.support import LocalServer, QuietHandler, free_port

S = timedelta(seconds=1)
TOKEN = "hook-token-5f1e2d3c4b5a"


def test_a_channel_that_is_down_fails_with_reasons_then_falls_back_and_stays_in_the_inbox(engine, tmp_path, receiver):
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    policy = channels_policy(tmp_path / "p", f"""
channels:
  - {{name: primary, kind: webhook, url: "{down}"}}
  - {{name: refusing, kind: webhook, url: "{receiver.url}/refusing", headers: {{Authorization: "Bearer ${{HOOK}}"}}}}
routes:
  - {{channels: [primary, refusing], group_wait: 1s}}
attempts: 2
backoff: 10s
""")
    env = {"HOOK": TOKEN}
    incident = open_incident(engine)
    receiver.status = 503
    run_pass(engine, policy, NOW + 2 * S, env)
    (first,) = list_notifications(engine)
    assert (first.channel, first.status, first.attempts) == ("primary", "pending", 1)
    assert first.error.startswith("ClientConnectorError: Cannot connect to host 127.0.0.1")
    run_pass(engine, policy, NOW + 5 * S, env)  # before its backoff: not tried
    assert list_notifications(engine)[0].attempts == 1
    run_pass(engine, policy, NOW + 13 * S, env)  # second and last attempt fails: the next channel takes it
    run_pass(engine, policy, NOW + 14 * S, env)
    later, first = list_notifications(engine)
    assert (first.status, first.attempts) == ("fallback", 2)
    assert (later.channel, later.fallback_of, later.incident_id) == ("refusing", first.id, incident)
    assert later.error.startswith("HTTP 503") and later.status == "pending"
    run_pass(engine, policy, NOW + 30 * S, env)
    later = list_notifications(engine, statuses=["failed"])[0]
    assert later.attempts == 2 and inbox(engine).undelivered == 1
    attempts = delivery_attempts(engine, first.id)
    assert [a.ok for a in attempts] == [False, False] and all(a.finished_at and a.error for a in attempts)
    with read_session(engine) as session:
        stored = json.dumps([n.model_dump(mode="json") for n in session.exec(select(Notification)).all()])
        stored += json.dumps([a.model_dump(mode="json") for a in session.exec(select(DeliveryAttempt)).all()])
    assert TOKEN not in stored
    receiver.status = 200  # nothing is retried after it failed for good
    run_pass(engine, policy, NOW + timedelta(minutes=5), env)
    assert receiver.received == []


def test_a_missing_secret_is_a_failed_attempt_with_its_reason(engine, tmp_path, receiver):
    policy = channels_policy(tmp_path / "p", f"""
channels:
  - {{name: hook, kind: webhook, url: "{receiver.url}/hook", headers: {{X-Token: "${{NOT_SET_ANYWHERE}}"}}}}
routes:
  - {{channels: [hook], group_wait: 1s}}
attempts: 1
""")
    open_incident(engine)
    run_pass(engine, policy, NOW + 2 * S)
    (notification,) = list_notifications(engine)
    assert notification.status == "failed"
    assert notification.error == "environment variable NOT_SET_ANYWHERE is not set"


def test_email_goes_through_starttls_and_a_login_to_a_real_smtp_server(engine, tmp_path):
    smtp = SmtpServer(tmp_path / "certs", login=("workbench", "smtp-pass-0a1b2c3d"))
    try:
        policy = channels_policy(tmp_path / "p", f"""
channels:
  - name: mail
    kind: email
    host: 127.0.0.1
    port: {smtp.port}
    ca_file: {smtp.ca_file}
    username: workbench
    password: ${{SMTP_PASSWORD}}
    from: workbench@example.test
    to: [oncall@example.test, second@example.test]
routes:
  - {{channels: [mail], group_wait: 1s}}
""")
        incident = open_incident(engine)
        run_pass(engine, policy, NOW + 2 * S, {"SMTP_PASSWORD": "smtp-pass-0a1b2c3d"})
        (sender, recipients, content), = smtp.messages
        assert sender == "workbench@example.test" and recipients == ["oncall@example.test", "second@example.test"]
        assert "Subject: [CRITICAL] shop-web failing" in content and f"/?incident={incident}" in content
        assert list_notifications(engine)[0].status == "sent"
    finally:
        smtp.close()


def test_a_wrong_smtp_password_is_a_failed_attempt_without_the_password(engine, tmp_path):
    smtp = SmtpServer(tmp_path / "certs", login=("workbench", "right-pass-123"))
    try:
        policy = channels_policy(tmp_path / "p", f"""
channels:
  - {{name: mail, kind: email, host: 127.0.0.1, port: {smtp.port}, ca_file: {smtp.ca_file}, username: workbench,
      password: "${{SMTP_PASSWORD}}", from: a@example.test, to: [b@example.test]}}
routes:
  - {{channels: [mail], group_wait: 1s}}
attempts: 1
""")
        open_incident(engine)
        run_pass(engine, policy, NOW + 2 * S, {"SMTP_PASSWORD": "wrong-pass-456"})
        (notification,) = list_notifications(engine)
        assert notification.status == "failed" and "SMTPAuthenticationError" in notification.error
        assert "wrong-pass-456" not in notification.error and smtp.messages == []
    finally:
        smtp.close()


def test_slack_gets_chat_post_message_with_the_bot_token(engine, tmp_path):
    slack = SlackStandIn("xoxb-test-token-1234567890")
    try:
        policy = channels_policy(tmp_path / "p", f"""
channels:
  - {{name: slack, kind: slack, token: "${{SLACK_TOKEN}}", channel: C0123, api_url: "{slack.api_url}"}}
routes:
  - {{channels: [slack], group_wait: 1s}}
attempts: 1
""")
        open_incident(engine)
        open_incident(engine, service="cart")
        run_pass(engine, policy, NOW + 2 * S, {"SLACK_TOKEN": "xoxb-test-token-1234567890"})
        assert [m["channel"] for m in slack.messages] == ["C0123", "C0123"]
        assert sorted(m["text"].split(":")[0] for m in slack.messages) == ["[CRITICAL] cart-web failing",
                                                                          "[CRITICAL] shop-web failing"]
        open_incident(engine, service="blog", at=NOW + 10 * S)
        run_pass(engine, policy, NOW + 12 * S, {"SLACK_TOKEN": "xoxb-revoked"})
        failed = list_notifications(engine, statuses=["failed"])[0]
        assert failed.error == "Slack refused it: invalid_auth"
    finally:
        slack.close()


def test_any_apprise_url_delivers_and_an_unknown_one_fails_with_its_reason(engine, tmp_path, receiver):
    policy = channels_policy(tmp_path / "p", f"""
channels:
  - {{name: apprise-json, kind: apprise, url: "json://{receiver.server.address}/apprise"}}
  - {{name: nonsense, kind: apprise, url: "nosuchservice://somewhere"}}
routes:
  - {{channels: [apprise-json], group_wait: 1s, continue: true}}
  - {{channels: [nonsense], group_wait: 1s}}
attempts: 1
""")
    open_incident(engine)
    run_pass(engine, policy, NOW + 2 * S)
    (path, _, body), = receiver.received
    assert path == "/apprise" and body["title"].startswith("[CRITICAL] shop-web failing")
    statuses = {n.channel: (n.status, n.error) for n in list_notifications(engine)}
    assert statuses["apprise-json"] == ("sent", None)
    assert statuses["nonsense"][0] == "failed" and "Apprise does not know this URL" in statuses["nonsense"][1]


def test_a_channel_failing_for_good_tells_the_meta_channels_once(engine, tmp_path, receiver):
    down = f"http://127.0.0.1:{free_port()}/hook"
    policy = channels_policy(tmp_path / "p", f"""
channels:
  - {{name: broken, kind: webhook, url: "{down}"}}
  - {{name: ops, kind: webhook, url: "{receiver.url}/ops"}}
routes:
  - {{channels: [broken], group_wait: 1s}}
meta: [ops, broken]
attempts: 1
""")
    for service in ("shop", "cart", "blog"):
        open_incident(engine, service=service)
    run_pass(engine, policy, NOW + 2 * S)
    run_pass(engine, policy, NOW + 3 * S)
    (body,) = receiver.bodies()  # three failures, one meta notification, never to the failing channel
    assert body["category"] == "meta" and body["title"] == "[WORKBENCH] channel broken is failing"
    assert [n.category for n in outbox(engine)].count("meta") == 1


def test_a_hostile_channel_is_a_failed_attempt_never_a_stuck_or_bloated_worker(engine, tmp_path):
    """One endpoint answers 500 with 50 MB, one never answers, one answers 200 with garbage where
    Slack's JSON belongs."""
    class Hostile(QuietHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/huge":
                self.send_response(500)
                self.send_header("Content-Length", str(50 * 2**20))
                self.end_headers()
                chunk = b"x" * 2**20
                try:
                    for _ in range(50):
                        self.wfile.write(chunk)
                except OSError:
                    pass
            elif self.path == "/hang":
                time.sleep(3)
            else:
                self.reply(200, b"\xff\xfe not json at all", "text/html")

    server = LocalServer(Hostile)
    try:
        policy = channels_policy(tmp_path / "p", f"""
channels:
  - {{name: huge, kind: webhook, url: "{server.url}/huge"}}
  - {{name: hang, kind: webhook, url: "{server.url}/hang", timeout: 500ms}}
  - {{name: garbage, kind: slack, token: "${{T}}", channel: C1, api_url: "{server.url}/api"}}
routes:
  - {{channels: [huge], group_wait: 1s, continue: true}}
  - {{channels: [hang], group_wait: 1s, continue: true}}
  - {{channels: [garbage], group_wait: 1s}}
attempts: 1
""")
        open_incident(engine)
        run_pass(engine, policy, NOW + 2 * S, {"T": "xoxb-1"})
        errors = {n.channel: n.error for n in list_notifications(engine)}
        assert errors["huge"].startswith("HTTP 500: xxxx") and len(errors["huge"]) < 400
        assert errors["hang"] == "no answer within 0.5 s"
        assert errors["garbage"].startswith("HTTP 200, not JSON: ")
        assert {n.status for n in list_notifications(engine)} == {"failed"}
    finally:
        server.close()


def test_worker_trouble_reaches_the_meta_channels_once_an_hour(engine, tmp_path, receiver):
    policy = channels_policy(tmp_path / "p", f"""
channels:
  - {{name: ops, kind: webhook, url: "{receiver.url}/ops"}}
meta: [ops]
""")
    assert report_trouble(engine, policy.channels, "detector cycle", "OperationalError: disk I/O error", NOW)
    assert not report_trouble(engine, policy.channels, "detector cycle", "OperationalError: again", NOW + 60 * S)
    run_pass(engine, policy, NOW + 61 * S)
    (body,) = receiver.bodies()
    assert body["title"] == "[WORKBENCH] detector cycle is failing" and "disk I/O error" in body["summary"]
    assert report_trouble(engine, policy.channels, "detector cycle", "still", NOW + timedelta(hours=1, minutes=1))
