"""Login in a real browser, when the policy has ``access:``: single sign-on through an OpenID Connect
provider lets in the identities the policy allows, with the role their groups map to, refuses the
others, and logs out; and a web app listening beyond loopback serves its login page to a browser
coming from another address. The provider is a local stand-in (oidc-provider-mock on 127.0.0.1)
that speaks the documented OpenID Connect protocol: discovery, the authorization code flow, ID
tokens signed with the keys of its JWKS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import oidc_provider_mock
import pytest
from playwright.sync_api import Page, expect
from werkzeug.serving import make_server

from app.settings import ENV_DATA, ENV_DB, ENV_POLICY, ENV_PORT, ROOT
from ledger import queries
from ledger.db import open_ledger, sqlite_url
from tests.e2e.conftest import Workbench, answers
from tests.support import free_port

pytestmark = pytest.mark.e2e
UI_TIMEOUT_MS = 30_000
SECRET_ENV = "WORKBENCH_OIDC_CLIENT_SECRET"
OIDC_SETTINGS = """
access:
  local_accounts: false
  oidc:
    server_metadata_url: {provider}/.well-known/openid-configuration
    client_id: {client_id}
    client_secret_env: {secret_env}
    redirect_uri: {redirect_uri}
    allow_domains: [example.com]
    role_claim: groups
    roles: {{sre: operator, sre-leads: approver}}
    default_role: null
"""
PEOPLE = {  # subject -> the claims the provider puts in its ID token
    "ann": {"email": "ann@example.com", "email_verified": True, "groups": ["sre"]},
    "eve": {"email": "eve@elsewhere.example", "email_verified": True, "groups": ["sre"]},
    "bob": {"email": "bob@example.com", "email_verified": False, "groups": ["sre-leads"]},
}


@pytest.fixture
def provider() -> Iterator[str]:
    """oidc-provider-mock on 127.0.0.1: a local stand-in for the identity provider that speaks the
    documented OpenID Connect protocol (discovery document, authorization code flow with a nonce,
    ID tokens signed with the keys of its JWKS), where clients register and the person at its
    authorization page types the subject to sign in as. Its base URL."""
    app = oidc_provider_mock.app(require_client_registration=True, require_nonce=True)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def web_app(tmp_path, policy_dir):
    """web_app(settings_yaml, bind=, port=, env=) -> the web app (``workbench ui``) started on
    ``port`` under that policy, its ledger in the test's data directory; stopped at teardown."""
    started: list[subprocess.Popen] = []

    def start(settings: str, *, bind: str = "127.0.0.1", port: int | None = None, env=None) -> Workbench:
        port = port or free_port()
        data_dir, logs = tmp_path / "data", tmp_path / "logs"
        logs.mkdir(exist_ok=True)
        environment = {k: v for k, v in os.environ.items() if k not in (ENV_PORT, SECRET_ENV)}
        environment |= {ENV_POLICY: str(policy_dir("targets: []\n", settings)), ENV_DATA: str(data_dir),
                        ENV_DB: sqlite_url(data_dir), **(env or {})}
        with open(logs / "ui.log", "wb") as log:
            started.append(subprocess.Popen([sys.executable, "-m", "app.cli", "ui", "--bind", bind, "--port",
                                             str(port)], cwd=ROOT, env=environment, stdout=log,
                                            stderr=subprocess.STDOUT))
        app = Workbench(data_dir, f"http://127.0.0.1:{port}/", 0, logs, started[-1:])
        app.wait_for("the web app", lambda: answers(f"{app.ui_url}_stcore/health"))
        return app

    yield start
    for process in started:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def sso_app(provider, web_app):
    """The web app with single sign-on only, registered as a client at the provider (which then checks
    its secret, given through the environment variable the policy names, and its redirect URI)."""
    for subject, claims in PEOPLE.items():
        httpx.put(f"{provider}/users/{subject}", json=claims, trust_env=False).raise_for_status()
    port = free_port()
    redirect_uri = f"http://127.0.0.1:{port}/oauth2callback"
    client = httpx.post(f"{provider}/oauth2/clients", json={"redirect_uris": [redirect_uri]}, trust_env=False)
    client.raise_for_status()
    settings = OIDC_SETTINGS.format(provider=provider, client_id=client.json()["client_id"], secret_env=SECRET_ENV,
                                    redirect_uri=redirect_uri)
    return web_app(settings, port=port, env={SECRET_ENV: client.json()["client_secret"]})


