"""Certificates made by the test (a CA, a server certificate it signed, a self-signed one and
an expired one) and a real HTTPS server on 127.0.0.1 presenting one of them."""

from __future__ import annotations

import ipaddress
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Certificates are dated from NOW; a probe given ``now=lambda: NOW`` reads exact days.
NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)
VALID_DAYS, SELF_SIGNED_DAYS, EXPIRED_DAYS = 30, 90, -10


@dataclass(frozen=True)
class Certs:
    ca: Path  # the CA certificate (PEM) to trust
    valid: tuple[Path, Path]  # (certificate, key) signed by the CA for localhost and 127.0.0.1
    self_signed: tuple[Path, Path]
    expired: tuple[Path, Path]  # signed by the CA, expired EXPIRED_DAYS ago


def make_certs(directory: Path) -> Certs:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("workbench test CA")
    ca = (_builder(ca_name, ca_key, ca_name, NOW - DAY, NOW + 365 * DAY)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def server(name: str, not_before: datetime, not_after: datetime, signed_by_ca: bool) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        issuer, issuer_key = (ca_name, ca_key) if signed_by_ca else (_name(name), key)
        cert = (_builder(_name(name), key, issuer, not_before, not_after)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(issuer_key, hashes.SHA256()))
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path

    return Certs(
        ca=ca_path,
        valid=server("valid", NOW - DAY, NOW + VALID_DAYS * DAY, signed_by_ca=True),
        self_signed=server("self-signed", NOW - DAY, NOW + SELF_SIGNED_DAYS * DAY, signed_by_ca=False),
        expired=server("expired", NOW - 60 * DAY, NOW + EXPIRED_DAYS * DAY, signed_by_ca=True),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, key, issuer: x509.Name, not_before: datetime,
             not_after: datetime) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after))


class HttpsServer:
    """An HTTPS server on 127.0.0.1 answering every GET with 200 and {"status": "ok"} and every
    HEAD with 200 and no body; with ``keep_alive`` over HTTP/1.1, one connection serving many
    requests. ``connections`` counts the connections it accepted."""

    def __init__(self, cert_and_key: tuple[Path, Path], keep_alive: bool = False):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*cert_and_key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAliveHandler if keep_alive else _Handler)
        self.server.connections = 0
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.server.handle_error = lambda request, address: None  # clients hanging up mid-handshake
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def __enter__(self) -> "HttpsServer":
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def connections(self) -> int:
        return self.server.connections


class _Handler(BaseHTTPRequestHandler):
    def setup(self):
        super().setup()
        self.server.connections += 1

    def do_GET(self):
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class _KeepAliveHandler(_Handler):
    protocol_version = "HTTP/1.1"
