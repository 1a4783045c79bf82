"""One sender per channel kind, each ``send(channel, payload, env, client)``: delivered when it
returns, DeliveryFailed with the reason (secrets masked) when not. Webhook, Slack and Telegram
speak HTTP through one aiohttp session of the worker (as the probes do: httpx's client made a
twentieth of the deliveries per second, bench/notifications.py), their API base URLs
configurable, answers read up to ``ANSWER_BYTES``; e-mail speaks SMTP with the standard library;
the ``apprise`` kind hands the text to Apprise, one Apprise object per delivery, so each is judged
on its own."""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage

import aiohttp
import apprise

from notifications import messages
from policies.channels import AppriseChannel, EmailChannel, SlackChannel, TelegramChannel, WebhookChannel
from policies.secrets import MissingSecret, expand, redact

USER_AGENT = "sre-workbench-notifications"
_SHOWN = 300  # characters of a refusing server's answer kept in the reason
ANSWER_BYTES = 1_048_576  # most of an answer read: a channel cannot bloat the worker


class DeliveryFailed(Exception):
    pass


class Secrets:
    """Expands ``${NAME}`` references and remembers the values, to mask them in any reason."""

    def __init__(self, env: Mapping[str, str]):
        self.env, self.used = env, []

    def __call__(self, template: str) -> str:
        try:
            value, used = expand(template, self.env)
        except MissingSecret as exc:
            raise DeliveryFailed(str(exc)) from None
        self.used += used
        return value

    def masked(self, reason: str) -> str:
        return redact(reason, self.used)


async def send(channel, payload: dict, env: Mapping[str, str], client: aiohttp.ClientSession) -> None:
    secrets = Secrets(env)
    try:
        await SENDERS[channel.kind](channel, payload, secrets, client)
    except DeliveryFailed as exc:
        raise DeliveryFailed(secrets.masked(str(exc))) from None
    except TimeoutError:
        raise DeliveryFailed(f"no answer within {channel.timeout.total_seconds():g} s") from None
    except (aiohttp.ClientError, OSError, smtplib.SMTPException, ssl.SSLError, ValueError) as exc:
        raise DeliveryFailed(secrets.masked(f"{type(exc).__name__}: {exc}".rstrip(": "))) from None


async def post(client: aiohttp.ClientSession, url: str, body: dict, timeout: float,
               headers: dict | None = None) -> tuple[int, bytes]:
    """POST ``body`` as JSON, redirects not followed; the status and at most ANSWER_BYTES of the answer."""
    async with client.post(url, json=body, headers={"User-Agent": USER_AGENT, **(headers or {})},
                           timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False) as response:
        return response.status, await response.content.read(ANSWER_BYTES)


async def _webhook(channel: WebhookChannel, payload: dict, secrets: Secrets, client: aiohttp.ClientSession) -> None:
    headers = {name: secrets(value) for name, value in channel.headers.items()}
    status, answer = await post(client, secrets(channel.url), payload, channel.timeout.total_seconds(), headers)
    if not 200 <= status < 300:
        raise DeliveryFailed(f"HTTP {status}: {answer[:_SHOWN].decode(errors='replace')}")


async def _slack(channel: SlackChannel, payload: dict, secrets: Secrets, client: aiohttp.ClientSession) -> None:
    """chat.postMessage, with the buttons as a Block Kit actions block."""
    body = {"channel": channel.channel, "text": messages.text(payload)}
    if buttons := messages.buttons(payload):
        body["blocks"] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": messages.text(payload)}},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": label}, "action_id": verb, "value": nonce,
                 **({"style": "primary"} if verb in ("approve", "ack") else {"style": "danger"})}
                for verb, label, nonce in buttons]}]
    answer = await _api(client, f"{channel.api_url}/chat.postMessage", body, channel.timeout.total_seconds(),
                        {"Authorization": f"Bearer {secrets(channel.token)}"})
    if not answer.get("ok"):
        raise DeliveryFailed(f"Slack refused it: {answer.get('error', 'no reason given')}")


