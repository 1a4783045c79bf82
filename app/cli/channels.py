"""`workbench channels`: the notification channels of channels.yaml (list, send a test) and
`workbench notifications`: the outbox (list, mark read)."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import aiohttp
from pydantic import BaseModel

from app.cli.output import add_format, print_rows
from app.cli.types import positive_integer
from app.cli.who import operator
from app.operator import mark_read
from app.render import channel_table, notification_table
from app.settings import Paths
from ledger import db
from ledger.lifecycle import DeliveryStatus
from ledger.notifications import channel_health, list_notifications
from notifications.outbox import send_test
from policies.channels import ANSWERING
from policies.errors import WorkbenchError
from policies.loader import load_policy
from policies.secrets import redact

HEALTH_SINCE = timedelta(days=1)


class ChannelItem(BaseModel):
    """The stable JSON shape of a channel (``workbench channels list --format json``)."""

    name: str
    kind: str
    destination: str  # as channels.yaml writes it: secrets stay ${NAME}
    routes: list[str]  # routes[i] and escalations.NAME that use it
    answers: bool  # it takes Approve / Reject / Acknowledge back
    sent: int  # in the last day
    failed: int
    last_error: str | None


def register(sub) -> None:
    p = sub.add_parser("channels", help="notification channels (channels.yaml): list them, send a test")
    ch_sub = p.add_subparsers(title="channel commands", metavar="COMMAND", required=True)
    ls = ch_sub.add_parser("list", help="each channel, where it delivers, who routes to it, its last day")
    add_format(ls)
    ls.set_defaults(handler=cmd_list)
    test = ch_sub.add_parser("test", help="send a test notification now; exit 1 with the reason if it fails")
    test.add_argument("name", metavar="NAME")
    test.set_defaults(handler=cmd_test)

    p = sub.add_parser("notifications", help="the outbox: what went where, what failed and why")
    no_sub = p.add_subparsers(title="notification commands", metavar="COMMAND", required=True)
    ls = no_sub.add_parser("list", help="notifications, newest first")
    ls.add_argument("--incident", type=positive_integer, metavar="ID", help="only those about this incident")
    ls.add_argument("--status", action="append", choices=list(DeliveryStatus), help="only this status (repeatable)")
    ls.add_argument("--channel", metavar="NAME", help="only this channel")
    ls.add_argument("--limit", type=positive_integer, default=200)
    add_format(ls)
    ls.set_defaults(handler=cmd_notifications)
    read = no_sub.add_parser("read", help="mark undelivered notifications read: they leave the inbox's count")
    read.add_argument("ids", nargs="*", type=positive_integer, metavar="ID", help="these (default: all unread)")
    read.set_defaults(handler=cmd_read)


def cmd_list(args, paths: Paths) -> int:
    config = load_policy(paths.policy_dir).channels
    health = {h.channel: h for h in channel_health(paths.ledger(), db.utcnow() - HEALTH_SINCE)}
    uses: dict[str, list[str]] = {}
    for i, route in enumerate(config.routes):
        for name in route.channels:
            uses.setdefault(name, []).append(f"routes[{i}]")
    for escalation in config.escalations:
        for step in escalation.steps:
            for name in step.channels:
                uses.setdefault(name, []).append(f"escalations.{escalation.name}")
    rows = [ChannelItem(name=c.name, kind=c.kind, destination=redact(_destination(c)),
                        routes=sorted(set(uses.get(c.name, []))), answers=c.kind in ANSWERING,
                        sent=health[c.name].sent if c.name in health else 0,
                        failed=health[c.name].failed if c.name in health else 0,
                        last_error=health[c.name].last_error if c.name in health else None)
            for c in config.channels]
    print_rows(rows, args.format, channel_table)
    return 0


def _destination(channel) -> str:
    if channel.kind in ("webhook", "apprise"):
        return channel.url
    if channel.kind == "email":
        return f"{', '.join(channel.to)} via {channel.host}:{channel.port} ({channel.security})"
    if channel.kind == "slack":
        return f"{channel.channel} via {channel.api_url}"
    return f"chat {channel.chat_id} via {channel.api_url}"


def cmd_test(args, paths: Paths) -> int:
    config = load_policy(paths.policy_dir).channels
    if config.channel(args.name) is None:
        known = ", ".join(c.name for c in config.channels) or "none: channels.yaml has no channels"
        raise WorkbenchError(f"no channel {args.name!r} (channels: {known})")

    async def run():
        async with aiohttp.ClientSession(trust_env=False) as client:
            return await send_test(paths.ledger(), config, args.name, os.environ, client)

    error = asyncio.run(run())
    if error is not None:
        raise WorkbenchError(f"test notification to {args.name} failed: {error}")
    print(f"test notification delivered to {args.name}")
    return 0


def cmd_notifications(args, paths: Paths) -> int:
    rows = list_notifications(paths.ledger(), incident_id=args.incident, statuses=args.status,
                              channel=args.channel, limit=args.limit)
    print_rows(rows, args.format, notification_table)
    return 0


def cmd_read(args, paths: Paths) -> int:
    count = mark_read(paths.ledger(), args.ids or None, actor=operator(paths), now=db.utcnow())
    print(f"{count} notification(s) marked read")
    return 0
