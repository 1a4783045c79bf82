"""The worker's HTTP endpoints (on 127.0.0.1 unless told otherwise), served by aiohttp on the
scheduler's event loop: /healthz, /metrics, the Alertmanager webhook, Slack's button answers and the
API for scripts (/api/incidents, with an API token); ``serve`` runs them beside the scheduler until
SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
from pathlib import Path

from aiohttp import web
from prometheus_client.exposition import choose_encoder
from sqlalchemy import Engine

from app import operator
from app.access import LOOPBACK, Identity, beyond_loopback_refused, is_loopback, token_identity
from app.answers import take_answer
from app.worker.buckets import DEFAULT_LOCATION
from app.worker.fleet import Member
from app.worker.jobs import Worker
from ledger import queries
from ledger.db import utcnow
from ledger.errors import NotFound, TransitionRefused
from ledger.lifecycle import OPEN_STATES, OPERATOR_ACTIONS
from ledger.samples import SampleStore
from notifications.answers import Refused, slack_answer
from policies.errors import WorkbenchError
from policies.holder import PolicyHolder
from probes.ingest import authorized

log = logging.getLogger("workbench.worker")
BODY_TIMEOUT = 5.0  # seconds for a webhook body to arrive whole (loopback only), else 408
KEEPALIVE_TIMEOUT = 5.0  # an idle connection, or one still sending its headers, is closed after this
LINGER = 1.0  # seconds a refused body is read and dropped, so that the client gets the answer
STOP_GRACE = 1.0  # seconds requests in flight at a stop get to be answered
INGEST_SLOTS = 64  # webhook requests reading their body or waiting for their commit; more wait their turn
BACKLOG = 128
SLACK_MAX_BYTES = 64 * 1024  # an interaction payload is a few kilobytes
API_MAX_BYTES = 16 * 1024  # a script's request: a reason at most


def make_app(worker: Worker, host: str = LOOPBACK) -> web.Application:
    """The endpoints, for a worker listening on ``host``: beyond loopback the webhook takes
    nothing without the bearer token."""
    slots = asyncio.Semaphore(INGEST_SLOTS)
    token_required = not is_loopback(host)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response(worker.health())

    async def bearer(request: web.Request, scope: str) -> Identity | None:
        return await asyncio.to_thread(token_identity, worker.engine, request.headers.get("Authorization"), scope,
                                       utcnow())

    async def metrics(request: web.Request) -> web.Response:
        access = worker.holder.policy.settings.access
        if access is not None and access.metrics_token and await bearer(request, "read") is None:
            return web.json_response({"error": "an API token with the read scope is required"}, status=401)
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = await asyncio.to_thread(encode, worker.registry)  # the ledger's gauges are read from it
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def ingest(request: web.Request) -> web.Response:
        refusal = _refusal(request, worker.holder.policy.settings, token_required)
        if refusal is not None and refusal[0] == 401 and await bearer(request, "ingest") is not None:
            refusal = _body_refusal(request, worker.holder.policy.settings)
        if refusal is None:
            async with slots:
                body, refusal = await _read_body(request)
                if refusal is None:
                    result = await worker.ingest(body)
                    return web.json_response(result.body(), status=result.status)
        worker.ingested.labels("rejected").inc()
        status, reason = refusal
        return web.json_response({"error": reason}, status=status)

    async def slack_interactions(request: web.Request) -> web.Response:
        """A button pressed in Slack, signed with the app's signing secret; the answer is shown to whoever pressed it."""
        if request.content_length is None or request.content_length > SLACK_MAX_BYTES:
            return web.json_response({"error": f"a Content-Length of at most {SLACK_MAX_BYTES} bytes is required"},
                                     status=413 if request.content_length else 411)
        body, refusal = await _read_body(request)
        if refusal is not None:
            return web.json_response({"error": refusal[1]}, status=refusal[0])
        policy = worker.holder.policy
        try:
            answer = slack_answer(policy.channels, request.headers, body, os.environ, utcnow())
        except Refused as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        worker.answers.labels(answer.channel).inc()
        reply = await asyncio.to_thread(take_answer, worker.engine, policy, worker.store.root.parent, answer,
                                        utcnow())
        log.info("answer %r from %s user %s: %s", answer.verb, answer.channel, answer.identity, reply)
        return web.json_response({"response_type": "ephemeral", "replace_original": False, "text": reply})

    async def api_incidents(request: web.Request) -> web.Response:
        """The open incidents (or those of ``?state=``), as `workbench incidents list --format json` prints them."""
        if await bearer(request, "read") is None:
            return web.json_response({"error": "an API token with the read scope is required"}, status=401)
        states = request.query.getall("state", None) or list(OPEN_STATES)
        rows = await asyncio.to_thread(queries.list_incidents, worker.engine, states=states)
        return web.json_response([row.model_dump(mode="json") for row in rows])

    async def api_act(request: web.Request) -> web.Response:
        """Acknowledge an incident, or one of the operator actions, as the token (with the act scope)."""
        identity = await bearer(request, "act")
        if identity is None:
            return web.json_response({"error": "an API token with the act scope is required"}, status=401)
        verb = request.match_info["verb"]
        if verb != "acknowledge" and verb not in OPERATOR_ACTIONS:
            return web.json_response({"error": f"no action {verb[:40]!r}: acknowledge or "
                                               f"{', '.join(OPERATOR_ACTIONS)}"}, status=404)
        reason, refusal = await _json_reason(request)
        if refusal is not None:
            return web.json_response({"error": refusal[1]}, status=refusal[0])
        incident_id = int(request.match_info["id"])
        try:
            if verb == "acknowledge":
                await asyncio.to_thread(operator.acknowledge, worker.engine, incident_id, actor=identity)
                state = "acknowledged"
            else:
                state = await asyncio.to_thread(operator.act, worker.engine, incident_id, verb, reason, actor=identity)
        except NotFound as exc:
            return web.json_response({"error": str(exc)}, status=404)
        except (TransitionRefused, WorkbenchError) as exc:
            return web.json_response({"error": str(exc)}, status=409)
        return web.json_response({"incident": incident_id, "state": state, "by": identity.name})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/metrics", metrics),
                    web.post("/ingest/alertmanager", ingest),
                    web.post("/channels/slack/interactions", slack_interactions),
                    web.get("/api/incidents", api_incidents),
                    web.post(r"/api/incidents/{id:\d{1,18}}/{verb}", api_act)])
    return app


