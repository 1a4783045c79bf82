"""The http probe against real local servers, healthy and hostile."""

import asyncio
import socket
import ssl

import pytest
from pydantic import ValidationError
from yarl import URL

from policies.schema import HttpTarget
from probes.context import ProbeClient, ProbeContext
from probes.kinds import http
from tests.hostile import close_mid_response, endless_body, garbage, never_answer, one_byte_per_tick
from tests.probes.tls_support import NOW, SELF_SIGNED_DAYS, VALID_DAYS, HttpsServer, make_certs
from tests.support import LocalServer, QuietHandler


def target(url: str, **extra) -> HttpTarget:
    fields = {"name": "t", "kind": "http", "service": "s", "url": url, "interval": "10s", "timeout": "1s",
              "conditions": ["[STATUS] == 200", "[RESPONSE_TIME] < 5000"], **extra}
    return HttpTarget.model_validate(fields)


def probe(t: HttpTarget, client: ProbeClient | None = None, **ctx):
    async def go():
        async with (client or ProbeClient(10)) as c:
            return (await http.run(t, ProbeContext(c, **ctx))).observation
    return asyncio.run(go())


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
    obs = probe(target(raw_server(handler, read_request=True).url))
    assert not obs.ok and obs.error.startswith(reason), obs.error


def test_huge_body_is_read_only_up_to_the_limit(raw_server):
    url = raw_server(endless_body, read_request=True).url
    obs = probe(target(url, conditions=["[STATUS] == 200", "[BODY] contains y"]), max_body_bytes=4096)
    assert obs.ok and obs.values["BODY_TRUNCATED"] is True


def test_secret_headers_come_from_the_environment_and_never_reach_evidence(canned):
    canned.reply(b"bad token Bearer tok-9f8e7d6c5b", status=500, content_type="text/plain")
    t = target(canned.url + "/api", headers={"Authorization": "Bearer ${API_TOKEN}"},
               conditions=["[STATUS] == 200", "[BODY] contains welcome"])
    obs = probe(t, env={"API_TOKEN": "tok-9f8e7d6c5b"})
    assert canned.requests[-1][2]["Authorization"] == "Bearer tok-9f8e7d6c5b"
    assert "tok-9f8e7d6c5b" not in repr(obs.model_dump())
    assert "bad token Bearer ***" in obs.checks[1]["actual"]


def test_missing_secret_fails_without_a_request(canned):
    obs = probe(target(canned.url, headers={"X-Key": "${NOT_SET_ANYWHERE}"}), env={})
    assert obs.error == "environment variable NOT_SET_ANYWHERE is not set"
    assert canned.requests == []


def test_a_hanging_target_does_not_hold_up_others_on_the_shared_client(raw_server, demo_target):
    slow = target(raw_server(never_answer, read_request=True).url)
    fast = target(demo_target.url)
    order = []

    async def run(t, ctx):
        obs = (await http.run(t, ctx)).observation
        order.append(t.url)
        return obs

    async def both():
        async with ProbeClient(10) as client:
            ctx = ProbeContext(client)
            return await asyncio.gather(run(slow, ctx), run(fast, ctx))

    slow_obs, fast_obs = asyncio.run(both())
    assert fast_obs.ok and slow_obs.error == "timed out after 1s"
    assert order == [fast.url, slow.url]


# --- bodies as JSON, request bodies, limits and redirects -------------------------------

