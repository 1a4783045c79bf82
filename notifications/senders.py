"""One sender per channel kind, each ``send(channel, payload, env, client)``: delivered when it
returns, DeliveryFailed with the reason (secrets masked) when not. Webhook, Slack and Telegram
speak HTTP through the worker's client (their API base URLs are configurable); e-mail speaks SMTP
with the standard library; the ``apprise`` kind hands the text to Apprise, one Apprise object per
delivery, so each is judged on its own."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage

import apprise
import httpx

from notifications import messages
from policies.channels import AppriseChannel, EmailChannel, SlackChannel, TelegramChannel, WebhookChannel
from policies.secrets import MissingSecret, expand, redact

USER_AGENT = "sre-workbench-notifications"
_SHOWN = 300  # characters of a refusing server's answer kept in the reason


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


async def send(channel, payload: dict, env: Mapping[str, str], client: httpx.AsyncClient) -> None:
    secrets = Secrets(env)
    try:
        await SENDERS[channel.kind](channel, payload, secrets, client)
    except DeliveryFailed as exc:
        raise DeliveryFailed(secrets.masked(str(exc))) from None
    except (httpx.HTTPError, OSError, smtplib.SMTPException, ssl.SSLError) as exc:
        raise DeliveryFailed(secrets.masked(f"{type(exc).__name__}: {exc}".rstrip(": "))) from None


async def _webhook(channel: WebhookChannel, payload: dict, secrets: Secrets, client: httpx.AsyncClient) -> None:
    headers = {"User-Agent": USER_AGENT, **{name: secrets(value) for name, value in channel.headers.items()}}
    response = await client.post(secrets(channel.url), json=payload, headers=headers,
                                 timeout=channel.timeout.total_seconds())
    if not response.is_success:
        raise DeliveryFailed(f"HTTP {response.status_code}: {response.text[:_SHOWN]}")


async def _slack(channel: SlackChannel, payload: dict, secrets: Secrets, client: httpx.AsyncClient) -> None:
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


async def _telegram(channel: TelegramChannel, payload: dict, secrets: Secrets, client: httpx.AsyncClient) -> None:
    """sendMessage, with the buttons as an inline keyboard whose callback data is ``verb:nonce``."""
    body: dict = {"chat_id": channel.chat_id, "text": messages.text(payload), "disable_web_page_preview": True}
    if buttons := messages.buttons(payload):
        body["reply_markup"] = {"inline_keyboard": [[{"text": label, "callback_data": f"{verb}:{nonce}"}
                                                     for verb, label, nonce in buttons]]}
    answer = await telegram_call(client, channel, secrets, "sendMessage", body)
    if not answer.get("ok"):
        raise DeliveryFailed(f"Telegram refused it: {answer.get('description', 'no reason given')}")


async def telegram_call(client: httpx.AsyncClient, channel: TelegramChannel, secrets, method: str, body: dict,
                        timeout: float | None = None) -> dict:
    """One Bot API method; its JSON answer (``ok`` false with a ``description`` when refused)."""
    return await _api(client, f"{channel.api_url}/bot{secrets(channel.token)}/{method}", body,
                      timeout or channel.timeout.total_seconds())


async def _api(client: httpx.AsyncClient, url: str, body: dict, timeout: float, headers: dict | None = None) -> dict:
    response = await client.post(url, json=body, timeout=timeout, headers={"User-Agent": USER_AGENT,
                                                                           **(headers or {})})
    try:
        answer = response.json()
    except ValueError:
        raise DeliveryFailed(f"HTTP {response.status_code}, not JSON: {response.text[:_SHOWN]}") from None
    if not isinstance(answer, dict):
        raise DeliveryFailed(f"HTTP {response.status_code}, unexpected answer: {response.text[:_SHOWN]}")
    return answer


async def _email(channel: EmailChannel, payload: dict, secrets: Secrets, client: httpx.AsyncClient) -> None:
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


async def _apprise(channel: AppriseChannel, payload: dict, secrets: Secrets, client: httpx.AsyncClient) -> None:
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
