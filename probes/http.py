"""HTTP probe: one request, its status, timing and (bounded) body checked against conditions."""

from __future__ import annotations

import asyncio
import os
import time

import httpx

from policies.schema import HttpTarget
from policies.secrets import MissingSecret, expand
from probes.context import ProbeContext, failed, observe


async def run(target: HttpTarget, ctx: ProbeContext):
    started_at = ctx.now()
    t0 = time.perf_counter()
    secrets: list[str] = []
    try:
        headers = {}
        for name, template in target.headers.items():
            headers[name], used = expand(template, ctx.env)
            secrets.extend(used)
        url, used = expand(target.url, ctx.env)
        secrets.extend(used)
    except MissingSecret as exc:
        return failed(target, started_at, 0.0, str(exc))
    timeout = target.probe_timeout.total_seconds()
    try:
        async with asyncio.timeout(timeout):
            status, body, truncated = await _request(target, ctx, url, headers)
    except TimeoutError:
        return failed(target, started_at, _ms(t0), f"timed out after {timeout:g}s", secrets)
    except httpx.TooManyRedirects:
        return failed(target, started_at, _ms(t0), "too many redirects", secrets)
    except httpx.ConnectError as exc:
        return failed(target, started_at, _ms(t0), f"cannot connect: {_reason(exc)}", secrets)
    except httpx.TimeoutException as exc:
        return failed(target, started_at, _ms(t0), f"timed out: {_reason(exc)}", secrets)
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        return failed(target, started_at, _ms(t0), f"connection broken: {_reason(exc)}", secrets)
    except (httpx.HTTPError, httpx.StreamError) as exc:
        return failed(target, started_at, _ms(t0), f"{type(exc).__name__}: {_reason(exc)}", secrets)
    elapsed = _ms(t0)
    values = {"STATUS": status, "RESPONSE_TIME": elapsed, "CONNECTED": True,
              "BODY": body.decode("utf-8", errors="replace"), "BODY_TRUNCATED": truncated}
    return observe(target, started_at, elapsed, values, status=status, secrets=secrets)


async def _request(target: HttpTarget, ctx: ProbeContext, url: str, headers: dict) -> tuple[int, bytes, bool]:
    request = ctx.client.build_request(target.method, url, headers=headers)
    response = await ctx.client.send(request, stream=True, follow_redirects=target.follow_redirects)
    try:
        body = bytearray()
        truncated = False
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            if len(body) >= ctx.max_body_bytes:
                truncated = True
                del body[ctx.max_body_bytes:]
                break
        return response.status_code, bytes(body), truncated
    finally:
        await response.aclose()


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _reason(exc: BaseException) -> str:
    """The most specific message in the exception chain (httpx wraps the OS error)."""
    seen = exc
    while seen.__cause__ or seen.__context__:
        seen = seen.__cause__ or seen.__context__
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno).lower()
    return str(seen) or str(exc) or type(exc).__name__
