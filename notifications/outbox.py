"""Delivering the outbox: every due notification is tried (many at once), each attempt recorded
before it starts and after it ends. A failed attempt is retried after ``backoff``, doubled each
time, up to ``attempts`` tries; then the notification has failed for good and the next channel of
its route takes it over (status ``fallback``), or, with none left, it stays ``failed`` in the
inbox, and the channels named under ``meta`` hear that the channel is failing (once an hour per
channel, and never about a meta notification, so the workbench's trouble cannot feed itself), as
they hear of the worker's own trouble (``report_trouble``)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
from sqlalchemy import Engine

from ledger.db import read_session, utcnow, write_session
from ledger.lifecycle import DeliveryStatus
from ledger.repo import notifications as outbox
from ledger.tables import Notification
from notifications import messages
from notifications.senders import DeliveryFailed, send
from policies.channels import ChannelsFile

BATCH = 2000  # most notifications taken up in one pass
CONCURRENCY = 32  # deliveries in flight at once, recorded together
META_EVERY = timedelta(hours=1)


@dataclass
class Delivered:
    """What one pass did: attempts by channel and result (sent, retry, fallback, failed), the seconds
    from planning to delivery of each one sent, and the reason of each failed attempt by channel."""

    results: Counter = field(default_factory=Counter)  # (channel, result) -> attempts
    delays: list[float] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


async def deliver_due(engine: Engine, config: ChannelsFile, env: Mapping[str, str], client: aiohttp.ClientSession,
                      now: datetime | None = None) -> Delivered:
    done = Delivered()
    now = now or utcnow()
    with read_session(engine) as session:
        due = [n.id for n in outbox.due(session, now, BATCH)]
    started = time.perf_counter()
    for at in range(0, len(due), CONCURRENCY):  # a stop loses the outcomes of one chunk at most
        await _deliver(engine, config, env, client, due[at:at + CONCURRENCY], now, started, done)
    return done


async def _deliver(engine: Engine, config: ChannelsFile, env: Mapping[str, str], client: aiohttp.ClientSession,
                   ids: list[int], now: datetime, started: float, done: Delivered) -> None:
    """Try the notifications ``ids`` at once: attempts recorded first, outcomes after."""
    with write_session(engine) as session:
        due = outbox.by_id(session, ids, pending=True)
        attempts = outbox.start_attempts(session, due, now + timedelta(seconds=time.perf_counter() - started))
        work = [(n.id, n.channel, n.payload, a.id) for n, a in zip(due, attempts)]

    async def one(channel_name: str, payload: dict) -> tuple[str | None, float]:
        clock = time.perf_counter()
        channel = config.channel(channel_name)
        try:
            if channel is None:
                raise DeliveryFailed(f"channel {channel_name!r} is no longer in channels.yaml")
            await send(channel, payload, env, client)
        except DeliveryFailed as exc:
            return str(exc), (time.perf_counter() - clock) * 1000
        return None, (time.perf_counter() - clock) * 1000

    outcomes = await asyncio.gather(*(one(channel, payload) for _, channel, payload, _ in work))
    finished = now + timedelta(seconds=time.perf_counter() - started)
    with write_session(engine) as session:
        notifications = {n.id: n for n in outbox.by_id(session, [w[0] for w in work])}
        attempts = outbox.attempts_by_id(session, [w[3] for w in work])
        for (notification_id, _, _, attempt_id), (error, latency) in zip(work, outcomes):
            outbox.finish_attempt(session, attempts[attempt_id], finished, error, latency)
            _settle(session, config, notifications[notification_id], error, finished, done)


def _settle(session, config: ChannelsFile, notification: Notification, error: str | None, now: datetime,
            done: Delivered) -> None:
    if error is None:
        notification.status, notification.sent_at, notification.error = DeliveryStatus.SENT, now, None
        done.results[notification.channel, "sent"] += 1
        done.delays.append((now - notification.at).total_seconds())
        return
    notification.error = error
    done.failures.append((notification.channel, error))
    if notification.attempts < config.attempts:
        notification.next_attempt_at = now + config.backoff * 2 ** (notification.attempts - 1)
        done.results[notification.channel, "retry"] += 1
        return
    if notification.fallbacks:
        notification.status = DeliveryStatus.FALLBACK
        outbox.enqueue(session, key=f"{notification.key}>{notification.fallbacks[0]}", channels=notification.fallbacks,
                       category=notification.category, payload=notification.payload, digest=notification.digest,
                       now=now, incident_id=notification.incident_id, request_id=notification.request_id,
                       route=notification.route, fallback_of=notification.id)
        done.results[notification.channel, "fallback"] += 1
    else:
        notification.status = DeliveryStatus.FAILED
        done.results[notification.channel, "failed"] += 1
    if notification.category not in ("meta", "test"):
        _meta(session, config, notification, now)


def _meta(session, config: ChannelsFile, failed: Notification, now: datetime) -> None:
    meta_alert(session, config, f"channel-failing:{failed.channel}", f"channel {failed.channel} is failing",
               f"Notification #{failed.id} could not be delivered to {failed.channel} after {failed.attempts} "
               f"attempt(s): {failed.error}", now, besides=failed.channel)


def meta_alert(session, config: ChannelsFile, what: str, title: str, summary: str, now: datetime,
               besides: str | None = None) -> bool:
    """Tell the meta channels (but ``besides``) about the workbench's own trouble ``what``, once per
    META_EVERY; return whether it was planned."""
    channels = [name for name in config.meta if name != besides]
    window = int(now.timestamp() // META_EVERY.total_seconds())
    key = f"meta:{what}:{window}"
    if not channels or outbox.planned(session, [key]):
        return False
    payload = messages.meta_payload(title, summary, config.app_url)
    outbox.enqueue(session, key=key, channels=channels, category="meta", payload=payload,
                   digest=messages.digest(payload), now=now)
    return True


def report_trouble(engine: Engine, config: ChannelsFile, what: str, reason: str, now: datetime) -> bool:
    """The worker's own trouble (a job failing, the policy on disk refused) to the meta channels."""
    if not config.meta:
        return False
    with write_session(engine) as session:
        return meta_alert(session, config, what.replace(" ", "-"), f"{what} is failing", reason, now)


async def send_test(engine: Engine, config: ChannelsFile, name: str, env: Mapping[str, str],
                    client: aiohttp.ClientSession) -> str | None:
    """Send a test notification to channel ``name`` now, outside the outbox's turns, and record it
    there with its one attempt; return why it failed, or None."""
    channel = config.channel(name)
    if channel is None:
        raise KeyError(name)
    payload, started = messages.test_payload(name, config.app_url), utcnow()
    clock = time.perf_counter()
    try:
        await send(channel, payload, env, client)
        error = None
    except DeliveryFailed as exc:
        error = str(exc)
    latency = (time.perf_counter() - clock) * 1000
    finished = started + timedelta(milliseconds=latency)
    with write_session(engine) as session:
        notification = outbox.enqueue(session, key=f"test:{name}:{started.isoformat()}", channels=[name],
                                      category="test", payload=payload, digest=messages.digest(payload), now=started)
        session.flush()
        (attempt,) = outbox.start_attempts(session, [notification], started)
        outbox.finish_attempt(session, attempt, finished, error, latency)
        notification.status = DeliveryStatus.SENT if error is None else DeliveryStatus.FAILED
        notification.sent_at, notification.error = (finished, None) if error is None else (None, error)
    return error
