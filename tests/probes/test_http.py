"""The http probe against real local servers, healthy and hostile, plus rare responses
produced with httpx.MockTransport."""

import asyncio
import socket
import threading

import httpx
import pytest

from policies.schema import HttpTarget
from probes import http
from probes.context import ProbeContext, make_client


def target(url: str, **extra) -> HttpTarget:
    fields = {"name": "t", "kind": "http", "service": "s", "url": url, "interval": "10s", "timeout": "1s",
              "conditions": ["[STATUS] == 200", "[RESPONSE_TIME] < 5000"], **extra}
    return HttpTarget.model_validate(fields)


def probe(t: HttpTarget, client: httpx.AsyncClient | None = None, **ctx):
    async def go():
        async with (client or make_client(10)) as c:
            return (await http.run(t, ProbeContext(c, **ctx))).observation
    return asyncio.run(go())


class RawServer:
    """A TCP server on 127.0.0.1 whose connection handler misbehaves on purpose."""

    def __init__(self, handle):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.handle, self.stop = handle, threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            conn.recv(65536)
            self.handle(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.fixture
def raw_server():
    servers = []

    def start(handle):
        servers.append(RawServer(handle))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def never_answer(conn, stop):
    stop.wait(5)


def one_byte_per_tick(conn, stop):
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100:
        conn.sendall(bytes([byte]))
        if stop.wait(0.2):
            return


def endless_body(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2147483648\r\n\r\n")
    chunk = b"y" * 65536
    for _ in range(32768):  # 2 GiB at most; the probe stops reading long before
        if stop.is_set():
            return
        conn.sendall(chunk)


def close_mid_response(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")


def garbage(conn, stop):
    conn.sendall(b"\x00\x01 this is not http \r\n\r\n")


def test_healthy_target_passes_with_evidence(demo_target):
    obs = probe(target(demo_target.url, conditions=["[STATUS] == 200", "[BODY] contains ok"]))
    assert obs.ok and obs.status == 200 and obs.error is None
    assert [c["text"] for c in obs.checks][0] == "[STATUS] == 200 -> got 200"
    assert "BODY" not in obs.values  # bodies are evidence text, never stored as values


def test_failing_target_records_the_actual_status(demo_target):
    demo_target.fault("errors")
    obs = probe(target(demo_target.url))
    assert not obs.ok and obs.status == 503
    assert obs.error == "[STATUS] == 200 -> got 503"
    assert obs.checks[1]["ok"] is True


def test_target_that_drops_the_connection(demo_target):
    demo_target.fault("down")
    obs = probe(target(demo_target.url))
    assert not obs.ok and obs.error.startswith("connection broken")


def test_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    obs = probe(target(f"http://127.0.0.1:{port}/"))
    assert obs.error == "cannot connect: connection refused"


@pytest.mark.parametrize("handler,reason", [
    (never_answer, "timed out after 1s"),
    (one_byte_per_tick, "timed out after 1s"),
    (close_mid_response, "connection broken"),
    (garbage, "connection broken"),
])
def test_hostile_servers_become_failed_observations(raw_server, handler, reason):
    obs = probe(target(raw_server(handler).url))
    assert not obs.ok and obs.error.startswith(reason), obs.error


def test_huge_body_is_read_only_up_to_the_limit(raw_server):
    obs = probe(target(raw_server(endless_body).url, conditions=["[STATUS] == 200", "[BODY] contains y"]),
                max_body_bytes=4096)
    assert obs.ok and obs.values["BODY_TRUNCATED"] is True


def test_redirect_loop_is_a_clear_failure():
    def loop(request):
        return httpx.Response(302, headers={"Location": str(request.url)})

    client = httpx.AsyncClient(transport=httpx.MockTransport(loop))
    obs = probe(target("http://loop.test/", follow_redirects=True), client)
    assert obs.error == "too many redirects"


def test_secret_headers_come_from_the_environment_and_never_reach_evidence():
    seen = {}

    def echo(request):
        seen["auth"] = request.headers["Authorization"]
        return httpx.Response(500, text=f"bad token {request.headers['Authorization']}")

    client = httpx.AsyncClient(transport=httpx.MockTransport(echo))
    t = target("http://api.test/", headers={"Authorization": "Bearer ${API_TOKEN}"},
               conditions=["[STATUS] == 200", "[BODY] contains welcome"])
    obs = probe(t, client, env={"API_TOKEN": "tok-9f8e7d6c5b"})
    assert seen["auth"] == "Bearer tok-9f8e7d6c5b"
    assert "tok-9f8e7d6c5b" not in repr(obs.model_dump())
    assert "bad token Bearer ***" in obs.checks[1]["actual"]


def test_missing_secret_fails_without_a_request():
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: pytest.fail("no request expected")))
    obs = probe(target("http://api.test/", headers={"X-Key": "${NOT_SET_ANYWHERE}"}), client, env={})
    assert obs.error == "environment variable NOT_SET_ANYWHERE is not set"


def test_a_hanging_target_does_not_hold_up_others_on_the_shared_client(raw_server, demo_target):
    slow = target(raw_server(never_answer).url)
    fast = target(demo_target.url)
    order = []

    async def run(t, ctx):
        obs = (await http.run(t, ctx)).observation
        order.append(t.url)
        return obs

    async def both():
        async with make_client(10) as client:
            ctx = ProbeContext(client)
            return await asyncio.gather(run(slow, ctx), run(fast, ctx))

    slow_obs, fast_obs = asyncio.run(both())
    assert fast_obs.ok and slow_obs.error == "timed out after 1s"
    assert order == [fast.url, slow.url]
