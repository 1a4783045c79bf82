"""The tls probe against real TLS servers on 127.0.0.1 with certificates made by the test.
The test CA is trusted, when a case needs it, through SSL_CERT_FILE (what the system trust
store reads first)."""

import asyncio
import socket
import threading
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from policies.schema import TlsTarget
from probes.certs import days_left
from probes.context import ProbeClient, ProbeContext
from probes.kinds import tls
from tests.probes.tls_support import (
    EXPIRED_DAYS,
    NOW,
    SELF_SIGNED_DAYS,
    VALID_DAYS,
    HttpsServer,
    _builder,
    _name,
    make_certs,
)
from tests.support import free_port


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def trust_test_ca(certs, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca))


def target(port: int, **extra) -> TlsTarget:
    fields = {"name": "t", "kind": "tls", "service": "s", "host": "127.0.0.1", "port": port, "interval": "10s",
              "timeout": "500ms", "conditions": ["[CHAIN_VALID] == true", "[CERTIFICATE_EXPIRATION] > 7"], **extra}
    return TlsTarget.model_validate(fields)


def probe(t: TlsTarget):
    async def go():
        async with ProbeClient(1) as client:
            return (await tls.run(t, ProbeContext(client, now=lambda: NOW))).observation
    return asyncio.run(go())


@pytest.mark.usefixtures("trust_test_ca")
@pytest.mark.parametrize("server_name", [None, "localhost"])
def test_valid_certificate(certs, server_name):
    with HttpsServer(certs.valid) as server:
        obs = probe(target(server.port, server_name=server_name))
    assert obs.ok, obs.error
    assert obs.values["CHAIN_VALID"] is True and obs.values["CERTIFICATE_EXPIRATION"] == VALID_DAYS
    assert obs.checks[1]["text"] == f"[CERTIFICATE_EXPIRATION] > 7 -> got {VALID_DAYS:.1f}"


def test_self_signed_certificate_is_measured_not_an_error(certs):
    with HttpsServer(certs.self_signed) as server:
        obs = probe(target(server.port))
    assert obs.error == "[CHAIN_VALID] == true -> got false (self-signed certificate)"
    assert obs.values["CHAIN_VALID"] is False and obs.values["CERTIFICATE_EXPIRATION"] == SELF_SIGNED_DAYS
    assert obs.values["CONNECTED"] is True


@pytest.mark.usefixtures("trust_test_ca")
def test_expired_certificate_reports_negative_days(certs):
    with HttpsServer(certs.expired) as server:
        obs = probe(target(server.port))
    assert obs.error == ("[CHAIN_VALID] == true -> got false (certificate has expired); "
                         f"[CERTIFICATE_EXPIRATION] > 7 -> got {EXPIRED_DAYS:.1f}")
    assert obs.values["CERTIFICATE_EXPIRATION"] == EXPIRED_DAYS


def test_certificate_from_an_unknown_ca(certs):
    with HttpsServer(certs.valid) as server:
        obs = probe(target(server.port, conditions=["[CHAIN_VALID] == false"]))
    assert obs.ok
    assert obs.checks[0]["text"] == "[CHAIN_VALID] == false -> got false (unable to get local issuer certificate)"


@pytest.mark.usefixtures("trust_test_ca")
def test_name_the_certificate_does_not_cover(certs):
    with HttpsServer(certs.valid) as server:
        obs = probe(target(server.port, server_name="wrong.example"))
    assert obs.error == ("[CHAIN_VALID] == true -> got false "
                         "(Hostname mismatch, certificate is not valid for 'wrong.example'.)")


def test_days_left_of_a_certificate_past_2049_and_of_no_certificate():
    """From 2050 a certificate's dates are GeneralizedTime rather than UTCTime (RFC 5280)."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = (_builder(_name("far"), key, _name("far"), NOW, datetime(2060, 1, 2, tzinfo=UTC))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    assert days_left(der, datetime(2060, 1, 1, 12, tzinfo=UTC)) == 0.5
    assert days_left(None, NOW) is None and days_left(b"", NOW) is None
    assert days_left(der[:100], NOW) is None and days_left(b"not a certificate", NOW) is None


def test_connection_refused():
    obs = probe(target(free_port()))
    assert obs.error == "cannot connect: connection refused" and obs.values == {}


def plain_server(reply: bytes | None):
    """A TCP server on 127.0.0.1 that answers a TLS hello with ``reply`` (None: never answers)."""
    sock = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        conn, _ = sock.accept()
        with conn:
            conn.recv(4096)
            if reply is not None:
                conn.sendall(reply)
            stop.wait(5)

    threading.Thread(target=serve, daemon=True).start()
    return sock, stop


@pytest.mark.parametrize("reply,error", [
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", "TLS error: wrong version number"),
    (None, "timed out after 0.5s"),
])
def test_servers_that_do_not_speak_tls(reply, error):
    sock, stop = plain_server(reply)
    try:
        obs = probe(target(sock.getsockname()[1]))
    finally:
        stop.set()
        sock.close()
    assert not obs.ok and obs.error == error
