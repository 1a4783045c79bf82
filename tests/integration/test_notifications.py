"""A real worker process notifying real local servers: a fault on a real HTTP target opens an
incident that reaches a webhook receiver and is resolved there; a pending action request reaches
the Telegram stand-in (Telegram cannot be reached from here; tests/notifications/standins.py says
which parts of the Bot API it answers) and an answer pressed there runs the action through the
gate, while replayed, forged and unlisted answers are refused; a Slack answer comes signed to the
worker's endpoint; a kill -9 in the middle of deliveries loses none."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter

import pytest

from ledger.db import open_ledger, sqlite_url
from ledger.notifications import channel_answers, list_notifications
from ledger.queries import action_request, incident_detail, list_action_requests, list_incidents
from tests.notifications.standins import TelegramStandIn, slack_interaction
from tests.notifications.support import open_incident
from tests.support import LocalServer, QuietHandler, wait_until

pytestmark = pytest.mark.integration
TG_TOKEN = "123456:telegram-test-token"
SLACK_SECRET = "slack-signing-secret-0123"

ACTIONS = """
actions:
  - id: fault-off
    runner: {{kind: webhook, method: POST, url: "http://127.0.0.1:{port}/fault?mode=none"}}
    risk: containment
    requires_approval: true
    cooldown: 10m
    max_attempts: 2
    postures: [demo]
    timeout: 5s
    enabled: true
recommend:
  - {{category: availability, service: shop, actions: [fault-off]}}
"""


@pytest.fixture
def telegram():
    server = TelegramStandIn(TG_TOKEN)
    yield server
    server.close()


def test_a_fault_is_notified_within_group_wait_and_its_resolution_too(worker, demo_target, receiver):
    w = worker()
    (w.policy / "channels.yaml").write_text(f"""
channels:
  - {{name: hook, kind: webhook, url: "{receiver.url}/hook"}}
routes:
  - {{channels: [hook], group_wait: 1s, group_interval: 1s}}
interval: 500ms
""")
    w.start()
    engine = open_ledger(sqlite_url(w.data))
    demo_target.fault("errors")
    firing = wait_until(lambda: [b for b in receiver.bodies() if b["category"] == "firing"], "a firing notification")
    incident = list_incidents(engine)[0]
    assert firing[0]["incident"]["id"] == incident.id and firing[0]["incident"]["service"] == "shop"
    (sent,) = list_notifications(engine)
    delay = (sent.sent_at - incident.opened_at).total_seconds()
    print(f"\nincident opened -> notification delivered: {delay:.2f} s (group_wait 1 s, interval 0.5 s)")
    demo_target.fault("none")
    resolved = wait_until(lambda: [b for b in receiver.bodies() if b["category"] == "resolved"],
                          "a resolved notification")
    assert resolved[0]["resolved"][0]["id"] == incident.id and resolved[0]["status"] == "resolved"
    assert 'workbench_notification_attempts_total{channel="hook",result="sent"} 2.0' in w.metrics()
    assert 'workbench_notifications{status="sent"} 2.0' in w.metrics()


def test_an_approval_from_telegram_runs_the_action_and_bad_answers_are_refused(worker, demo_target, telegram):
    w = worker(env={"TG_TOKEN": TG_TOKEN})
    (w.policy / "actions.yaml").write_text(ACTIONS.format(port=demo_target.port))
    (w.policy / "channels.yaml").write_text(f"""
channels:
  - {{name: tg, kind: telegram, token: "${{TG_TOKEN}}", chat_id: "4242", api_url: "{telegram.api_url}",
      poll_timeout: 1s}}
approvals: [tg]
approvers:
  - {{channel: tg, identity: "1001", operator: alice}}