async def _json_reason(request: web.Request) -> tuple[str | None, tuple[int, str] | None]:
    """The optional ``{"reason": "..."}`` of an API request, or why it is refused."""
    if not request.can_read_body:
        return None, None
    if request.content_length is None or request.content_length > API_MAX_BYTES:
        return None, (413, f"a Content-Length of at most {API_MAX_BYTES} bytes is required")
    body, refusal = await _read_body(request)
    if refusal is not None:
        return None, refusal
    try:
        reason = json.loads(body or b"{}").get("reason") if body.strip() else None
    except (ValueError, AttributeError):
        return None, (400, 'send JSON: {"reason": "..."}')
    if reason is not None and not isinstance(reason, str):
        return None, (400, "reason must be a string")
    return reason, None


# What a web page can POST without the browser asking the server first (a "simple request"):
# the webhook takes none of them, so no page open in the operator's browser can post an alert.
BROWSER_FORM_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})


def _refusal(request: web.Request, settings, token_required: bool) -> tuple[int, str] | None:
    """Why a webhook request is refused before its body is read, if it is."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return 403, f"a request from a web page (Origin {origin[:100]!r}) is refused: the webhook is for Alertmanager"
    if request.content_type in BROWSER_FORM_TYPES:
        return 415, f"Content-Type {request.content_type} is refused: send application/json"
    token = os.environ.get(settings.ingest_token_env)
    if token_required and not token:  # the policy reloaded names a variable that is not set
        return 401, (f"the worker listens beyond loopback: send an API token with the ingest scope (workbench tokens "
                     f"add) or the token of {settings.ingest_token_env}")
    if not authorized(request.headers.get("Authorization"), token):
        return 401, "missing or wrong bearer token"
    return _body_refusal(request, settings)


def _body_refusal(request: web.Request, settings) -> tuple[int, str] | None:
    if request.content_length is None:
        return 411, "a Content-Length header is required"
    if request.content_length > settings.ingest_max_bytes:
        return 413, f"body of {request.content_length} bytes exceeds the limit of {settings.ingest_max_bytes}"
    return None


async def _read_body(request: web.Request) -> tuple[bytes, tuple[int, str] | None]:
    """The whole body, or why it could not be read within BODY_TIMEOUT."""
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            return await request.content.readexactly(request.content_length), None
    except TimeoutError:
        return b"", (408, f"the body did not arrive within {BODY_TIMEOUT:g} s "
                          f"({request.content_length} bytes announced)")
    except asyncio.IncompleteReadError as exc:
        return b"", (400, f"the body ended after {len(exc.partial)} of {request.content_length} bytes")


def serve(policy_dir: Path, engine: Engine, store: SampleStore, port: int | None = None,
          host: str = LOOPBACK, member: Member | None = None) -> None:
    """Run the worker until SIGINT or SIGTERM; ``member``: as one worker of a fleet."""
    holder = PolicyHolder(policy_dir, now=utcnow)
    if reason := beyond_loopback_refused(host, holder.policy.settings, "the worker"):
        raise WorkbenchError(reason)
    if member is not None and holder.policy.settings.fleet is None:
        raise WorkbenchError("--name, --location and --probes-only are for a fleet: add fleet: to settings.yaml "
                             "(docs/fleet.md)")
    if holder.policy.settings.fleet is not None and engine.dialect.name != "postgresql":
        raise WorkbenchError(f"fleet: in settings.yaml needs a PostgreSQL ledger (WORKBENCH_DATABASE_URL); this "
                             f"one is {engine.dialect.name}: remove fleet: for one worker on this ledger")
    if holder.policy.settings.fleet is not None and member is None:
        member = Member(name=socket.gethostname(), location=DEFAULT_LOCATION)
    worker = Worker(holder, engine, store, member)
    asyncio.run(_serve(worker, host, port or holder.policy.settings.worker_port))


async def _serve(worker: Worker, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(make_app(worker, host), access_log=None, handler_cancellation=True,
                           keepalive_timeout=KEEPALIVE_TIMEOUT, lingering_time=LINGER, shutdown_timeout=STOP_GRACE)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, backlog=BACKLOG).start()
    except OSError:
        await runner.cleanup()
        raise
    log.info("serving /healthz, /metrics, /ingest/alertmanager, /channels/slack/interactions and /api/incidents on "
             "http://%s:%d", host, port)
    worker.start()
    try:
        if worker.fleet is not None:
            await worker.join_fleet()
        await stop.wait()
    finally:
        await runner.cleanup()  # stop listening; answer what is in flight, within STOP_GRACE
        await worker.stop()