def logins(app: Workbench) -> list[tuple[str, str, str, str]]:
    """The login log (``workbench users logins``), oldest first."""
    ledger = open_ledger(sqlite_url(app.data_dir))
    try:
        return [(e.name, e.method, e.outcome, e.detail) for e in reversed(queries.logins(ledger))]
    finally:
        ledger.dispose()


def sign_in(page: Page, subject: str) -> None:
    """From the login page, through the provider's authorization page, as ``subject``."""
    page.get_by_role("button", name="Log in with single sign-on").click()
    expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible(timeout=UI_TIMEOUT_MS)
    page.get_by_placeholder("sub").fill(subject)
    page.get_by_role("button", name="Authorize", exact=True).click()


def log_out(page: Page, app: Workbench) -> None:
    """Log out, end the session at the provider, and be back on the login page."""
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="End Session")).to_be_visible(timeout=UI_TIMEOUT_MS)
    page.get_by_role("button", name="End session").click()
    expect(page.get_by_role("button", name="Log in with single sign-on")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page).to_have_url(app.ui_url)


def test_single_sign_on_lets_in_an_allowed_person_with_their_role_and_logs_out(sso_app, page, screenshots):
    page.goto(sso_app.ui_url)
    expect(page.get_by_role("button", name="Log in with single sign-on")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_role("link", name="Incidents")).to_have_count(0)
    page.screenshot(path=screenshots / "sso-login.png", full_page=True)

    sign_in(page, "ann")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("ann@example.com · operator")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(sidebar.get_by_role("link", name="Incidents")).to_be_visible()
    expect(page).to_have_url(sso_app.ui_url)
    expect(page.get_by_text("No incidents match these filters.")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=UI_TIMEOUT_MS)
    page.screenshot(path=screenshots / "sso-signed-in.png", full_page=True)

    log_out(page, sso_app)
    page.reload()  # the identity cookie is gone: a new visit is not let in either
    expect(page.get_by_role("button", name="Log in with single sign-on")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_text("ann@example.com")).to_have_count(0)
    assert logins(sso_app) == [("ann@example.com", "single sign-on", "in", ""),
                               ("ann@example.com", "single sign-on", "out", "")]


def test_single_sign_on_refuses_the_identities_the_policy_does_not_allow(sso_app, page, screenshots):
    page.goto(sso_app.ui_url)
    refusals = [("eve", "eve@elsewhere.example", "eve@elsewhere.example is not allowed into this workbench"),
                ("bob", "bob@example.com", "bob@example.com is not allowed into this workbench (its e-mail address "
                                           "is not verified)")]
    for subject, _, why in refusals:
        sign_in(page, subject)
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text(why, exact=True)).to_be_visible()
        expect(page.get_by_text("Incidents")).to_have_count(0)
        page.screenshot(path=screenshots / f"sso-refused-{subject}.png", full_page=True)
        log_out(page, sso_app)
    assert logins(sso_app) == [(name, "single sign-on", "refused", why) for _, name, why in refusals]


def test_beyond_loopback_with_access_a_browser_from_another_address_gets_the_login_page(web_app, page, screenshots):
    app = web_app("access:\n  local_accounts: true\n", bind="0.0.0.0")
    elsewhere = app.ui_url.replace("127.0.0.1", "127.0.0.2")
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), trust_env=False) as client:
        assert client.get(elsewhere).status_code == 200
    page.goto(elsewhere)
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_label("Name")).to_be_visible()
    expect(page.get_by_role("link", name="Incidents")).to_have_count(0)
    page.screenshot(path=screenshots / "login-beyond-loopback.png", full_page=True)
