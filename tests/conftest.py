"""Shared fixtures: ledgers on SQLite and on the machine's PostgreSQL, policy directories,
free ports, a real local HTTP target whose answers a test switches, and a real local HTTP
server with canned answers (captured from the real peers, in tests/samples/), a webhook receiver."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import sqlalchemy

from ledger.db import open_ledger, sqlite_url
from tests.hostile import RawServer
from tests.notifications.standins import Receiver
from tests.support import SAMPLES, LocalServer, QuietHandler, free_port

# The PostgreSQL server on this machine (trust auth on loopback); override for another.
POSTGRES_ADMIN_URL = os.environ.get("WORKBENCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh database on the local PostgreSQL server for this test session, dropped after."""
    name = f"workbench_test_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sqlalchemy.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc.orig}")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path) -> str:
    """A database URL for an empty ledger, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "data")
    url = request.getfixturevalue("postgres_database")
    _reset_postgres(url)
    return url


@pytest.fixture
def engine(ledger_url):
    engine = open_ledger(ledger_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = open_ledger(sqlite_url(tmp_path / "data"))
    yield engine
    engine.dispose()


@pytest.fixture
def policy_dir(tmp_path):
    """Write a policy directory: policy_dir(targets_yaml, settings_yaml=None) -> Path."""

    def write(targets: str, settings: str | None = None) -> Path:
        directory = tmp_path / "policy"
        directory.mkdir(exist_ok=True)
        (directory / "targets.yaml").write_text(targets)
        if settings is not None:
            (directory / "settings.yaml").write_text(settings)
        return directory

    return write


@pytest.fixture
def demo_target():
    """The demo service on a free port in this process: a real HTTP server the test flips."""

    from app.demo import make_server, set_fault

    port = free_port()
    server = make_server(port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Target:
        url = f"http://127.0.0.1:{port}/"

        def __init__(self):
            self.port = port

        def fault(self, mode: str) -> None:
            set_fault(port, mode)

    yield Target()
    server.shutdown()
    server.server_close()



class Canned:
    """Answers every request with ``status``/``body`` (as ``content_type``) after ``delay``
    seconds; records each request as (path, query pairs, headers) and each POST's body."""

    def __init__(self):
        self.status, self.body, self.content_type, self.delay = 200, b"[]", "application/json", 0.0
        self.requests: list[tuple[str, list[tuple[str, str]], dict[str, str]]] = []
        self.posted: list[bytes] = []
        canned = self

        class Handler(QuietHandler):
            def do_GET(self):
                url = urlsplit(self.path)
                canned.requests.append((url.path, parse_qsl(url.query), self.headers))
                time.sleep(canned.delay)
                try:
                    self.reply(canned.status, canned.body, canned.content_type)
                except ConnectionError:  # the probe gave up first (timeout, body limit)
                    pass

            def do_POST(self):
                canned.posted.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                self.do_GET()

        self.local = LocalServer(Handler)
        self.address, self.url = self.local.address, self.local.url

    def reply(self, body: bytes | object, status: int = 200, content_type: str = "application/json") -> None:
        """Answer with ``body``: bytes as they are, anything else as JSON."""
        self.status, self.content_type = status, content_type
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()

    def replay(self, sample: str, status: int = 200) -> None:
        """Answer with a captured sample from tests/samples/."""
        self.reply((SAMPLES / sample).read_bytes(), status)


@pytest.fixture
def canned():
    server = Canned()
    yield server
    server.local.close()


@pytest.fixture
def raw_server():
    """raw_server(handle, read_request=False) -> a started RawServer, closed after the test."""
    servers = []

    def start(handle, read_request: bool = False):
        servers.append(RawServer(handle, read_request))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def receiver():
    """A real webhook receiver on 127.0.0.1 that records what it is sent (tests/notifications/standins.py)."""
    server = Receiver()
    yield server
    server.close()

