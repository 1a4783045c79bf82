"""HTTP probe: one request, its status, timing, (bounded) body and, on https, the days left on
the server's certificate, checked against conditions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from typing import NamedTuple

import aiohttp
from yarl import URL

from policies.schema import HttpTarget
from policies.secrets import MissingSecret, expand, references
from probes.certs import days_left
from probes.context import (
    ProbeClient,
    ProbeContext,
    ProbeResult,
    connect_failure,
    elapsed_ms,
    error_reason,
    failed,
    observe,
)


async def run(target: HttpTarget, ctx: ProbeContext):
    started_at = ctx.now()
    t0 = time.perf_counter()
    try:
        url, headers, secrets = expand_request(target, ctx.env)
    except MissingSecret as exc:
        return failed(target, started_at, 0.0, str(exc))
    timeout = target.probe_timeout.total_seconds()
    try:
        async with asyncio.timeout(timeout):
            answer = await exchange(ctx.client_for(target.verify_tls), target.method, url, headers,
                                    target.max_body_bytes or ctx.max_body_bytes, body=target.body,
                                    max_redirects=target.max_redirects if target.follow_redirects else None,
                                    credentials=credential_headers(target.headers),
                                    credentials_to=target.redirect_credentials_to)
    except TRANSPORT_ERRORS as exc:
        return failed(target, started_at, elapsed_ms(t0), transport_reason(exc, timeout), secrets)
    elapsed = elapsed_ms(t0)
    values = {"STATUS": answer.status, "RESPONSE_TIME": elapsed, "CONNECTED": True,
              "BODY": answer.body.decode("utf-8", errors="replace"), "BODY_TRUNCATED": answer.truncated,
              "CERTIFICATE_EXPIRATION": days_left(answer.certificate, ctx.now())}
    return observe(target, started_at, elapsed, values, status=answer.status, secrets=secrets)


def expand_request(target, env, url: str | None = None) -> tuple[str, dict[str, str], list[str]]:
    """The URL (default: the target's) and the target's headers with ${NAME} secrets filled in,
    and the secret values used (to redact); MissingSecret when one is not set."""
    secrets: list[str] = []
    headers = {}
    for name, template in target.headers.items():
        headers[name], used = expand(template, env)
        secrets.extend(used)
    url, used = expand(url or target.url, env)
    secrets.extend(used)
    return url, headers, secrets


CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def credential_headers(templates: dict[str, str]) -> frozenset[str]:
    """Names of the headers that carry credentials: Authorization, Proxy-Authorization, Cookie
    and any whose value holds a ${NAME} secret."""
    return frozenset(name for name, template in templates.items()
                     if name.lower() in CREDENTIAL_HEADERS or references(template))


class ApiAnswer(NamedTuple):
    status: int
    body: bytes
    elapsed: float  # milliseconds
    secrets: list[str]


async def get_api(target, ctx: ProbeContext, started_at, t0: float, url: str, params: list[tuple[str, str]],
                  name: str) -> ApiAnswer | ProbeResult:
    """GET the HTTP API of a monitoring server (Prometheus, Alertmanager, Loki) with the target's
    headers within its timeout. Whatever answered, at any status, is an ApiAnswer for the caller
    to read; a missing secret, a transport failure or an answer over max_body_bytes is already
    the failed ProbeResult."""
    try:
        url, headers, secrets = expand_request(target, ctx.env, url)
    except MissingSecret as exc:
        return failed(target, started_at, 0.0, str(exc))
    timeout = target.probe_timeout.total_seconds()
    try:
        async with asyncio.timeout(timeout):
            status, body, truncated = await fetch(ctx, "GET", url, headers, params=params)
    except TRANSPORT_ERRORS as exc:
        return failed(target, started_at, elapsed_ms(t0), transport_reason(exc, timeout), secrets)
    elapsed = elapsed_ms(t0)
    if truncated:
        return observe(target, started_at, elapsed, {"CONNECTED": True, "RESPONSE_TIME": elapsed}, status=status,
                       error=f"{name}: answer larger than {ctx.max_body_bytes} bytes (the max_body_bytes setting)",
                       secrets=secrets)
    return ApiAnswer(status, body, elapsed, secrets)


class RedirectError(Exception):
    """A redirect the probe will not follow: one too many, or to a location that is no URL."""


# What a request can raise; transport_reason turns each into a readable reason.
TRANSPORT_ERRORS = (TimeoutError, aiohttp.ClientError, RedirectError)
_BROKEN = (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError)


def transport_reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, RedirectError):
        return str(exc)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return connect_failure(exc)
    if isinstance(exc, _BROKEN):
        return f"connection broken: {_first_line(error_reason(exc))}"
    return f"{type(exc).__name__}: {_first_line(error_reason(exc))}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


async def fetch(ctx: ProbeContext, method: str, url: str, headers: dict, *,
                params: list[tuple[str, str]] | None = None) -> tuple[int, bytes, bool]:
    """Status, body (at most ctx.max_body_bytes) and whether the body was cut there."""
    answer = await exchange(ctx.client, method, url, headers, ctx.max_body_bytes, params=params)
    return answer.status, answer.body, answer.truncated


class Answer(NamedTuple):
    status: int
    body: bytes  # at most the limit
    truncated: bool  # the body was cut at the limit
    certificate: bytes | None  # the server's certificate (DER) on https


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


async def exchange(client: ProbeClient, method: str, url: str | URL, headers: dict, limit: int, *,
                   body: str | None = None, params: list[tuple[str, str]] | None = None,
                   max_redirects: int | None = None, credentials: Collection[str] = (),
                   credentials_to: Collection[str] = ()) -> Answer:
    """Send a request and read the answer, its body up to ``limit`` bytes. Redirects, when
    ``max_redirects`` is given, are followed here, so each target has its own limit on one
    client; like browsers, a 303 (and a 301 or 302 to a POST) continues as a GET without body,
    and the ``credentials`` headers are dropped for good at a redirect to another origin, unless
    it is one of the ``credentials_to`` hosts (see ``keeps_credentials``)."""
    redirects = 0
    while True:
        async with client.session.request(method, url, headers=headers, data=body, params=params,
                                          allow_redirects=False) as response:
            location = response.headers.get("Location") if response.status in REDIRECT_STATUSES else None
            if max_redirects is None or location is None:
                content, truncated = await _read_at_most(response, limit)
                return Answer(response.status, content, truncated, client.certificate(response.url))
            try:
                url = response.url.join(URL(location))
            except ValueError as exc:
                raise RedirectError(f"redirect to an invalid location: {location[:200]}") from exc
            if not keeps_credentials(response.url, url, credentials_to):
                headers = {name: value for name, value in headers.items() if name not in credentials}
        if redirects == max_redirects:
            raise RedirectError("too many redirects")
        redirects += 1
        if response.status == 303 or (response.status in (301, 302) and method == "POST"):
            method, body = "GET", None
        params = None  # they are part of the location now


def keeps_credentials(source: URL, destination: URL, allowed_hosts: Collection[str]) -> bool:
    """Whether a redirect may take the credential headers along: to the same origin (scheme,
    host and port), or to one of ``allowed_hosts`` (``host``, any port, or ``host:port``) but
    not from https to plain http."""
    if (source.scheme, source.host, source.port) == (destination.scheme, destination.host, destination.port):
        return True
    if source.scheme == "https" and destination.scheme != "https":
        return False
    return any(allowed.host == destination.host and allowed.explicit_port in (None, destination.port)
               for allowed in (URL(f"//{entry}") for entry in allowed_hosts))


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """The body up to ``limit`` bytes and whether there was more; the rest is never read (the
    connection is dropped instead)."""
    content = bytearray()
    while len(content) <= limit:
        chunk = await response.content.read(limit + 1 - len(content))
        if not chunk:
            return bytes(content), False
        content.extend(chunk)
    response.close()
    return bytes(content[:limit]), True

