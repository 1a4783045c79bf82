"""TLS probe: a handshake with SNI, the days left on the server's certificate and whether its
chain verifies against the system's trust store.

A chain that does not verify is measured, not a failure: [CHAIN_VALID] is false with the
verifier's reason, and the certificate is fetched again without verification so that
[CERTIFICATE_EXPIRATION] is still reported (negative once expired).
"""

from __future__ import annotations

import asyncio
import ssl
import time

from policies.conditions import Noted
from policies.schema import TlsTarget
from probes.certs import days_left
from probes.context import (
    ProbeContext,
    close_stream,
    connect_failure,
    elapsed_ms,
    failed,
    observe,
)


async def run(target: TlsTarget, ctx: ProbeContext):
    started_at = ctx.now()
    t0 = time.perf_counter()
    timeout = target.probe_timeout.total_seconds()
    try:
        async with asyncio.timeout(timeout):
            writer, chain_valid = await _handshake(target, ctx.verifying_context())
    except TimeoutError:
        return failed(target, started_at, elapsed_ms(t0), f"timed out after {timeout:g}s")
    except OSError as exc:
        return failed(target, started_at, elapsed_ms(t0), connect_failure(exc))
    try:
        elapsed = elapsed_ms(t0)
        certificate = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        await close_stream(writer)
    values = {"CONNECTED": True, "RESPONSE_TIME": elapsed, "CHAIN_VALID": chain_valid,
              "CERTIFICATE_EXPIRATION": days_left(certificate, ctx.now())}
    return observe(target, started_at, elapsed, values)


async def _handshake(target: TlsTarget, verifying: ssl.SSLContext) -> tuple[asyncio.StreamWriter, bool | Noted]:
    """A verified connection, or when verification fails an unverified one and the reason."""
    server_name = target.server_name or target.host
    try:
        _, writer = await asyncio.open_connection(target.host, target.port, ssl=verifying,
                                                  server_hostname=server_name)
        return writer, True
    except ssl.SSLCertVerificationError as exc:
        _, writer = await asyncio.open_connection(target.host, target.port, ssl=_unverified(),
                                                  server_hostname=server_name)
        return writer, Noted(False, exc.verify_message or str(exc))


def _unverified() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
