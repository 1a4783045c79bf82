"""Access on a real ledger (SQLite and PostgreSQL): local accounts keep an argon2 hash and an
encrypted TOTP secret, never the password or the secret in the clear; failed logins lock an account;
single sign-on lets in only the listed subjects or verified domains, with the role its claim maps;
API tokens are kept hashed and scoped; and the operator actions check roles, self-approval and the
step-up of a disruptive approval, whoever calls them."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlmodel import select

from app import access, operator
from app.access import AccessDenied, CodeRequired, Identity, LoginRefused, StepUpRequired
from ledger.db import read_session
from ledger.repo import actions
from ledger.tables import Account, ApiToken, LoginEvent, LoginSession, TimelineEntry
from policies.errors import WorkbenchError
from policies.loader import load_policy
from policies.schema import AccessSettings, OidcAccess
from tests.remediation.support import NOW, open_incident, write_policy

PASSWORD = "correct horse battery"
ACCESS = AccessSettings(max_failed_logins=3, lockout=timedelta(minutes=15), step_up_after=timedelta(minutes=10))
ACTIONS = """
actions:
  - id: restart-web
    runner: {kind: command, argv: [/bin/echo, restart]}
    risk: disruptive
    postures: [demo]
    enabled: true
"""


def add(engine, tmp_path, name="alice", role="operator", totp=False):
    return access.add_account(engine, tmp_path, ACCESS, name=name, role=role, password=PASSWORD, totp=totp,
                              created_by="root", now=NOW)


def test_an_account_keeps_a_hash_and_an_encrypted_secret(engine, tmp_path):
    secret = add(engine, tmp_path, totp=True)
    with read_session(engine) as session:
        row = session.get(Account, "alice")
        assert row.password_hash.startswith("$argon2") and PASSWORD not in row.password_hash
        assert secret not in row.totp_secret
    assert access.provisioning_uri("alice", secret).startswith("otpauth://totp/SRE%20Workbench:alice?secret=")
    with pytest.raises(WorkbenchError, match="exists already"):
        add(engine, tmp_path)
    with pytest.raises(WorkbenchError, match="at least 12 characters"):
        access.add_account(engine, tmp_path, ACCESS, name="bob", role="viewer", password="short", totp=False,
                           created_by="root", now=NOW)


def test_a_password_and_then_the_code(engine, tmp_path):
    secret = add(engine, tmp_path, totp=True)
    with pytest.raises(CodeRequired):
        access.log_in(engine, ACCESS, tmp_path, "alice", PASSWORD, None, NOW)
    with pytest.raises(LoginRefused, match="wrong code"):
        access.log_in(engine, ACCESS, tmp_path, "alice", None, "000000" if pyotp.TOTP(secret).at(NOW) != "000000"
                      else "111111", NOW)
    identity = access.log_in(engine, ACCESS, tmp_path, "alice", None, pyotp.TOTP(secret).at(NOW), NOW)
    assert identity == Identity("alice", "operator", "web app", NOW)
    with read_session(engine) as session:
        events = [(e.method, e.outcome) for e in session.exec(select(LoginEvent).order_by(LoginEvent.id))]
    assert events == [("totp", "refused"), ("totp", "in")]


def test_failed_logins_lock_the_account_until_it_is_unlocked(engine, tmp_path):
    add(engine, tmp_path)
    for _ in range(2):
        with pytest.raises(LoginRefused, match="^wrong name or password$"):
            access.log_in(engine, ACCESS, tmp_path, "alice", "not the password", None, NOW)
    with pytest.raises(LoginRefused, match="3 failed logins in a row lock this account until 12:15 UTC"):
        access.log_in(engine, ACCESS, tmp_path, "alice", "not the password", None, NOW)
    with pytest.raises(LoginRefused, match="locked"):  # the right password does not open a locked account
        access.log_in(engine, ACCESS, tmp_path, "alice", PASSWORD, None, NOW + timedelta(minutes=14))
    with pytest.raises(LoginRefused, match="^wrong name or password$"):  # a lock that ran out leaves no count
        access.log_in(engine, ACCESS, tmp_path, "alice", "not the password", None, NOW + timedelta(minutes=16))
    assert access.log_in(engine, ACCESS, tmp_path, "alice", PASSWORD, None, NOW + timedelta(minutes=16)).name == "alice"
    for _ in range(3):
        with pytest.raises(LoginRefused):
            access.log_in(engine, ACCESS, tmp_path, "alice", "nope", None, NOW)
    access.unlock(engine, "alice")
    assert access.log_in(engine, ACCESS, tmp_path, "alice", PASSWORD, None, NOW).role == "operator"


def test_an_unknown_name_reads_as_a_wrong_password_and_every_refusal_is_logged(engine, tmp_path):
    with pytest.raises(LoginRefused, match="^wrong name or password$"):
        access.log_in(engine, ACCESS, tmp_path, "mallory", PASSWORD, None, NOW)
    add(engine, tmp_path)
    for _ in range(4):
        with pytest.raises(LoginRefused):
            access.log_in(engine, ACCESS, tmp_path, "alice", "nope", None, NOW)
    with read_session(engine) as session:
        events = [(e.name, e.outcome, e.detail) for e in session.exec(select(LoginEvent).order_by(LoginEvent.id))]
    assert events == [("mallory", "refused", "no such account"),
                      ("alice", "refused", "wrong name or password (1 in a row)"),
                      ("alice", "refused", "wrong name or password (2 in a row)"),
                      ("alice", "locked", "wrong name or password (3 in a row)"), ("alice", "locked", "")]


OIDC = OidcAccess(server_metadata_url="http://127.0.0.1:1/.well-known/openid-configuration", client_id="wb",
                  redirect_uri="http://127.0.0.1:8501/oauth2callback", allow_subjects=["robot-7"],
                  allow_domains=["example.com"], role_claim="groups",
                  roles={"sre": "operator", "sre-leads": "approver"})


def test_single_sign_on_lets_in_the_listed_with_their_role():
    claims = {"sub": "u1", "email": "ann@example.com", "email_verified": True, "groups": ["sre", "sre-leads"],
              "iat": NOW.timestamp() - 60}
    assert access.oidc_identity(OIDC, claims, NOW) == Identity("ann@example.com", "approver", "single sign-on",
                                                               NOW - timedelta(minutes=1))
    assert access.oidc_identity(OIDC, {"sub": "robot-7"}, NOW).role == "viewer"  # default_role
    with pytest.raises(AccessDenied, match="eve@evil.example is not allowed"):
        access.oidc_identity(OIDC, {"sub": "u2", "email": "eve@evil.example", "email_verified": True}, NOW)
    with pytest.raises(AccessDenied, match="not verified"):
        access.oidc_identity(OIDC, {"sub": "u3", "email": "bob@example.com", "email_verified": False}, NOW)
    strict = OIDC.model_copy(update={"default_role": None})
    with pytest.raises(AccessDenied, match="no value of its 'groups' claim maps to a role"):
        access.oidc_identity(strict, {"sub": "robot-7", "groups": "other"}, NOW)


def test_api_tokens_are_kept_hashed_scoped_and_revocable(engine):
    token = access.add_token(engine, "alertmanager", ["ingest"], created_by="root", now=NOW)
    with read_session(engine) as session:
        assert token not in str(session.exec(select(ApiToken)).one().model_dump())
    assert access.token_identity(engine, f"Bearer {token}", "ingest", NOW) == Identity(
        "token alertmanager", "viewer", "API token", NOW)
    assert access.token_identity(engine, f"Bearer {token}", "act", NOW) is None
    assert access.token_identity(engine, f"Bearer {token}x", "ingest", NOW) is None
    access.revoke_token(engine, "alertmanager", NOW)
    assert access.token_identity(engine, f"Bearer {token}", "ingest", NOW) is None
    with pytest.raises(WorkbenchError, match="scopes are ingest, read, act"):
        access.add_token(engine, "x", ["write"], created_by="root", now=NOW)


@pytest.fixture
def proposed(engine, tmp_path):
    """A disruptive action proposed by alice, under a policy with access (and one without)."""
    with_access = load_policy(write_policy(tmp_path / "with", actions=ACTIONS, settings="access:\n  step_up_after: 10m\n"))
    incident = open_incident(engine)
    request = operator.propose(engine, with_access, incident, "restart-web", {}, reason="web is stuck", now=NOW,
                               actor=Identity("alice", "operator", "web app", NOW))
    return with_access, request.id


def test_roles_are_checked_by_the_operator_actions(engine, proposed, tmp_path):
    policy, request_id = proposed
    viewer = Identity("vic", "viewer", "web app", NOW)
    with pytest.raises(AccessDenied, match="vic is a viewer and may not acknowledge incidents: that takes the "
                                           "operator role"):
        operator.acknowledge(engine, 1, actor=viewer)
    with pytest.raises(AccessDenied, match="may not add silences"):
        operator.create_silence(engine, kind="silence", matchers=["service=shop"], duration="1h", comment="x",
                                author=viewer, now=NOW)
    with pytest.raises(AccessDenied, match="may not decide action requests"):
        operator.approve(engine, policy, tmp_path, request_id, actor=Identity("olga", "operator", "web app", NOW),
                         reason="go", now=NOW)


def test_who_proposed_does_not_approve_unless_the_policy_allows(engine, proposed, tmp_path):
    policy, request_id = proposed
    alice = Identity("alice", "approver", "web app", NOW)
    with pytest.raises(WorkbenchError, match="alice proposed request #1: another approver decides it"):
        operator.approve(engine, policy, tmp_path, request_id, actor=alice, reason="go", now=NOW)
    allowed = load_policy(write_policy(tmp_path / "self", actions=ACTIONS, settings="access:\n  self_approval: true\n"))
    request = operator.approve(engine, allowed, tmp_path, request_id, actor=alice, reason="go", now=NOW)
    assert request.decided_by == "alice"
    with read_session(engine) as session:
        said = [t.message for t in session.exec(select(TimelineEntry)) if "approved by" in t.message]
    assert said and "self-approved: alice proposed it; access.self_approval allows it" in said[0]


def test_a_disruptive_approval_asks_for_a_fresh_login(engine, proposed, tmp_path):
    policy, request_id = proposed
    stale = Identity("bob", "approver", "web app", NOW - timedelta(minutes=11))
    with pytest.raises(StepUpRequired, match="a login younger than 10m: confirm"):
        operator.approve(engine, policy, tmp_path, request_id, actor=stale, reason="go", now=NOW)
    with read_session(engine) as session:
        assert actions.action_request(session, request_id).status == "pending"
    fresh = Identity("bob", "approver", "web app", NOW - timedelta(minutes=9))
    assert operator.approve(engine, policy, tmp_path, request_id, actor=fresh, reason="go", now=NOW).decided_by == "bob"


def test_the_command_line_is_the_os_user_with_the_role_the_policy_gives(engine, tmp_path):
    without = load_policy(write_policy(tmp_path / "none"))
    assert access.cli_identity(engine, without) == Identity(access.os_user(), "approver", "command line")
    with_access = load_policy(write_policy(tmp_path / "with", settings="access:\n  cli_role: operator\n"))
    assert access.cli_identity(engine, with_access).role == "operator"
    access.add_account(engine, tmp_path, ACCESS, name=access.os_user(), role="viewer", password=PASSWORD, totp=False,
                       created_by="root", now=NOW)
    assert access.cli_identity(engine, with_access).role == "viewer"


def test_a_login_session_lasts_its_time_follows_the_account_and_ends_at_logout(engine, tmp_path):
    add(engine, tmp_path)
    alice = access.log_in(engine, ACCESS, tmp_path, "alice", PASSWORD, None, NOW)
    token = access.open_session(engine, alice, ACCESS, NOW)
    with read_session(engine) as session:
        assert token not in str([row.model_dump() for row in session.exec(select(LoginSession))])
    assert access.session_identity(engine, token, NOW + timedelta(hours=1)) == alice
    access.set_role(engine, "alice", "viewer")
    assert access.session_identity(engine, token, NOW).role == "viewer"  # a changed role takes effect at once
    assert access.session_identity(engine, token, NOW + ACCESS.session_ttl) is None
    assert access.session_identity(engine, "not-a-token", NOW) is None
    access.record_logout(engine, alice, NOW, token)
    assert access.session_identity(engine, token, NOW) is None
    other = access.open_session(engine, alice, ACCESS, NOW)
    access.set_password(engine, "alice", "a brand new password", NOW)  # a new password ends the open logins
    assert access.session_identity(engine, other, NOW) is None
    third = access.open_session(engine, alice, ACCESS, NOW)
    access.remove_account(engine, "alice", NOW)
    access.add_account(engine, tmp_path, ACCESS, name="alice", role="approver", password=PASSWORD, totp=False,
                       created_by="root", now=NOW)
    assert access.session_identity(engine, third, NOW) is None  # not revived by an account of the same name
    assert access.session_identity(engine, other, NOW) is None
