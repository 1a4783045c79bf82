"""The runners, one function per kind, registered in RUNNERS, all with one signature:
``run(runner, values, ctx) -> RunResult``. A run never raises: a timeout, a refused
connection, a missing program or secret are a failed (or timed-out) result with the reason.
Output is captured, cut at ``ctx.max_bytes`` and redacted before anyone records it.

Templates take secrets from the environment first (``${NAME}``), then the parameters
(``{{name}}``), so a parameter's value can never pull in a secret; a secret parameter's own
reference is read from the environment at run time and masked in everything recorded.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from ledger.lifecycle import RequestStatus
from policies.actions import (
    PLACEHOLDER,
    Action,
    CommandRunner,
    NotifyRunner,
    WebhookRunner,
)
from policies.secrets import MissingSecret, expand, redact

COMMAND_PATH = "/usr/local/bin:/usr/bin:/bin"
_CHUNK = 65_536


@dataclass(frozen=True)
class RunResult:
    status: str  # succeeded | failed | timed_out
    output: str  # captured, cut and redacted
    seconds: float
    note: str | None = None  # a line for the incident's timeline (notify)


@dataclass
class RunContext:
    env: Mapping[str, str]
    timeout: float
    max_bytes: int
    secrets: list[str] = field(default_factory=list)  # values read from the environment, to mask

    def render(self, template: str, values: Mapping[str, object], url: bool = False) -> str:
        """The template with its ``${NAME}`` secrets, then its ``{{name}}`` parameters, filled in."""
        expanded, used = expand(template, self.env)
        self.secrets += used
        return fill(expanded, values, url)

    def finish(self, status: str, output: str, started: float, note: str | None = None) -> RunResult:
        return RunResult(status, redact(output, self.secrets), round(time.monotonic() - started, 3),
                         None if note is None else redact(note, self.secrets))


def fill(template: str, values: Mapping[str, object], url: bool = False) -> str:
    """``{{name}}`` replaced by the value (URL-quoted in a URL); unknown names are left as they are."""
    def value(match):
        name = match.group(1)
        if name not in values:
            return match.group(0)
        text = str(values[name]).lower() if isinstance(values[name], bool) else str(values[name])
        return quote(text, safe="") if url else text

    return PLACEHOLDER.sub(value, template)


def plan(action: Action, parameters: Mapping[str, object]) -> str:
    """What a run does, in words an operator checks before approving: the request or the
    command line, parameters filled in, secrets as their ``${NAME}`` references; redacted."""
    runner = action.runner
    if isinstance(runner, WebhookRunner):
        lines = [f"{runner.method} {fill(runner.url, parameters, url=True)}"]
        lines += [f"{name}: {fill(value, parameters)}" for name, value in runner.headers.items()]
        lines += [f"\n{fill(runner.body, parameters)}"] if runner.body else []
    elif isinstance(runner, CommandRunner):
        lines = [shlex.join([fill(arg, parameters) for arg in runner.argv])]
        lines += [f"env {name}={fill(value, parameters)}" for name, value in runner.env.items()]
    else:
        lines = [f"note: {fill(runner.message, parameters)}"]
    return redact("\n".join(lines))


def run(action: Action, parameters: Mapping[str, object], env: Mapping[str, str], max_bytes: int) -> RunResult:
    """Run ``action`` with validated ``parameters`` within its timeout."""
    ctx = RunContext(env, action.timeout.total_seconds(), max_bytes)
    started = time.monotonic()
    try:
        values = {name: ctx.render(value, {}) if action.parameters[name].secret else value
                  for name, value in parameters.items()}
        return RUNNERS[action.runner.kind](action.runner, values, ctx)
    except MissingSecret as exc:
        return ctx.finish(RequestStatus.FAILED, f"not run: {exc}", started)
    except Exception as exc:  # a runner bug must not leave the request running
        last = traceback.extract_tb(exc.__traceback__)[-1]
        return ctx.finish(RequestStatus.FAILED, f"runner error {type(exc).__name__}: {exc} "
                                  f"({last.filename.rsplit('/', 1)[-1]}:{last.lineno})", started)


def run_webhook(runner: WebhookRunner, values: Mapping[str, object], ctx: RunContext) -> RunResult:
    started = time.monotonic()
    url = ctx.render(runner.url, values, url=True)
    headers = {name: ctx.render(value, values) for name, value in runner.headers.items()}
    body = ctx.render(runner.body, values) if runner.body else None
    try:
        with httpx.Client(timeout=ctx.timeout, trust_env=False, follow_redirects=False) as client:
            with client.stream(runner.method, url, headers=headers, content=body) as response:
                text, complete = _read_answer(response, ctx.max_bytes, started + ctx.timeout)
    except httpx.TimeoutException:
        return ctx.finish(RequestStatus.TIMED_OUT, f"{runner.method} {url}: no answer within {ctx.timeout:g}s", started)
    except httpx.HTTPError as exc:
        return ctx.finish(RequestStatus.FAILED, f"{runner.method} {url}: {type(exc).__name__}: {exc}", started)
    if not complete:
        return ctx.finish(RequestStatus.TIMED_OUT, f"HTTP {response.status_code}: the answer did not end within "
                                     f"{ctx.timeout:g}s\n{text}", started)
    status = RequestStatus.SUCCEEDED if 200 <= response.status_code < 300 else RequestStatus.FAILED
    return ctx.finish(status, f"HTTP {response.status_code} {response.reason_phrase}\n{text}", started)


def _read_answer(response: httpx.Response, max_bytes: int, deadline: float) -> tuple[str, bool]:
    """The body as text, cut at ``max_bytes``; False when the deadline passed first."""
    kept, total = bytearray(), 0
    for chunk in response.iter_raw(_CHUNK):
        total += len(chunk)
        kept += chunk[: max(0, max_bytes - len(kept))]
        if time.monotonic() > deadline:
            return _cut(bytes(kept), total), False
    return _cut(bytes(kept), total), True


def _cut(kept: bytes, total: int) -> str:
    text = kept.decode("utf-8", errors="replace")
    return text if total <= len(kept) else f"{text}\n... (cut: {total:,} bytes in all)"


def run_command(runner: CommandRunner, values: Mapping[str, object], ctx: RunContext) -> RunResult:
    """The program with its arguments, no shell, in its own process group (killed whole on
    timeout), with PATH, LANG and the runner's ``env`` only: the worker's environment (and its
    secrets) stays out."""
    started = time.monotonic()
    argv = [runner.argv[0], *(ctx.render(arg, values) for arg in runner.argv[1:])]
    env = {"PATH": COMMAND_PATH, "LANG": "C.UTF-8", **{k: ctx.render(v, values) for k, v in runner.env.items()}}
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env=env, cwd="/", start_new_session=True)
    except OSError as exc:
        return ctx.finish(RequestStatus.FAILED, f"cannot start {argv[0]}: {exc.strerror or exc}", started)
    reader = _Reader(process.stdout, ctx.max_bytes)
    try:
        code = process.wait(timeout=ctx.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return ctx.finish(RequestStatus.TIMED_OUT, f"killed after {ctx.timeout:g}s\n{reader.text()}", started)
    status = RequestStatus.SUCCEEDED if code == 0 else RequestStatus.FAILED
    return ctx.finish(status, f"exit status {code}\n{reader.text()}", started)


class _Reader:
    """Reads a pipe to its end in a thread, keeping its first ``limit`` bytes."""

    def __init__(self, pipe, limit: int):
        self.pipe, self.limit, self.kept, self.total = pipe, limit, bytearray(), 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with self.pipe:
            while chunk := os.read(self.pipe.fileno(), _CHUNK):
                self.total += len(chunk)
                self.kept += chunk[: max(0, self.limit - len(self.kept))]

    def text(self) -> str:
        self.thread.join(timeout=5)  # a child that left the process group may hold the pipe open
        return _cut(bytes(self.kept), self.total)


def run_notify(runner: NotifyRunner, values: Mapping[str, object], ctx: RunContext) -> RunResult:
    started = time.monotonic()
    message = ctx.render(runner.message, values)
    return ctx.finish(RequestStatus.SUCCEEDED, f"note recorded: {message}", started, note=message)


RUNNERS = {"webhook": run_webhook, "command": run_command, "notify": run_notify}
