"""Local servers the notification tests deliver to, on 127.0.0.1.

- ``Receiver``: a real HTTP server that takes webhook POSTs (it can be told to refuse them).
- ``SmtpServer``: a real SMTP server (aiosmtpd) with STARTTLS and a login, whose certificate a CA
  file made here signs.
- ``SlackStandIn`` and ``TelegramStandIn`` stand in for Slack and Telegram, which cannot be reached
  from here. Each answers only what the public API docs show, for the methods the workbench uses:
  Slack's ``chat.postMessage`` (https://api.slack.com/methods/chat.postMessage: HTTP 200 with
  ``ok`` true, or ``ok`` false and an ``error`` such as ``invalid_auth`` or ``channel_not_found``)
  and the Bot API's ``sendMessage``, ``getUpdates`` (long polling, ``offset`` confirming what came
  before, ``allowed_updates``) and ``answerCallbackQuery``
  (https://core.telegram.org/bots/api: ``{"ok": true, "result": ...}``, or ``ok`` false with
  ``error_code`` and ``description``; an unknown token is 401 Unauthorized).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.probes.tls_support import make_certs
from tests.support import LocalServer, QuietHandler, free_port


class Receiver:
    """Webhook POSTs, each as (path, headers, JSON body); answers ``status`` (200 unless told)."""

    def __init__(self):
        self.received: list[tuple[str, dict, dict]] = []
        self.status = 200
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.status >= 300:
                    return self.reply(receiver.status, b'{"error": "down for the test"}')
                receiver.received.append((self.path, dict(self.headers), json.loads(body)))
                self.reply(200, b"{}")

        self.server = LocalServer(Handler)
        self.url = self.server.url

    def bodies(self) -> list[dict]:
        return [body for _, _, body in self.received]

    def close(self):
        self.server.close()


class SlackStandIn:
    """chat.postMessage as the Slack Web API answers it; ``messages`` holds what was posted."""

    def __init__(self, token: str):
        self.messages: list[dict] = []
        standin = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path != "/api/chat.postMessage":
                    return self.reply(404, b'{"ok": false, "error": "unknown_method"}')
                if self.headers.get("Authorization") != f"Bearer {token}":
                    return self.reply(200, b'{"ok": false, "error": "invalid_auth"}')
                if not body.get("channel"):
                    return self.reply(200, b'{"ok": false, "error": "channel_not_found"}')
                standin.messages.append(body)
                self.reply(200, json.dumps({"ok": True, "channel": body["channel"],
                                            "ts": f"{time.time():.6f}"}).encode())

        self.server = LocalServer(Handler)
        self.api_url = f"{self.server.url}/api"

    def close(self):
        self.server.close()


def slack_interaction(url: str, secret: str, user: str, action_id: str, value: str,
                      stamp: int | None = None) -> httpx.Response:
    """POST a block_actions interaction as Slack sends it: form-encoded ``payload``, signed with the
    app's signing secret (v0, HMAC-SHA256 of ``v0:timestamp:body``)."""
    stamp = int(time.time()) if stamp is None else stamp
    payload = {"type": "block_actions", "user": {"id": user}, "actions": [{"action_id": action_id, "value": value}]}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return httpx.post(url, content=body, timeout=10, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(stamp),
        "X-Slack-Signature": signature})


class TelegramStandIn:
    """sendMessage, getUpdates and answerCallbackQuery of the Bot API for one bot token; ``press``
    queues a callback query as Telegram does when someone presses an inline button."""

    def __init__(self, token: str):
        self.messages: list[dict] = []
        self.answers: list[dict] = []
        self.updates: list[dict] = []
        self.next_update = 100
        self.polls = 0
        self.changed = threading.Condition()
        standin = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                prefix = f"/bot{token}/"
                if not self.path.startswith(prefix):
                    return self.reply(401, b'{"ok": false, "error_code": 401, "description": "Unauthorized"}')
                method = self.path[len(prefix):]
                answer = standin.call(method, body)
                if answer is None:
                    return self.reply(404, b'{"ok": false, "error_code": 404, "description": "Not Found"}')
                self.reply(200 if answer["ok"] else answer["error_code"], json.dumps(answer).encode())

        self.server = LocalServer(Handler)
        self.api_url = self.server.url

    def call(self, method: str, body: dict) -> dict | None:
        if method == "sendMessage":
            if not body.get("chat_id") or not body.get("text"):
                return {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
            with self.changed:
                self.messages.append(body)
            return {"ok": True, "result": {"message_id": len(self.messages), "chat": {"id": body["chat_id"]},
                                           "date": int(time.time()), "text": body["text"]}}
        if method == "answerCallbackQuery":
            self.answers.append(body)
            return {"ok": True, "result": True}
        if method == "getUpdates":
            return {"ok": True, "result": self._updates(int(body.get("offset", 0)), float(body.get("timeout", 0)),
                                                        body.get("allowed_updates"))}
        return None

    def _updates(self, offset: int, timeout: float, allowed: list[str] | None) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self.changed:
            self.polls += 1
            self.updates = [u for u in self.updates if u["update_id"] >= offset]  # earlier ones are confirmed
            while not self.updates and time.monotonic() < deadline:
                self.changed.wait(min(0.2, deadline - time.monotonic()))
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
            return [u for u in self.updates if not allowed or any(kind in u for kind in allowed)]

    def press(self, user_id: int, data: str) -> str:
        """Someone presses an inline button with ``data``; returns the callback query's id."""
        with self.changed:
            self.next_update += 1
            query_id = f"q{self.next_update}"
            self.updates.append({"update_id": self.next_update, "callback_query": {
                "id": query_id, "from": {"id": user_id, "is_bot": False, "first_name": "T"},
                "chat_instance": "1", "data": data}})
            self.changed.notify_all()
        return query_id

    def close(self):
        self.server.close()


class _Recorder:
    def __init__(self):
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode("utf8", "replace")))
        return "250 OK"


class SmtpServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that requires STARTTLS and, when given, a login;
    its certificate is signed by the CA in ``ca_file``."""

    def __init__(self, directory: Path, login: tuple[str, str] | None = None):
        directory.mkdir(parents=True, exist_ok=True)
        certs = make_certs(directory)
        self.ca_file = str(certs.ca)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certs.valid)
        self.recorder = _Recorder()

        def authenticate(server, session, envelope, mechanism, data):
            ok = login is not None and (data.login.decode(), data.password.decode()) == login
            return AuthResult(success=ok, handled=False)

        self.port = free_port()
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port, tls_context=context,
                                     require_starttls=True, authenticator=authenticate,
                                     auth_require_tls=True, auth_required=login is not None)
        self.controller.start()

    @property
    def messages(self):
        return self.recorder.messages

    def close(self):
        self.controller.stop()
