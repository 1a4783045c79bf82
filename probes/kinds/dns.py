"""DNS probe: one query through dnspython's async resolver.

Any response code the resolver answers with (NOERROR, NXDOMAIN, SERVFAIL, ...) is measured
and the conditions judge it; no answer at all (a timeout, a refused port) is a failed run.
"""

from __future__ import annotations

import time

import dns.asyncresolver
import dns.exception
import dns.rcode
import dns.resolver

from policies.schema import DnsTarget
from probes.context import ProbeContext, elapsed_ms, error_reason, failed, observe


async def run(target: DnsTarget, ctx: ProbeContext):
    started_at = ctx.now()
    t0 = time.perf_counter()
    timeout = target.probe_timeout.total_seconds()
    records: list[str] = []
    try:
        resolver = _resolver(target.resolver, timeout)
        answer = await resolver.resolve(target.query_name, target.record_type, raise_on_no_answer=False)
        rcode, records = "NOERROR", sorted(rdata.to_text() for rdata in answer.rrset or ())
    except dns.resolver.NXDOMAIN:
        rcode = "NXDOMAIN"
    except dns.resolver.NoNameservers as exc:
        rcode = _answered(exc)
        if rcode is None:
            return failed(target, started_at, elapsed_ms(t0), f"no answer from the resolver: {_errors(exc)}")
    except dns.exception.Timeout:
        return failed(target, started_at, elapsed_ms(t0),
                      f"timed out after {timeout:g}s: no answer from {target.resolver or 'the system resolver'}")
    except ValueError as exc:
        return failed(target, started_at, elapsed_ms(t0), f"bad resolver address {target.resolver!r}: {exc}")
    except dns.exception.DNSException as exc:
        return failed(target, started_at, elapsed_ms(t0), f"DNS error: {exc}")
    elapsed = elapsed_ms(t0)
    values = {"DNS_RCODE": rcode, "BODY": "\n".join(records), "RECORD_COUNT": len(records),
              "RESPONSE_TIME": elapsed, "CONNECTED": True}
    return observe(target, started_at, elapsed, values)


def _resolver(address: str | None, lifetime: float) -> dns.asyncresolver.Resolver:
    """The system's resolver, or one asking only ``address`` (host, host:port, [v6]:port)."""
    resolver = dns.asyncresolver.Resolver(configure=address is None)
    if address is not None:
        if address.startswith("["):
            host, _, port = address[1:].partition("]")
            port = port.removeprefix(":")
        elif address.count(":") == 1:
            host, _, port = address.partition(":")
        else:
            host, port = address, ""
        resolver.nameservers = [host]
        resolver.port = int(port or 53)
    resolver.lifetime = lifetime
    return resolver


def _answered(exc: dns.resolver.NoNameservers) -> str | None:
    """The response code a resolver answered with, when the resolver gave up on an answer."""
    for *_, response in exc.kwargs["errors"]:
        if response is not None:
            return dns.rcode.to_text(response.rcode())
    return None


def _errors(exc: dns.resolver.NoNameservers) -> str:
    """What went wrong with each server: 'Do53:127.0.0.1@53 over TCP: connection refused'."""
    return "; ".join(f"{server}{' over TCP' if tcp else ''}: "
                     f"{error_reason(error) if isinstance(error, BaseException) else error}"
                     for server, tcp, _, error, _ in exc.kwargs["errors"]) or str(exc)
