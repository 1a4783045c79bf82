"""What every probe run gets besides its target: the shared client and injected side effects."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
from sqlalchemy import Engine

from ledger.db import utcnow
from ledger.repo.alerts import AlertEvent
from ledger.samples import Sample
from ledger.tables import Observation
from policies.conditions import Noted
from policies.secrets import redact

TLS_ERROR = "TLS error: "
UNVERIFIED_MAX_CONNECTIONS = 100  # pool of the client for targets with verify_tls: false
USER_AGENT = "sre-workbench-probe"


class QueryFailed(Exception):
    """An API's answer (Prometheus, Loki) is not a usable query result; the message is the reason."""


def elapsed_ms(t0: float) -> float:
    """Milliseconds since ``t0``, a ``time.perf_counter()`` reading."""
    return (time.perf_counter() - t0) * 1000


@dataclass
class ProbeResult:
    """What one probe run gives: the observation for the ledger, series for the samples
    store, and alerts (from Alertmanager) for the alert envelope."""

    observation: Observation
    samples: list[Sample] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)


@dataclass
class ProbeContext:
    client: ProbeClient
    max_body_bytes: int = 1_048_576
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    now: Callable[[], datetime] = utcnow
    engine: Engine | None = None  # the ledger, for probes that keep a position (logs)
    readings: dict = field(default_factory=dict)  # what a probe keeps from one run to the next (host counters)
    # the threads that record results (None: the event loop's default ones); a worker keeps its own,
    # so that a backlog of results never holds up its web endpoints
    recorder: Executor | None = None
    _unverified: ProbeClient | None = field(default=None, init=False, repr=False)
    _verifying: ssl.SSLContext | None = field(default=None, init=False, repr=False)

    async def aclose(self) -> None:
        await self.client.aclose()
        if self._unverified is not None:
            await self._unverified.aclose()

    def client_for(self, verify_tls: bool) -> ProbeClient:
        """The shared client, or for targets with ``verify_tls: false`` a second one that skips
        certificate checks, built on first use; it keeps no idle connection."""
        if verify_tls:
            return self.client
        if self._unverified is None:
            self._unverified = ProbeClient(UNVERIFIED_MAX_CONNECTIONS, verify=False, keepalive=False,
                                           user_agent=self.client.user_agent)
        return self._unverified

    def verifying_context(self) -> ssl.SSLContext:
        """TLS settings that verify against the system's trust store, loaded on first use."""
        if self._verifying is None:
            self._verifying = ssl.create_default_context()
        return self._verifying


class _CertificateConnector(aiohttp.TCPConnector):
    """Remembers the certificate (DER, verified or not) each server presented, by host and port:
    read from the transport of every connection the pool hands out (``connect``, new or kept
    alive), None over plain HTTP. aiohttp gives no response its certificate: a response whose body
    came in whole has already returned its connection to the pool (aio-libs/aiohttp#2816)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.certificates: dict[tuple[str, int], bytes | None] = {}

    async def connect(self, req, *args, **kwargs):
        connection = await super().connect(req, *args, **kwargs)
        tls = connection.transport.get_extra_info("ssl_object") if connection.transport else None
        self.certificates[(req.url.host, req.url.port)] = tls.getpeercert(binary_form=True) if tls else None
        return connection


class ProbeClient:
    """The HTTP client the probes share: one aiohttp session over one connection pool, built on
    first use inside the running loop. Plain aiohttp: on this project's machine the httpx layer
    over it cost more CPU per probe than aiohttp's whole request, and httpx's own pool made an
    eighth of the probes per second (bench/probe_throughput.py). Callers bound each request
    with their own deadline; ``certificate`` gives the certificate a TLS server presented."""

    def __init__(self, max_connections: int, *, verify: bool | ssl.SSLContext = True, keepalive: bool = True,
                 user_agent: str = USER_AGENT):
        self.max_connections, self.verify, self.keepalive = max_connections, verify, keepalive
        self.user_agent = user_agent
        self._connector: _CertificateConnector | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._connector = _CertificateConnector(ssl=self.verify, limit=self.max_connections,
                                                    force_close=not self.keepalive)
            self._session = aiohttp.ClientSession(connector=self._connector, headers={"User-Agent": self.user_agent},
                                                  timeout=aiohttp.ClientTimeout(total=None), trust_env=False)
        return self._session

    def certificate(self, url) -> bytes | None:
        """The certificate (DER, verified or not) the server at ``url`` (a yarl URL) presented."""
        return self._connector.certificates.get((url.host, url.port)) if self._connector else None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> ProbeClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


def observe(target, started_at: datetime, duration_ms: float, values: dict, *, status: int | None = None,
            error: str | None = None, secrets: list[str] = (), samples: list[Sample] = (),
            alerts: list[AlertEvent] = ()) -> ProbeResult:
    """Evaluate the target's conditions over ``values`` and build the observation, redacted."""
    checks = []
    if error is None:
        for condition in target.parsed_conditions:
            result = condition.evaluate(values)
            checks.append({"condition": result.condition, "ok": result.ok,
                           "actual": redact(result.actual, secrets), "text": redact(result.text, secrets)})
    ok = error is None and all(check["ok"] for check in checks)
    if error is None and not ok:
        error = "; ".join(check["text"] for check in checks if not check["ok"])
    plain = {k: v.value if isinstance(v, Noted) else v for k, v in values.items()}
    stored = {k: v for k, v in plain.items() if isinstance(v, (int, float, bool)) and v is not None}
    observation = Observation(
        target=target.name, kind=target.kind, service=target.service, ok=ok, started_at=started_at,
        duration_ms=round(duration_ms, 3), status=status,
        error=redact(error, secrets) if error else None, checks=checks, values=stored,
    )
    return ProbeResult(observation, list(samples), list(alerts))


def failed(target, started_at: datetime, duration_ms: float, reason: str, secrets: list[str] = ()) -> ProbeResult:
    return observe(target, started_at, duration_ms, {}, error=reason, secrets=secrets)


def error_reason(exc: BaseException) -> str:
    """The most specific message in the exception chain (aiohttp and asyncio wrap the OS or TLS
    error): 'connection refused', 'TLS error: certificate has expired'."""
    seen = exc
    while True:
        if isinstance(seen, aiohttp.ClientConnectorError) and seen.os_error is not seen:
            seen = seen.os_error  # the OS or TLS error it wraps (a TLS one is an ssl.SSLError itself)
            continue
        if isinstance(seen, ssl.SSLCertVerificationError):
            inner = getattr(seen, "certificate_error", seen)  # aiohttp wraps the ssl module's error
            return TLS_ERROR + (getattr(inner, "verify_message", None) or str(inner))
        if isinstance(seen, ssl.SSLError):
            return TLS_ERROR + (getattr(seen, "reason", None) or str(seen)).lower().replace("_", " ")
        if isinstance(seen, socket.gaierror):
            return str(seen.strerror or seen).lower()
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno).lower()
        if not (seen.__cause__ or seen.__context__):
            return str(seen) or str(exc) or type(exc).__name__
        seen = seen.__cause__ or seen.__context__


def connect_failure(exc: BaseException) -> str:
    """Why a connection was not made: 'cannot connect: connection refused', or the TLS verdict."""
    reason = error_reason(exc)
    return reason if reason.startswith(TLS_ERROR) else f"cannot connect: {reason}"


async def close_stream(writer: asyncio.StreamWriter, timeout: float = 1.0) -> None:
    """Close a connection a probe opened, waiting a bounded time for the (TLS) shutdown."""
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(timeout):
            await writer.wait_closed()
