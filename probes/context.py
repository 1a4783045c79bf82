"""What every probe run gets besides its target: the shared client and injected side effects."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from sqlalchemy import Engine

from ledger.db import utcnow
from ledger.repo import AlertEvent
from ledger.samples import Sample
from ledger.tables import Observation
from policies.conditions import Noted
from policies.secrets import redact

TLS_ERROR = "TLS error: "
UNVERIFIED_MAX_CONNECTIONS = 100  # pool of the client for targets with verify_tls: false


@dataclass
class ProbeResult:
    """What one probe run gives: the observation for the ledger, series for the samples
    store, and alerts (from Alertmanager) for the alert envelope."""

    observation: Observation
    samples: list[Sample] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)


@dataclass
class ProbeContext:
    client: httpx.AsyncClient
    max_body_bytes: int = 1_048_576
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    now: Callable[[], datetime] = utcnow
    proc: Path = Path("/proc")
    engine: Engine | None = None  # the ledger, for probes that keep a position (logs)
    _unverified: httpx.AsyncClient | None = field(default=None, init=False, repr=False)
    _verifying: ssl.SSLContext | None = field(default=None, init=False, repr=False)

    async def aclose(self) -> None:
        await self.client.aclose()
        if self._unverified is not None:
            await self._unverified.aclose()

    def client_for(self, verify_tls: bool) -> httpx.AsyncClient:
        """The shared client, or for targets with ``verify_tls: false`` a second one that skips
        certificate checks, built on first use; it keeps no idle connection."""
        if verify_tls:
            return self.client
        if self._unverified is None:
            self._unverified = make_client(UNVERIFIED_MAX_CONNECTIONS, verify=False, keepalive=False)
        return self._unverified

    def verifying_context(self) -> ssl.SSLContext:
        """TLS settings that verify against the system's trust store, loaded on first use."""
        if self._verifying is None:
            self._verifying = ssl.create_default_context()
        return self._verifying


class _CertificateConnector(aiohttp.TCPConnector):
    """Remembers the certificate each TLS server presented, by host and port."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.certificates: dict[tuple[str, int], bytes | None] = {}

    async def _create_connection(self, req, traces, timeout):
        protocol = await super()._create_connection(req, traces, timeout)
        tls = protocol.transport.get_extra_info("ssl_object") if protocol.transport else None
        if tls is not None:
            self.certificates[(req.url.host, req.url.port)] = tls.getpeercert(binary_form=True)
        return protocol


class ProbeTransport(AiohttpTransport):
    """httpx over aiohttp: on this project's machine it makes about 8 times the probes per
    second of httpx's own connection pool (bench/probe_throughput.py). It also hands the
    server's certificate to the probe (extension ``tls_certificate``), and without keep-alive
    closes every connection after use."""

    def __init__(self, *, keepalive: bool, **kwargs):
        super().__init__(**kwargs)
        self.keepalive = keepalive
        self.connector: _CertificateConnector | None = None

    def get_client(self) -> aiohttp.ClientSession:
        self.connector = _CertificateConnector(ssl=self.ssl_context, limit=self.limits.max_connections,
                                               force_close=not self.keepalive)
        return aiohttp.ClientSession(connector=self.connector)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.url.scheme == "https":
            response.extensions["tls_certificate"] = self.connector.certificates.get(
                (request.url.host, request.url.port or 443))
        return response


def make_client(max_connections: int, *, verify: bool = True, keepalive: bool = True) -> httpx.AsyncClient:
    """The one probe client, built once and shared; each probe sets its own deadline."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncClient(
        transport=ProbeTransport(verify=verify, limits=limits, keepalive=keepalive, trust_env=False),
        timeout=httpx.Timeout(30.0),
        headers={"User-Agent": "sre-workbench-probe"},
        trust_env=False,
    )


def observe(target, started_at: datetime, duration_ms: float, values: dict, *, status: int | None = None,
            error: str | None = None, secrets: list[str] = (), samples: list[Sample] = (),
            alerts: list[AlertEvent] = ()) -> ProbeResult:
    """Evaluate the target's conditions over ``values`` and build the observation, redacted."""
    checks = []
    if error is None:
        for condition in target.parsed_conditions():
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
    """The most specific message in the exception chain (httpx and asyncio wrap the OS or TLS
    error): 'connection refused', 'TLS error: certificate has expired'."""
    seen = exc
    while True:
        if isinstance(seen, ssl.SSLCertVerificationError):
            inner = getattr(seen, "certificate_error", seen)  # aiohttp wraps the ssl module's error
            return TLS_ERROR + (getattr(inner, "verify_message", None) or str(inner))
        if isinstance(seen, ssl.SSLError):
            return TLS_ERROR + (seen.reason or str(seen)).lower().replace("_", " ")
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
