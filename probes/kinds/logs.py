"""Logs probe: lines and signature matches since the last run, from a local file or from Loki.

The position a run stopped at is kept in the ledger (``LogCursor``), so a worker restart
resumes there and counts nothing twice.

A local file is tailed from (device:inode, byte offset). The FIRST run starts at the END of
the file: what was written before the target was probed is not counted. A new file at the
path (rotation) is read from its start, and so is a file shorter than the position
(truncation); lines the old file got after the previous run are not read. A last line without
its newline waits until it is complete. One run reads at most ``max_body_bytes``; the rest is
read by the next runs (a single line longer than that is counted once per such chunk).

Loki is asked for [end of the previous run, now) with ``query_range``, oldest first, at most
``LOKI_LIMIT`` lines (the first run looks back one interval). When Loki returns that many, the
next run starts just after the last line returned.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import time
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.exc import SQLAlchemyError

from ledger import queries
from ledger.db import write_session
from ledger.repo import observations
from ledger.samples import Sample
from policies.jsondoc import parse_json
from policies.schema import LogsTarget
from probes.context import (
    ProbeContext,
    ProbeResult,
    QueryFailed,
    elapsed_ms,
    failed,
    observe,
)
from probes.kinds.http import expand_request, get_api

LOKI_LIMIT = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)



async def run(target: LogsTarget, ctx: ProbeContext) -> ProbeResult:
    started_at = ctx.now()
    t0 = time.perf_counter()
    if ctx.engine is None:
        return failed(target, started_at, 0.0, "the logs probe needs the ledger to keep its position")
    try:
        if target.path is not None:
            return await _tail_file(target, ctx, started_at, t0)
        return await _query_loki(target, ctx, started_at, t0)
    except SQLAlchemyError as exc:
        return failed(target, started_at, elapsed_ms(t0),
                      f"cannot keep the log position in the ledger: {str(exc).splitlines()[0]}")


# --- local file -----------------------------------------------------------------------------
async def _tail_file(target: LogsTarget, ctx: ProbeContext, started_at: datetime, t0: float) -> ProbeResult:
    try:
        lines = await asyncio.to_thread(_read_new_lines, target, ctx, started_at)
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        return failed(target, started_at, elapsed_ms(t0), f"cannot read {target.path}: {reason}")
    return _counted(target, started_at, t0, lines)


def _read_new_lines(target: LogsTarget, ctx: ProbeContext, now: datetime) -> list[str]:
    cursor = queries.log_cursor(ctx.engine, target.name)
    # Non-blocking open: a FIFO at the path must not hang the probe; it is refused below.
    with open(os.open(target.path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
        st = os.fstat(file.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError("not a regular file")
        inode = f"{st.st_dev}:{st.st_ino}"
        if cursor is None or cursor.path != target.path:
            offset, chunk = st.st_size, b""  # first run: start at the end
        else:
            same_file = cursor.inode == inode and cursor.offset <= st.st_size
            offset = cursor.offset if same_file else 0  # rotated or truncated: from the start
            file.seek(offset)
            chunk = file.read(ctx.max_body_bytes)
    complete = chunk[:chunk.rfind(b"\n") + 1]
    if not complete and len(chunk) == ctx.max_body_bytes:
        complete = chunk  # one line longer than a run may read: take it in pieces
    with write_session(ctx.engine) as session:
        observations.save_log_cursor(session, target.name, path=target.path, inode=inode,
                             offset=offset + len(complete), now=now)
    text = complete.decode("utf-8", errors="replace")
    return text.removesuffix("\n").split("\n") if text else []


# --- Loki -----------------------------------------------------------------------------------
async def _query_loki(target: LogsTarget, ctx: ProbeContext, started_at: datetime, t0: float) -> ProbeResult:
    cursor = await asyncio.to_thread(queries.log_cursor, ctx.engine, target.name)
    end = _ns(started_at)
    if cursor is None or cursor.path != target.loki_url:
        start = end - target.interval // _MICROSECOND * 1000  # first run: the last interval
    else:
        start = cursor.offset
    params = [("query", target.query), ("start", str(start)), ("end", str(end)),
              ("direction", "forward"), ("limit", str(LOKI_LIMIT))]
    answer = await get_api(target, ctx, started_at, t0, target.loki_url.rstrip("/") + "/loki/api/v1/query_range",
                           params, "loki")
    if isinstance(answer, ProbeResult):
        return answer
    try:
        entries = _stream_entries(answer.status, answer.body)
    except QueryFailed as exc:
        return observe(target, started_at, answer.elapsed, {"CONNECTED": True}, status=answer.status,
                       error=f"loki: {exc}", secrets=answer.secrets)
    resume = max(ts for ts, _ in entries) + 1 if len(entries) >= LOKI_LIMIT else end
    await asyncio.to_thread(_save_loki_cursor, ctx, target, resume, started_at)
    return _counted(target, started_at, t0, [line for _, line in entries], answer.secrets)


def _stream_entries(status: int, body: bytes) -> list[tuple[int, str]]:
    """(timestamp ns, line) of every entry of a query_range answer. Loki's errors are plain
    text (``parse error at line 1, col 15: ...``): the reason quotes them on one line."""
    text = body.decode("utf-8", errors="replace")
    if status != 200:
        raise QueryFailed(f"HTTP {status}: {_one_line(text)}")
    try:
        data = parse_json(text)["data"]
        kind, result = data["resultType"], data["result"]
    except (ValueError, KeyError, TypeError):
        raise QueryFailed(f"HTTP {status}, not a query result: {_one_line(text)}") from None
    if kind != "streams":
        raise QueryFailed(f"a {kind} result, not streams: the query must select log lines, not compute a metric")
    try:
        return [(int(ts), str(line)) for stream in result for ts, line in stream["values"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise QueryFailed(f"malformed streams result ({type(exc).__name__}: {exc})") from None


def _save_loki_cursor(ctx: ProbeContext, target: LogsTarget, offset: int, now: datetime) -> None:
    with write_session(ctx.engine) as session:
        observations.save_log_cursor(session, target.name, path=target.loki_url, inode=None, offset=offset, now=now)


def _ns(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND * 1000


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split()) or "(empty body)"
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


# --- counting -------------------------------------------------------------------------------
def _counted(target: LogsTarget, started_at: datetime, t0: float, lines: list[str],
             secrets: list[str] = ()) -> ProbeResult:
    """The observation (LINES, MATCHES) and the samples log_lines and log_signature_matches."""
    patterns = [(signature.name, re.compile(signature.pattern)) for signature in target.signatures]
    per_signature = dict.fromkeys((name for name, _ in patterns), 0)
    matches = 0
    for line in lines:
        hits = [name for name, pattern in patterns if pattern.search(line)]
        for name in hits:
            per_signature[name] += 1
        matches += bool(hits)
    labels = {"service": target.service, "target": target.name, "kind": target.kind}
    samples = [Sample("log_lines", labels, float(len(lines)), started_at)]
    samples += [Sample("log_signature_matches", {**labels, "signature": name}, float(count), started_at)
                for name, count in per_signature.items()]
    values = {"LINES": len(lines), "MATCHES": matches, "CONNECTED": True}
    return observe(target, started_at, elapsed_ms(t0), values, secrets=secrets, samples=samples)


# --- the latest lines, for reading (``workbench mcp``) ----------------------------------------
def latest_lines(target: LogsTarget, limit: int, max_bytes: int, env=os.environ, timeout: float = 10.0) -> list[str]:
    """The last ``limit`` lines of the target's source, newest last, reading at most ``max_bytes``
    of a file's end, or asking Loki for the newest ``limit`` entries of the last hour. Nothing is
    recorded: the probe's own position is left as it is."""
    if target.path is not None:
        with open(os.open(target.path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
            st = os.fstat(file.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise OSError("not a regular file")
            file.seek(max(0, st.st_size - max_bytes))
            chunk = file.read(max_bytes)
        lines = chunk.decode("utf-8", errors="replace").splitlines()
        return lines[1:][-limit:] if st.st_size > max_bytes else lines[-limit:]  # the first may be cut
    url, headers, _ = expand_request(target, env, target.loki_url.rstrip("/") + "/loki/api/v1/query_range")
    end = _ns(datetime.now(UTC))
    answer = httpx.get(url, headers=headers, timeout=timeout, trust_env=False, follow_redirects=False,
                       params={"query": target.query, "start": str(end - 3600 * 10**9), "end": str(end),
                               "direction": "backward", "limit": str(limit)})
    if len(answer.content) > max_bytes:
        raise QueryFailed(f"Loki's answer is larger than {max_bytes} bytes: ask for fewer lines")
    entries = _stream_entries(answer.status_code, answer.content)
    return [line for _, line in sorted(entries)][-limit:]