interval: 500ms
""")
    w.start()
    engine = open_ledger(sqlite_url(w.data))
    demo_target.fault("errors")
    message = wait_until(lambda: [m for m in telegram.messages if "[APPROVAL]" in m["text"]], "an approval message")[0]
    assert message["chat_id"] == "4242" and "fault-off" in message["text"]
    approve, reject = [b["callback_data"] for b in message["reply_markup"]["inline_keyboard"][0]]
    assert approve.startswith("approve:") and reject.startswith("reject:") and len(approve.encode()) <= 64
    (request,) = list_action_requests(engine)

    stranger = telegram.press(666, approve)  # not on the approvers list
    forged = telegram.press(1001, "approve:AAAAAAAAAAAAAAAA")
    wait_until(lambda: {a["callback_query_id"] for a in telegram.answers} >= {stranger, forged}, "two refusals")
    assert action_request(engine, request.id).status == "pending"
    taken = telegram.press(1001, approve)
    wait_until(lambda: action_request(engine, request.id).status == "succeeded", "the action to run")
    replay = telegram.press(1001, approve)
    late_reject = telegram.press(1001, reject)
    wait_until(lambda: {a["callback_query_id"] for a in telegram.answers} >= {taken, replay, late_reject},
               "every answer shown")
    shown = {a["callback_query_id"]: a["text"] for a in telegram.answers}
    assert shown[stranger] == "Refused: user 666 of tg is not on the approvers list"
    assert shown[forged].startswith("Refused: this button is unknown to the workbench")
    assert shown[taken].startswith(f"Approved action request #{request.id} as alice")
    assert shown[replay] == "Refused: this was already answered (approve by alice)"
    assert shown[late_reject] == "Refused: this was already answered (approve by alice)"

    decided = action_request(engine, request.id)
    assert decided.decided_by == "alice" and decided.decision_reason == "approved from tg by user 1001"
    audit = [(a.identity, a.answer, a.outcome) for a in reversed(channel_answers(engine))]
    assert audit == [("666", "approve", "refused"), ("1001", "approve", "refused"), ("1001", "approve", "taken"),
                     ("1001", "approve", "refused"), ("1001", "reject", "refused")]
    timeline = [t.message for t in incident_detail(engine, request.incident_id).timeline]
    assert "answer 'approve' from tg by user 666 refused: user 666 of tg is not on the approvers list" in timeline
    assert any("approved by alice: approved from tg by user 1001" in m for m in timeline)
    w.stop(signal.SIGKILL)  # where reading stopped is kept: a restarted worker takes no answer twice
    w.start()
    wait_until(lambda: telegram.polls >= 3, "the restarted worker to poll")
    assert [a.outcome for a in channel_answers(engine)].count("taken") == 1


def test_a_signed_slack_answer_acknowledges_and_a_bad_signature_or_stale_one_is_refused(worker, demo_target):
    slack_messages = []

    class Slack(QuietHandler):
        def do_POST(self):
            slack_messages.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.reply(200, b'{"ok": true, "ts": "1.0"}')

    slack = LocalServer(Slack)
    try:
        w = worker(env={"SLACK_TOKEN": "xoxb-1", "SLACK_SIGNING": SLACK_SECRET})
        (w.policy / "channels.yaml").write_text(f"""
channels:
  - {{name: slack, kind: slack, token: "${{SLACK_TOKEN}}", channel: C1, api_url: "{slack.url}/api",
      signing_secret: "${{SLACK_SIGNING}}"}}
routes:
  - {{channels: [slack], group_wait: 1s}}
approvers:
  - {{channel: slack, identity: U42, operator: bob}}
interval: 500ms
""")
        w.start()
        engine = open_ledger(sqlite_url(w.data))
        demo_target.fault("errors")
        message = wait_until(lambda: slack_messages, "a Slack message")[0]
        (button,) = message["blocks"][1]["elements"]
        assert button["action_id"] == "ack"
        url = f"{w.url}/channels/slack/interactions"
        assert slack_interaction(url, "wrong-secret", "U42", "ack", button["value"]).status_code == 401
        stale = slack_interaction(url, SLACK_SECRET, "U42", "ack", button["value"], stamp=int(time.time()) - 600)
        assert stale.status_code == 401 and "five minutes" in stale.json()["error"]
        assert list_incidents(engine)[0].acknowledged_by is None
        answer = slack_interaction(url, SLACK_SECRET, "U42", "ack", button["value"])
        assert answer.status_code == 200 and answer.json()["text"].startswith("Acknowledged incident #")
        incident = list_incidents(engine)[0]
        assert incident.acknowledged_by == "bob" and incident.seconds_to_acknowledge > 0
    finally:
        slack.close()


def test_kill_9_in_the_middle_of_deliveries_loses_no_notification(worker, tmp_path):
    """Many incidents, a slow receiver: killed while delivering, the restarted worker delivers every
    notification at least once, and any delivered twice shows an attempt the kill cut short."""
    received: Counter = Counter()
    lock = threading.Lock()

    class Slow(QuietHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(0.05)
            with lock:
                received[body["incident"]["id"]] += 1
            self.reply(200, b"{}")

    server = LocalServer(Slow)
    try:
        w = worker()
        (w.policy / "targets.yaml").write_text("targets: []\nallow_empty: true\n")
        (w.policy / "channels.yaml").write_text(f"""
channels:
  - {{name: slow, kind: webhook, url: "{server.url}/hook"}}
routes:
  - {{channels: [slow], group_wait: 1s}}
interval: 200ms
""")
        engine = open_ledger(sqlite_url(w.data))
        opened = {open_incident(engine, service=f"svc{i}") for i in range(300)}
        w.start()
        wait_until(lambda: len(received) >= 100, "a hundred deliveries")
        w.stop(signal.SIGKILL)
        cut = len(received)
        w.start()
        wait_until(lambda: set(received) >= opened, "every incident delivered", attempts=600)
        # the receiver counts a delivery before the worker records it as sent: wait for the record
        notifications = wait_until(lambda: (found := {n.incident_id: n for n in list_notifications(engine)})
                                   and all(found[i].status == "sent" for i in opened) and found,
                                   "every delivery recorded as sent")
        twice = {incident for incident, n in received.items() if n > 1}
        assert all(notifications[i].interrupted >= 1 for i in twice)  # the log shows each duplicate
        print(f"\nkill -9 after {cut} of {len(opened)} deliveries: all delivered, {len(twice)} twice "
              f"(each with an attempt the kill cut short)")
    finally:
        server.close()