async def _telegram(channel: TelegramChannel, payload: dict, secrets: Secrets, client: aiohttp.ClientSession) -> None:
    """sendMessage, with the buttons as an inline keyboard whose callback data is ``verb:nonce``."""
    body: dict = {"chat_id": channel.chat_id, "text": messages.text(payload), "disable_web_page_preview": True}
    if buttons := messages.buttons(payload):
        body["reply_markup"] = {"inline_keyboard": [[{"text": label, "callback_data": f"{verb}:{nonce}"}
                                                     for verb, label, nonce in buttons]]}
    answer = await telegram_call(client, channel, secrets, "sendMessage", body)
    if not answer.get("ok"):
        raise DeliveryFailed(f"Telegram refused it: {answer.get('description', 'no reason given')}")


async def telegram_call(client: aiohttp.ClientSession, channel: TelegramChannel, secrets, method: str, body: dict,
                        timeout: float | None = None) -> dict:
    """One Bot API method; its JSON answer (``ok`` false with a ``description`` when refused)."""
    return await _api(client, f"{channel.api_url}/bot{secrets(channel.token)}/{method}", body,
                      timeout or channel.timeout.total_seconds())


async def _api(client: aiohttp.ClientSession, url: str, body: dict, timeout: float,
               headers: dict | None = None) -> dict:
    status, raw = await post(client, url, body, timeout, headers)
    try:
        answer = json.loads(raw)
    except ValueError:
        raise DeliveryFailed(f"HTTP {status}, not JSON: {raw[:_SHOWN].decode(errors='replace')}") from None
    if not isinstance(answer, dict):
        raise DeliveryFailed(f"HTTP {status}, unexpected answer: {raw[:_SHOWN].decode(errors='replace')}")
    return answer


async def _email(channel: EmailChannel, payload: dict, secrets: Secrets, client: aiohttp.ClientSession) -> None:
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = payload["title"], channel.sender, ", ".join(channel.to)
    message.set_content(messages.text(payload))
    login = (secrets(channel.username), secrets(channel.password)) if channel.username else None
    await asyncio.to_thread(_smtp, channel, message, login)


def _smtp(channel: EmailChannel, message: EmailMessage, login: tuple[str, str] | None) -> None:
    context = ssl.create_default_context(cafile=channel.ca_file)
    timeout = channel.timeout.total_seconds()
    if channel.security == "tls":
        server = smtplib.SMTP_SSL(channel.host, channel.port, timeout=timeout, context=context)
    else:
        server = smtplib.SMTP(channel.host, channel.port, timeout=timeout)
    with server:
        if channel.security == "starttls":
            server.starttls(context=context)
        if login:
            server.login(*login)
        refused = server.send_message(message)
    if refused:
        raise DeliveryFailed(f"the server refused {', '.join(sorted(refused))}")


async def _apprise(channel: AppriseChannel, payload: dict, secrets: Secrets, client: aiohttp.ClientSession) -> None:
    url = secrets(channel.url)
    await asyncio.to_thread(_notify_apprise, url, payload, channel.timeout.total_seconds())


def _notify_apprise(url: str, payload: dict, timeout: float) -> None:
    asset = apprise.AppriseAsset(async_mode=False)
    notifier = apprise.Apprise(asset=asset)
    if not notifier.add(url):
        raise DeliveryFailed("Apprise does not know this URL (check its scheme and form in the Apprise wiki)")
    for service in notifier:
        service.socket_connect_timeout = service.socket_read_timeout = timeout
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        delivered = notifier.notify(body=f"{payload['summary']}\n{payload['link']}", title=payload["title"])
    if not delivered:
        reasons = [line.strip() for line in captured.getvalue().splitlines() if line.strip()]
        raise DeliveryFailed("Apprise could not deliver it" + (f": {' / '.join(reasons[-3:])}" if reasons else ""))


SENDERS = {"webhook": _webhook, "slack": _slack, "telegram": _telegram, "email": _email, "apprise": _apprise}
