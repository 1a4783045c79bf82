"""TCP probe: connect, optionally send a line and read the answer.

With ``expect`` the answer is read until it contains that text (or the server closes, the
body limit is reached or the deadline passes: then the run fails, showing what came back).
With only ``send``, the first chunk of the answer is [BODY]. With neither, the probe only
connects.
"""

from __future__ import annotations

import asyncio
import re
import time

from policies.schema import TcpTarget
from probes.context import (
    ProbeContext,
    close_stream,
    connect_failure,
    elapsed_ms,
    error_reason,
    failed,
    observe,
)

_ESCAPES = {r"\r": "\r", r"\n": "\n", r"\t": "\t", "\\\\": "\\"}


async def run(target: TcpTarget, ctx: ProbeContext):
    started_at = ctx.now()
    t0 = time.perf_counter()
    timeout = target.probe_timeout.total_seconds()
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        async with asyncio.timeout_at(deadline):
            reader, writer = await asyncio.open_connection(target.host, target.port)
    except TimeoutError:
        return failed(target, started_at, elapsed_ms(t0), f"cannot connect: timed out after {timeout:g}s")
    except OSError as exc:
        return failed(target, started_at, elapsed_ms(t0), connect_failure(exc))
    answer = bytearray()
    try:
        async with asyncio.timeout_at(deadline):
            problem = await _converse(target, reader, writer, answer, ctx.max_body_bytes)
    except TimeoutError:
        waiting = repr(target.expect) if target.expect is not None else "an answer"
        problem = f"timed out after {timeout:g}s waiting for {waiting}, got {_shown(answer)}"
    except OSError as exc:
        problem = f"connection broken: {error_reason(exc)}"
    finally:
        elapsed = elapsed_ms(t0)
        await close_stream(writer)
    body = answer.decode("utf-8", errors="replace") if target.send or target.expect is not None else None
    values = {"CONNECTED": True, "RESPONSE_TIME": elapsed, "BODY": body}
    return observe(target, started_at, elapsed, values, error=problem)


async def _converse(target: TcpTarget, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    answer: bytearray, limit: int) -> str | None:
    """Send, then read into ``answer``; the reason the answer falls short, or None."""
    if target.send:
        writer.write(_unescape(target.send).encode())
        await writer.drain()
    if target.expect is None:
        if target.send:
            answer += await reader.read(limit)
        return None
    expected = target.expect.encode()
    while expected not in answer and len(answer) < limit:
        chunk = await reader.read(limit - len(answer))
        if not chunk:
            break
        answer += chunk
    return None if expected in answer else f"the answer does not contain {target.expect!r}, got {_shown(answer)}"


def _unescape(text: str) -> str:
    r"""Turn the escapes \r, \n, \t and \\ written in a policy into the characters."""
    return re.sub(r"\\[rnt\\]", lambda match: _ESCAPES[match[0]], text)


def _shown(answer: bytearray) -> str:
    if not answer:
        return "nothing"
    text = repr(answer.decode("utf-8", errors="replace"))
    return text if len(text) <= 80 else text[:77] + "..."