def not_json(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot json!")


def test_json_path_conditions_against_a_real_server(demo_target):
    assert probe(target(demo_target.url, conditions=["[BODY].status == ok", "[BODY].service matches ^dem"])).ok
    demo_target.fault("errors")
    obs = probe(target(demo_target.url, conditions=["[BODY].status == ok", "[BODY].detail.code == 1"]))
    assert obs.error == "[BODY].status == ok -> got error; [BODY].detail.code == 1 -> got no value at detail.code"


def test_body_that_is_not_json_fails_the_json_check_clearly(raw_server):
    url = raw_server(not_json, read_request=True).url
    obs = probe(target(url, conditions=["[STATUS] == 200", "[BODY].status == ok"]))
    assert obs.checks[0]["ok"] is True
    assert obs.error == "[BODY].status == ok -> got invalid JSON: Expecting value at line 1 column 1"


def body(payload: bytes):
    def answer(conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(payload) + payload)
    return answer


@pytest.mark.parametrize("payload, reason", [
    (b"[" * 100_000 + b"]" * 100_000, "invalid JSON: nested too deeply"),
    (b'{"status": ' + b"9" * 5_000 + b"}", "invalid JSON: Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits"),
])
def test_hostile_json_bodies_fail_the_json_check_with_a_reason(raw_server, payload, reason):
    url = raw_server(body(payload), read_request=True).url
    obs = probe(target(url, conditions=["[STATUS] == 200", "[BODY].status == ok"], max_body_bytes=1_000_000))
    assert obs.checks[0]["ok"] is True
    assert obs.error == f"[BODY].status == ok -> got {reason}"


def test_https_to_a_server_that_does_not_speak_tls_is_a_tls_error(demo_target):
    obs = probe(target(demo_target.url.replace("http://", "https://")))
    assert obs.error == "TLS error: wrong version number" and obs.duration_ms > 0


def test_request_body_is_sent(canned):
    canned.reply({"echo": "q"})
    t = target(canned.url + "/search", method="POST", body='{"q": 1}', conditions=["[BODY].echo == q"])
    assert probe(t).ok
    assert canned.posted == [b'{"q": 1}'] and canned.requests[-1][0] == "/search"


def test_target_body_limit_overrides_the_setting(raw_server):
    url = raw_server(endless_body, read_request=True).url
    obs = probe(target(url, max_body_bytes=100, conditions=["[BODY] matches ^y{100}$"]), max_body_bytes=4096)
    assert obs.ok, obs.error
    assert obs.values["BODY_TRUNCATED"] is True


def redirects(count: int, seen: list):
    """A handler that redirects the first ``count`` requests back to / and then answers 200."""
    def handle(conn, stop):
        seen.append(1)
        if len(seen) <= count:
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    return handle


def test_redirect_loop_against_a_real_server(raw_server):
    seen = []
    url = raw_server(redirects(1000, seen), read_request=True).url
    obs = probe(target(url, follow_redirects=True, max_redirects=3))
    assert obs.error == "too many redirects"
    assert len(seen) == 4  # the request and the three redirects allowed


@pytest.mark.parametrize("max_redirects,error", [(2, None), (1, "too many redirects")])
def test_redirects_are_followed_up_to_the_target_limit(raw_server, max_redirects, error):
    url = raw_server(redirects(2, []), read_request=True).url
    obs = probe(target(url, follow_redirects=True, max_redirects=max_redirects))
    assert obs.error == error


def test_redirect_is_the_answer_when_not_followed(raw_server):
    obs = probe(target(raw_server(redirects(1, []), read_request=True).url, conditions=["[STATUS] == 302"]))
    assert obs.ok, obs.error


# --- credentials and redirects: two servers on two ports are two origins -----------------

class RedirectOrRecord(QuietHandler):
    """Records the headers of every request on its server; answers /start with a 302 to the
    server's ``location``, anything else with 200."""

    def do_GET(self):
        self.server.seen.append((self.path, self.headers.items()))
        if self.path == "/start":
            self.send_response(302)
            self.send_header("Location", self.server.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.reply(200, b"ok", "text/plain")


@pytest.fixture
def origins():
    """Two recording servers, A and B, on two ports of 127.0.0.1."""
    servers = [LocalServer(RedirectOrRecord) for _ in range(2)]
    for server in servers:
        server.server.seen = []
    yield servers
    for server in servers:
        server.close()


ENV = {"TOKEN": "t0ken-for-a", "KEY": "k3y-for-a", "PROXY": "pr0xy-for-a"}
CREDENTIALS = [*ENV.values(), "c00kie-for-a"]
HEADERS = {"Authorization": "Bearer ${TOKEN}", "X-Api-Key": "${KEY}", "Proxy-Authorization": "Basic ${PROXY}",
           "Cookie": "session=c00kie-for-a", "X-Trace": "probe-7"}


def credentials_seen(server: LocalServer, path: str) -> list[str]:
    """The credential values among the headers ``server`` received for ``path``."""
    return [value for seen_path, headers in server.server.seen if seen_path == path
            for _, header in headers for value in CREDENTIALS if value in header]


def traces_seen(server: LocalServer, path: str) -> list[str]:
    return [header for seen_path, headers in server.server.seen if seen_path == path
            for name, header in headers if name == "X-Trace"]


def follow(start: LocalServer, **extra):
    return probe(target(start.url + "/start", follow_redirects=True, headers=HEADERS, **extra), env=ENV)


def test_credentials_never_follow_a_redirect_to_another_origin(origins):
    a, b = origins
    a.server.location = b.url + "/landing"
    assert follow(a).ok
    assert sorted(credentials_seen(a, "/start")) == sorted(CREDENTIALS)
    assert credentials_seen(b, "/landing") == []
    assert traces_seen(b, "/landing") == ["probe-7"]  # other headers go on


def test_credentials_dropped_at_a_redirect_stay_dropped_back_at_the_first_origin(origins):
    a, b = origins
    a.server.location, b.server.location = b.url + "/start", a.url + "/landing"
    assert follow(a).ok
    assert credentials_seen(b, "/start") == [] and credentials_seen(a, "/landing") == []


def test_same_origin_redirect_keeps_the_credentials(origins):
    a, _ = origins
    a.server.location = "/landing"
    assert follow(a).ok
    assert sorted(credentials_seen(a, "/landing")) == sorted(CREDENTIALS)


@pytest.mark.parametrize("allowed,reaches_b", [("{b}", True), ("127.0.0.1", True), ("127.0.0.1:1", False),
                                               ("localhost", False)])
def test_credentials_follow_to_a_host_the_target_allows(origins, allowed, reaches_b):
    a, b = origins
    a.server.location = b.url + "/landing"
    assert follow(a, redirect_credentials_to=[allowed.format(b=b.address)]).ok
    assert sorted(credentials_seen(b, "/landing")) == (sorted(CREDENTIALS) if reaches_b else [])


@pytest.mark.parametrize("entry", ["http://example.com", "example.com/path", "user@example.com", ""])
def test_allowed_redirect_hosts_are_host_or_host_and_port(entry):
    with pytest.raises(ValidationError, match="redirect_credentials_to"):
        target("http://127.0.0.1/", redirect_credentials_to=[entry])


@pytest.mark.parametrize("source,destination,allowed,keeps", [
    ("https://a.example/x", "https://a.example:443/y", [], True),
    ("http://a.example/", "https://a.example/", [], False),
    ("https://a.example/", "http://a.example/", ["a.example"], False),
    ("https://a.example/", "https://B.example:8443/", ["b.example"], True),
    ("https://a.example/", "https://[::1]:8443/", ["[::1]:8443"], True),
])
def test_which_redirects_keep_credentials(source, destination, allowed, keeps):
    assert http.keeps_credentials(URL(source), URL(destination), allowed) is keeps


# --- https: certificates made by the test, served on 127.0.0.1 ------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def trusting(ca) -> ProbeClient:
    """A client that trusts the test CA (and only it)."""
    return ProbeClient(2, verify=ssl.create_default_context(cafile=str(ca)))


def test_https_with_a_valid_certificate_measures_its_days(certs):
    with HttpsServer(certs.valid) as server:
        obs = probe(target(server.url, conditions=["[BODY].status == ok", "[CERTIFICATE_EXPIRATION] > 7"]),
                    trusting(certs.ca), now=lambda: NOW)
    assert obs.ok, obs.error
    assert obs.values["CERTIFICATE_EXPIRATION"] == VALID_DAYS


def test_expired_certificate_is_a_tls_error(certs):
    with HttpsServer(certs.expired) as server:
        obs = probe(target(server.url), trusting(certs.ca))
    assert not obs.ok and obs.error == "TLS error: certificate has expired"


def test_self_signed_certificate_is_a_tls_error(certs):
    with HttpsServer(certs.self_signed) as server:
        obs = probe(target(server.url))
    assert not obs.ok and obs.error == "TLS error: self-signed certificate"


def test_verify_tls_false_accepts_a_self_signed_certificate_and_still_reads_it(certs):
    async def twice(t):
        async with ProbeClient(2) as client:
            ctx = ProbeContext(client, now=lambda: NOW)
            first = await http.run(t, ctx)
            unverified = ctx.client_for(False)
            second = await http.run(t, ctx)
            assert unverified is ctx.client_for(False) and unverified is not client  # built once per context
            return first.observation, second.observation

    with HttpsServer(certs.self_signed) as server:
        first, second = asyncio.run(twice(target(server.url, verify_tls=False, conditions=[
            "[STATUS] == 200", "[CERTIFICATE_EXPIRATION] > 7"])))
    assert first.ok and second.ok, (first.error, second.error)
    assert first.values["CERTIFICATE_EXPIRATION"] == SELF_SIGNED_DAYS


def test_certificate_is_read_on_a_kept_alive_connection_and_without_a_body(certs):
    """aiohttp hands a connection back to its pool as soon as the whole answer is in; the
    certificate is still that of the connection each request went over."""
    async def requests(url):
        async with trusting(certs.ca) as client:
            ctx = ProbeContext(client, now=lambda: NOW)
            return [(await http.run(target(url, method=method, conditions=["[CERTIFICATE_EXPIRATION] > 7"]),
                                    ctx)).observation for method in ("GET", "HEAD", "GET")]

    with HttpsServer(certs.valid, keep_alive=True) as server:
        observations = asyncio.run(requests(server.url))
        assert server.connections == 1
    assert [o.values["CERTIFICATE_EXPIRATION"] for o in observations] == [VALID_DAYS] * 3


def test_certificate_expiration_is_not_measured_over_plain_http(demo_target):
    obs = probe(target(demo_target.url, conditions=["[CERTIFICATE_EXPIRATION] > 7"]))
    assert obs.error == "[CERTIFICATE_EXPIRATION] > 7 -> got nothing (not measured)"
