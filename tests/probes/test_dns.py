"""The dns probe against a tiny UDP DNS server on 127.0.0.1 (dnspython builds its answers),
a resolver that never answers and a closed port."""

import asyncio
import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from policies.schema import DnsTarget
from probes.context import ProbeClient, ProbeContext
from probes.kinds import dns as dns_probe

ADDRESSES = ("192.0.2.1", "192.0.2.2")


class DnsServer:
    """Answers A queries for ok.test. with ADDRESSES, SERVFAIL for broken.test., nothing but
    NOERROR for other types of ok.test., and NXDOMAIN for every other name; with ``truncate``,
    an empty answer marked truncated (the client should retry over TCP)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.truncate = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                data, client = self.sock.recvfrom(4096)
            except OSError:
                continue
            query = dns.message.from_wire(data)
            question = query.question[0]
            response = dns.message.make_response(query)
            if self.truncate:
                response.flags |= dns.flags.TC
            elif question.name.to_text() == "ok.test.":
                if question.rdtype == dns.rdatatype.A:
                    response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", *ADDRESSES))
            elif question.name.to_text() == "broken.test.":
                response.set_rcode(dns.rcode.SERVFAIL)
            else:
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(response.to_wire(), client)

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.fixture
def server():
    s = DnsServer()
    yield s
    s.close()


def target(resolver: str, query_name: str = "ok.test", **extra) -> DnsTarget:
    fields = {"name": "t", "kind": "dns", "service": "s", "query_name": query_name, "resolver": resolver,
              "interval": "10s", "timeout": "500ms", "conditions": ["[DNS_RCODE] == NOERROR"], **extra}
    return DnsTarget.model_validate(fields)


def probe(t: DnsTarget):
    async def go():
        async with ProbeClient(1) as client:
            return (await dns_probe.run(t, ProbeContext(client))).observation
    return asyncio.run(go())


def test_answers_are_measured(server):
    obs = probe(target(server.address, conditions=[
        "[DNS_RCODE] == NOERROR", "[RECORD_COUNT] == 2", "[BODY] matches ^192\\.0\\.2\\.1\\n192\\.0\\.2\\.2$",
        "[CONNECTED] == true"]))
    assert obs.ok, obs.error
    assert obs.checks[1]["text"] == "[RECORD_COUNT] == 2 -> got 2"
    assert obs.values["RECORD_COUNT"] == 2 and obs.values["CONNECTED"] is True


def test_no_record_of_that_type(server):
    obs = probe(target(server.address, record_type="AAAA", conditions=["[DNS_RCODE] == NOERROR", "[RECORD_COUNT] > 0"]))
    assert obs.error == "[RECORD_COUNT] > 0 -> got 0"


def test_nxdomain_is_a_measured_answer_the_conditions_judge(server):
    assert probe(target(server.address, "missing.test", conditions=["[DNS_RCODE] == NXDOMAIN"])).ok
    obs = probe(target(server.address, "missing.test"))
    assert obs.error == "[DNS_RCODE] == NOERROR -> got NXDOMAIN"
    assert obs.values["RECORD_COUNT"] == 0


def test_servfail_is_measured_too(server):
    obs = probe(target(server.address, "broken.test"))
    assert obs.error == "[DNS_RCODE] == NOERROR -> got SERVFAIL"


def test_resolver_that_never_answers_times_out():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        address = "127.0.0.1:%d" % silent.getsockname()[1]
        obs = probe(target(address))
    assert not obs.ok and obs.error == f"timed out after 0.5s: no answer from {address}"
    assert obs.values == {}


def test_truncated_answer_and_no_tcp_is_no_answer(server):
    server.truncate = True  # the probe retries over TCP, where nothing listens
    obs = probe(target(server.address))
    assert obs.error == (f"no answer from the resolver: Do53:{server.address.replace(':', '@')}: Truncated; "
                         f"Do53:{server.address.replace(':', '@')} over TCP: connection refused")


def test_resolver_address_that_is_not_an_address():
    obs = probe(target("resolver.example:53"))
    assert obs.error.startswith("bad resolver address 'resolver.example:53': ")


@pytest.mark.parametrize("address,nameserver,port", [
    ("127.0.0.1", "127.0.0.1", 53), ("127.0.0.1:5353", "127.0.0.1", 5353),
    ("[::1]:5353", "::1", 5353), ("::1", "::1", 53),
])
def test_resolver_addresses(address, nameserver, port):
    resolver = dns_probe._resolver(address, 1.0)
    assert (resolver.nameservers, resolver.port) == ([nameserver], port)
