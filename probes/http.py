"""HTTP probe: one request, its status, timing, (bounded) body and, on https, the days left on
the server's certificate, checked against conditions."""

from __future__ import annotations

import asyncio
import time
from typing import NamedTuple

import aiohttp
import httpx

from policies.schema import HttpTarget
from policies.secrets import MissingSecret, expand
from probes.certs import days_left
from probes.context import ProbeContext, ProbeResult, connect_failure, error_reason, failed, observe


async def run(target: HttpTarget, ctx: ProbeContext):
    started_at = ctx.now()
    t0 = time.perf_counter()
    try:
        url, headers, secrets = expand_request(target, ctx.env)
    except MissingSecret as exc:
        return failed(target, started_at, 0.0, str(exc))
    timeout = target.probe_timeout.total_seconds()
    client = ctx.client_for(target.verify_tls)
    try:
        async with asyncio.timeout(timeout):
            request = client.build_request(target.method, url, headers=headers, content=target.body)
            answer = await exchange(client, request, target.max_body_bytes or ctx.max_body_bytes,
                                    target.max_redirects if target.follow_redirects else None)
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


# What a request can raise; transport_reason turns each into a readable reason. The aiohttp
# transport maps some aiohttp errors onto httpx's and lets others through, not always onto the
# closest httpx type, so the reason is read from the original error where there is one.
TRANSPORT_ERRORS = (TimeoutError, httpx.HTTPError, httpx.StreamError, aiohttp.ClientError)
_BROKEN = (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError,
           httpx.RemoteProtocolError, httpx.ReadError)
_TIMEOUTS = (TimeoutError, httpx.TimeoutException)


def transport_reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    original = _original(exc)
    if isinstance(original, aiohttp.ClientConnectorError) or isinstance(exc, httpx.ConnectError):
        return connect_failure(exc)
    if isinstance(original, _BROKEN):
        return f"connection broken: {_first_line(error_reason(exc))}"
    if isinstance(original, _TIMEOUTS):
        return f"timed out: {error_reason(exc)}"
    return f"{type(original).__name__}: {_first_line(error_reason(exc))}"


def _original(exc: BaseException) -> BaseException:
    """The error the transport started from: the first aiohttp error in the chain, else ``exc``."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, aiohttp.ClientError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return exc


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


async def fetch(ctx: ProbeContext, method: str, url: str, headers: dict, *,
                params: list[tuple[str, str]] | None = None) -> tuple[int, bytes, bool]:
    """Status, body (at most ctx.max_body_bytes) and whether the body was cut there."""
    request = ctx.client.build_request(method, url, headers=headers, params=params)
    answer = await exchange(ctx.client, request, ctx.max_body_bytes)
    return answer.status, answer.body, answer.truncated


class Answer(NamedTuple):
    status: int
    body: bytes  # at most the limit
    truncated: bool  # the body was cut at the limit
    certificate: bytes | None  # the server's certificate (DER) on https


async def exchange(client: httpx.AsyncClient, request: httpx.Request, limit: int,
                   max_redirects: int | None = None) -> Answer:
    """Send ``request`` and read the answer. Redirects, when ``max_redirects`` is given, are
    followed here rather than by the client, so each target has its own limit on one client."""
    response = await client.send(request, stream=True, follow_redirects=False)
    redirects = 0
    while max_redirects is not None and response.next_request is not None:
        await response.aclose()
        if redirects == max_redirects:
            raise httpx.TooManyRedirects("too many redirects", request=response.next_request)
        redirects += 1
        response = await client.send(response.next_request, stream=True, follow_redirects=False)
    try:
        body = bytearray()
        truncated = False
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            if len(body) >= limit:
                truncated = True
                del body[limit:]
                break
        return Answer(response.status_code, bytes(body), truncated, _certificate(response))
    finally:
        await response.aclose()


def _certificate(response: httpx.Response) -> bytes | None:
    """The server's certificate as DER (verified or not), from the TLS stream under the response."""
    if "tls_certificate" in response.extensions:  # ProbeTransport
        return response.extensions["tls_certificate"]
    stream = response.extensions.get("network_stream")
    tls = stream.get_extra_info("ssl_object") if stream is not None else None
    return tls.getpeercert(binary_form=True) if tls is not None else None


def elapsed_ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000
