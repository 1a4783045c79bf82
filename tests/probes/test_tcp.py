"""The tcp probe against real servers on 127.0.0.1: a line protocol that answers, one that
answers wrong, one that never answers, and a closed port."""

import asyncio

from policies.schema import TcpTarget
from probes.context import ProbeClient, ProbeContext
from probes.kinds import tcp
from tests.support import free_port


def target(port: int, **extra) -> TcpTarget:
    fields = {"name": "t", "kind": "tcp", "service": "s", "host": "127.0.0.1", "port": port,
              "interval": "10s", "timeout": "500ms", "conditions": ["[CONNECTED] == true"], **extra}
    return TcpTarget.model_validate(fields)


def probe(t: TcpTarget, **ctx):
    async def go():
        async with ProbeClient(1) as client:
            return (await tcp.run(t, ProbeContext(client, **ctx))).observation
    return asyncio.run(go())


def read_line(conn) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1024)
        if not chunk:
            break
        data += chunk
    return data


def redis_like(conn, stop):
    """Answers exactly b"PING\\r\\n" with +PONG in two pieces and waits for the client to hang
    up; answers anything else with an error and hangs up itself."""
    if read_line(conn) != b"PING\r\n":
        conn.sendall(b"-ERR unknown command\r\n")
        return
    conn.sendall(b"+PO")
    stop.wait(0.05)
    conn.sendall(b"NG\r\n")
    conn.recv(1024)


def echo_once(conn, stop):
    conn.sendall(read_line(conn))
    conn.recv(1024)


def banner_then_close(conn, stop):
    conn.sendall(b"220 mail.test ESMTP ready\r\n")


def silent(conn, stop):
    stop.wait(5)


def test_send_and_expect_across_pieces(raw_server):
    obs = probe(target(raw_server(redis_like).port, send=r"PING\r\n", expect="+PONG",
                       conditions=["[CONNECTED] == true", "[BODY] matches ^\\+PONG\\r\\n$"]))
    assert obs.ok, obs.error
    assert [c["text"] for c in obs.checks][0] == "[CONNECTED] == true -> got true"
    assert obs.values["CONNECTED"] is True and obs.values["RESPONSE_TIME"] >= 0


def test_send_without_expect_reads_the_first_answer(raw_server):
    obs = probe(target(raw_server(echo_once).port, send="hello\\n", conditions=["[BODY] matches ^hello$"]))
    assert obs.ok, obs.error


def test_expected_text_missing_from_the_answer(raw_server):
    obs = probe(target(raw_server(redis_like).port, send="PING\\n", expect="+PONG"))
    assert not obs.ok
    assert obs.error == "the answer does not contain '+PONG', got '-ERR unknown command\\r\\n'"


def test_banner_without_the_expected_text_before_the_server_closes(raw_server):
    obs = probe(target(raw_server(banner_then_close).port, expect="SSH-2.0"))
    assert obs.error == "the answer does not contain 'SSH-2.0', got '220 mail.test ESMTP ready\\r\\n'"


def test_banner_with_the_expected_text(raw_server):
    assert probe(target(raw_server(banner_then_close).port, expect="ESMTP")).ok


def test_server_that_never_answers(raw_server):
    obs = probe(target(raw_server(silent).port, send="PING\\r\\n", expect="+PONG"))
    assert obs.error == "timed out after 0.5s waiting for '+PONG', got nothing"


def test_connect_only(raw_server):
    obs = probe(target(raw_server(silent).port, conditions=["[CONNECTED] == true", "[BODY] contains x"]))
    assert obs.checks[0]["ok"] is True
    assert obs.error == "[BODY] contains x -> got nothing (not measured)"


def test_answer_is_read_only_up_to_the_limit(raw_server):
    def endless(conn, stop):
        while not stop.is_set():
            conn.sendall(b"z" * 65536)

    obs = probe(target(raw_server(endless).port, expect="never sent"), max_body_bytes=4096)
    assert obs.error.startswith("the answer does not contain 'never sent', got 'zzzz")


def test_connection_refused():
    obs = probe(target(free_port()))
    assert not obs.ok and obs.error == "cannot connect: connection refused"
    assert obs.values == {}
