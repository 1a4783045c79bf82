"""What deploy/ holds works as it is. The systemd unit is one systemd accepts: `systemd-analyze
verify`, which also checks that ExecStart's program exists, reports nothing; and the WORKBENCH_
variables it sets are ones the workbench reads. The nginx site passes `nginx -t` inside an http
block, as /etc/nginx/conf.d/ puts it. docs/security.md shows the reverse proxy examples as the
files are."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from app import logs, settings
from tests.support import ROOT

UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")  # not on a user's PATH
KNOWN = {settings.ENV_POLICY, settings.ENV_DATA, settings.ENV_DB, settings.ENV_PORT, logs.ENV_LOG_FORMAT}
PROXIES = ["Caddyfile", "nginx-workbench.conf"]


@pytest.mark.skipif(SYSTEMD_ANALYZE is None,
                    reason="systemd-analyze is not installed (Debian package systemd; tests/run.sh installs it)")
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_accepts_the_unit(unit):
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_the_unit_sets_variables_the_workbench_reads(unit):
    names = set(re.findall(r"^#?Environment=(WORKBENCH_\w+)=", unit.read_text(), re.M))
    assert names and names <= KNOWN


def self_signed(directory) -> tuple[str, str]:
    """A certificate and its key for workbench.example.com, where certbot's would be."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "workbench.example.com")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now)
                   .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    cert, key_file = directory / "fullchain.pem", directory / "privkey.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert), str(key_file)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian package nginx; tests/run.sh installs it)")
def test_nginx_accepts_the_site(tmp_path):
    cert, key = self_signed(tmp_path)
    site = (ROOT / "deploy" / "nginx-workbench.conf").read_text()
    site, certs = re.subn(r"(?m)^(\s*ssl_certificate\s+)\S+;", rf"\g<1>{cert};", site)
    site, keys = re.subn(r"(?m)^(\s*ssl_certificate_key\s+)\S+;", rf"\g<1>{key};", site)
    assert (certs, keys) == (1, 1)
    (tmp_path / "site.conf").write_text(site)
    temp = "\n".join(f"    {kind}_temp_path {tmp_path / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                              "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(f"pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\n"
                                         f"events {{}}\nhttp {{\n    access_log off;\n{temp}\n"
                                         f"    include {tmp_path / 'site.conf'};\n}}\n")
    done = subprocess.run([NGINX, "-t", "-q", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                           "-e", str(tmp_path / "error.log")], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.parametrize("name", PROXIES)
def test_the_security_page_shows_the_example_as_it_is(name):
    assert (ROOT / "deploy" / name).read_text() in (ROOT / "docs" / "security.md").read_text()
