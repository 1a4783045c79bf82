"""Answers from channels: the buttons pressed in Telegram (read by long polling ``getUpdates``, no
public address needed) and in Slack (interactive requests, taken only with a valid signature of
the app's signing secret and a timestamp within five minutes). Each becomes an Answer: which
channel, which user id the channel vouches for, the verb and the nonce of the button. What the
answer does, and whether the user may give it, is decided above this package (app/answers.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs

import aiohttp

from notifications.senders import DeliveryFailed, Secrets, telegram_call
from policies.channels import ChannelsFile, SlackChannel, TelegramChannel

SLACK_WINDOW = 300  # seconds a signed Slack request is good for (Slack's own advice)
VERBS = ("approve", "reject", "ack")


@dataclass(frozen=True)
class Answer:
    channel: str
    identity: str
    verb: str
    nonce: str | None
    reference: str | None = None  # Telegram: the callback query to answer


class Refused(Exception):
    """A request that is not a valid answer at all (HTTP status and reason)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


async def telegram_updates(client: aiohttp.ClientSession, channel: TelegramChannel, env: Mapping[str, str],
                           offset: int) -> list[dict]:
    """The callback queries after ``offset`` (waiting up to the channel's poll_timeout for one)."""
    wait = int(channel.poll_timeout.total_seconds())
    answer = await telegram_call(client, channel, Secrets(env), "getUpdates",
                                 {"offset": offset, "timeout": wait, "allowed_updates": ["callback_query"]},
                                 timeout=wait + channel.timeout.total_seconds())
    if not answer.get("ok") or not isinstance(answer.get("result"), list):
        raise DeliveryFailed(f"getUpdates refused: {answer.get('description', 'no reason given')}")
    return [update for update in answer["result"] if isinstance(update, dict)
            and isinstance(update.get("update_id"), int)]


def telegram_answer(channel: str, update: dict) -> Answer | None:
    """The answer an update carries, or None (not a callback query)."""
    query = update.get("callback_query")
    if not isinstance(query, dict) or not isinstance(query.get("from"), dict):
        return None
    verb, _, nonce = str(query.get("data") or "").partition(":")
    return Answer(channel, str(query["from"].get("id")), verb[:32], nonce[:64] or None, str(query.get("id")))


async def telegram_reply(client: aiohttp.ClientSession, channel: TelegramChannel, env: Mapping[str, str],
                         query_id: str, text: str) -> None:
    """Show the outcome to whoever pressed the button (answerCallbackQuery)."""
    await telegram_call(client, channel, Secrets(env), "answerCallbackQuery",
                        {"callback_query_id": query_id, "text": text[:200], "show_alert": True})


def slack_answer(config: ChannelsFile, headers: Mapping[str, str], body: bytes, env: Mapping[str, str],
                 now: datetime) -> Answer:
    """The answer of a Slack interactive request, once its signature is checked against each Slack
    channel's signing secret; Refused (401 or 400) otherwise."""
    stamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not stamp.isdigit() or abs(now.timestamp() - int(stamp)) > SLACK_WINDOW:
        raise Refused(401, "the request's timestamp is missing or more than five minutes off: refused as a replay")
    base = f"v0:{stamp}:".encode() + body
    channel = next((c for c in config.channels if isinstance(c, SlackChannel) and c.signing_secret
                    and _signed(c.signing_secret, env, base, signature)), None)
    if channel is None:
        raise Refused(401, "the request's signature matches no Slack channel's signing secret")
    try:
        payload = json.loads(parse_qs(body.decode())["payload"][0])
        action = payload["actions"][0]
        return Answer(channel.name, str(payload["user"]["id"]), str(action["action_id"])[:32],
                      str(action.get("value") or "")[:64] or None)
    except (KeyError, IndexError, TypeError, ValueError, UnicodeDecodeError):
        raise Refused(400, "not a Slack block_actions payload") from None


def _signed(reference: str, env: Mapping[str, str], base: bytes, signature: str) -> bool:
    secret = env.get(reference[2:-1])
    if not secret:
        return False
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)
