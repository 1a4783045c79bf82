"""A real worker's HTTP side: webhook payloads that arrive together are committed in one
transaction and each is answered after that commit (kill -9 right after the answers loses
none), a bad payload among them is refused alone, hostile clients (a body shorter than its
Content-Length, idle connections, a huge announced body) get an answer or are closed, /metrics
serves the process collectors and build info, a real Prometheus scrapes it, and SIGTERM stops
the worker cleanly while requests are in flight."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import func, select

from app.worker import http
from ledger.db import open_ledger, read_session, sqlite_url
from ledger.tables import Alert, IngestPayload
from tests.support import SAMPLES, wait_until

pytestmark = pytest.mark.integration

WEBHOOK = json.loads((SAMPLES / "alertmanager-webhook.json").read_text())
JOB = "workbench-worker-metrics"


def payload(number: int) -> bytes:
    doc = json.loads(json.dumps(WEBHOOK))
    doc["alerts"][0]["fingerprint"] = f"storm{number:05d}"
    doc["alerts"][0]["labels"]["alertname"] = f"Storm{number % 7}"
    return json.dumps(doc).encode()


def bad(number: int) -> tuple[bytes, str]:
    if number % 2:
        return b"{not json", "body is not JSON: Expecting property name enclosed in double quotes at line 1 column 2"
    doc = json.loads(payload(number))
    doc["alerts"][0]["labels"]["severity"] = 5
    return json.dumps(doc).encode(), "alerts.0.labels.severity: Input should be a valid string"


async def post_all(url: str, bodies: list[bytes], clients: int) -> list[tuple[int, dict]]:
    answers: list[tuple[int, dict] | None] = [None] * len(bodies)
    pending = iter(enumerate(bodies))
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=clients), timeout=60) as client:
        async def one_client():
            for i, body in pending:
                response = await client.post(url, content=body)
                answers[i] = (response.status_code, response.json())

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return answers


def count(engine, table) -> int:
    with read_session(engine) as session:
        return session.exec(select(func.count()).select_from(table)).one()


def test_concurrent_payloads_commit_together_each_before_its_answer_and_a_bad_one_alone(worker):
    w = worker(interval="250ms").start()
    bodies, expected = [], []
    for number in range(400):
        if number % 25 == 7:
            body, reason = bad(number)
            bodies.append(body)
            expected.append((400, {"error": reason}))
        else:
            bodies.append(payload(number))
            expected.append((200, {"status": "accepted", "new": 1}))

    answers = asyncio.run(post_all(f"{w.url}/ingest/alertmanager", bodies, clients=48))
    w.stop(signal.SIGKILL)  # right after the last answer: what was answered 200 must be in the ledger

    assert answers == expected
    engine = open_ledger(sqlite_url(w.data))
    accepted = sum(status == 200 for status, _ in answers)
    assert count(engine, Alert) == accepted
    assert count(engine, IngestPayload) == len(bodies)
    with read_session(engine) as session:
        batches = session.exec(select(func.count(func.distinct(IngestPayload.received_at)))).one()
    print(f"\n{len(bodies)} payloads from 48 clients committed in {batches} transactions")
    assert batches < len(bodies)  # payloads that arrived together shared a transaction (one received_at each)


def raw_request(port: int, head: bytes, body: bytes = b"", timeout: float = 30) -> tuple[socket.socket, bytes]:
    """Send ``head`` (and ``body``) on a new connection; return it and whatever came back before
    the server closed it or ``timeout`` passed."""
    conn = socket.create_connection(("127.0.0.1", port))
    conn.settimeout(timeout)
    conn.sendall(head + body)
    received = b""
    try:
        while chunk := conn.recv(65536):
            received += chunk
            if b"\r\n\r\n" in received and received.endswith(b"}"):
                break
    except TimeoutError:
        pass
    return conn, received


def closed_by_server(conn: socket.socket, timeout: float = 30) -> bool:
    conn.settimeout(timeout)
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_hostile_clients_get_an_answer_or_are_closed_and_the_next_payload_goes_through(worker):
    w = worker().start()
    post = (b"POST /ingest/alertmanager HTTP/1.1\r\nHost: worker\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n")

    # a body shorter than its Content-Length: answered when the body deadline passes, then closed
    conn, answer = raw_request(w.port, post % 5000, b'{"version": "4", ')
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {
        "error": f"the body did not arrive within {http.BODY_TIMEOUT:g} s (5000 bytes announced)"}
    assert closed_by_server(conn)

    # a 1 GB body announced: refused at once, without sending (or reading) any of it
    conn, answer = raw_request(w.port, post % 1_000_000_000)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"exceeds the limit of 1048576" in answer
    conn.close()

    # a chunked body (no Content-Length) is refused
    conn, answer = raw_request(w.port, b"POST /ingest/alertmanager HTTP/1.1\r\nHost: w\r\n"
                                       b"Transfer-Encoding: chunked\r\n\r\n", b"2\r\n{}\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 411 ") and answer.endswith(b'{"error": "a Content-Length header is required"}')
    conn.close()

    # a Content-Length that is no number, though Python's int() takes some such ("²" is a digit to it)
    for length in ("²", "-1", "1e3", "0x10", " 7 7"):
        conn, answer = raw_request(w.port, b"POST /ingest/alertmanager HTTP/1.1\r\nHost: w\r\n"
                                           b"Content-Type: application/json\r\nContent-Length: "
                                           + length.encode() + b"\r\n\r\n", b"{}", timeout=10)
        assert answer.split(b" ", 2)[1] == b"400", (length, answer)
        conn.close()

    # idle connections, and one that never finishes its headers, are closed by the server
    idle = [socket.create_connection(("127.0.0.1", w.port)) for _ in range(20)]
    idle[0].sendall(b"POST /ingest/alertmanager HTTP/1.1\r\nHost: wor")
    assert all(closed_by_server(conn) for conn in idle)

    # nonsense is answered 400, unknown paths 404, a wrong method 405
    conn, answer = raw_request(w.port, b"\x16\x03\x01garbage\r\n\r\n")
    assert answer.split(b" ", 2)[1] == b"400" and answer.endswith(b"Received HTTPS traffic on an HTTP port")
    assert httpx.get(f"{w.url}/nope").status_code == 404
    assert httpx.get(f"{w.url}/ingest/alertmanager").status_code == 405

    response = httpx.post(f"{w.url}/ingest/alertmanager", content=payload(1), timeout=10)
    assert (response.status_code, response.json()) == (200, {"status": "accepted", "new": 1})
    assert w.metric('workbench_ingest_payloads_total{result="rejected"}') == 3


def test_metrics_serve_the_process_collectors_and_build_info(worker):
    w = worker().start()
    families = {f.name: f for f in text_string_to_metric_families(w.metrics())}
    [rss] = families["process_resident_memory_bytes"].samples
    assert rss.value > 10_000_000
    [build] = families["workbench_build_info"].samples
    assert set(build.labels) == {"version", "python"}
    assert build.labels["version"] != "unknown"  # the installed distribution's version
    assert "python_info" in families and "process_cpu_seconds" in families
    assert not any(name.endswith("_created") for name in families)


@pytest.fixture
def scraped(peers):
    yield peers
    peers.scrape(JOB, [])


def test_a_real_prometheus_scrapes_the_worker(scraped, worker):
    peers = scraped
    w = worker().start()
    peers.scrape(JOB, [f"127.0.0.1:{w.port}"])
    [up] = peers.wait_for(f'up{{job="{JOB}"}} == 1')
    assert up["metric"]["instance"] == f"127.0.0.1:{w.port}"
    targets = httpx.get(f"{peers.prometheus.url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    [target] = [t for t in targets if t["labels"]["job"] == JOB]
    assert (target["health"], target["lastError"]) == ("up", "")
    [rss] = peers.wait_for(f'process_resident_memory_bytes{{job="{JOB}"}}')
    assert float(rss["value"][1]) > 10_000_000
    [build] = peers.wait_for(f'workbench_build_info{{job="{JOB}"}}')
    assert build["metric"]["python"].count(".") == 2
    assert peers.wait_for(f'workbench_probe_runs_total{{job="{JOB}", target="shop-web"}}')


def test_sigterm_stops_cleanly_with_requests_and_probes_in_flight(worker, tmp_path):
    w = worker(interval="250ms").start()
    wait_until(lambda: w.metric('workbench_probe_runs_total{kind="http",target="shop-web"}') >= 3, "probe runs")
    # a webhook request waiting for the rest of its body, and a keep-alive connection, at the stop
    slow = socket.create_connection(("127.0.0.1", w.port))
    slow.sendall(b"POST /ingest/alertmanager HTTP/1.1\r\nHost: w\r\nContent-Length: 100\r\n\r\n{")
    with httpx.Client() as client:
        client.get(f"{w.url}/healthz")
        started = time.monotonic()
        w.stop()
    print(f"\nworker stopped {time.monotonic() - started:.2f} s after SIGTERM")
    slow.close()
    assert w.proc.returncode == 0
    log = (tmp_path / "worker.log").read_text()
    assert "worker stopped" in log
    assert "Traceback" not in log and "CancelledError" not in log and "ERROR" not in log
