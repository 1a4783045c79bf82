"""Who acts, and whether they may: an identity from the command line, from a login to the web app
(a local account with its password and optional TOTP code, or single sign-on), or from an API
token; the role each holds, which the operator actions check (app.operator), whatever the surface."""

from __future__ import annotations

import base64
import getpass
import hashlib
import ipaddress
import json
import os
import pwd
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from ledger.db import as_utc, read_session, write_session
from ledger.repo import access as repo
from policies.errors import WorkbenchError
from policies.loader import Policy
from policies.schema import ROLES, SCOPES, AccessSettings, OidcAccess, Role
from remediation.tokens import signing_key

ISSUER = "SRE Workbench"  # the name an authenticator app shows beside the code
MIN_PASSWORD_CHARS = 12
TOKEN_PREFIX = "wbt_"
LOOPBACK = "127.0.0.1"
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("a password nobody has")  # verified against for unknown names, to take as long


@dataclass(frozen=True)
class Identity:
    """Who acts: the name every audit entry records, their role, and by which way in. A login's
    ``authenticated_at`` says when they last proved who they are (None: present now, as at the CLI)."""

    name: str
    role: Role
    via: str
    authenticated_at: datetime | None = None

    def may(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


class AccessDenied(WorkbenchError):
    """The identity's role does not allow what it asked for."""


class StepUpRequired(AccessDenied):
    """The login is too old for this: prove who you are again first."""


class LoginRefused(WorkbenchError):
    """A login that did not let the person in, in words they can act on."""


class CodeRequired(LoginRefused):
    """The password was right and the account has TOTP: the code is asked next."""


def require(identity: Identity, role: Role, what: str) -> None:
    if not identity.may(role):
        raise AccessDenied(f"{identity.name} is a {identity.role} and may not {what}: that takes the {role} role")


def os_user() -> str:
    """The local OS user: who acts from the CLI (and from a web app without login). The account of
    the process's user id, not $USER or $LOGNAME, which anyone sets as they like."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, OSError):
        return getpass.getuser()


def cli_identity(engine: Engine, policy: Policy) -> Identity:
    """The OS user at the command line: without ``access:`` the one operator, with every role; with it,
    the role of the account of the same name, else ``access.cli_role``."""
    name = os_user()
    access = policy.settings.access
    if access is None:
        return Identity(name, "approver", "command line")
    with read_session(engine) as session:
        account = repo.account(session, name)
        return Identity(name, account.role if account else access.cli_role, "command line")


def box_identity() -> Identity:
    """Whoever reaches a web app without login: it listens on loopback only, so the box's own user."""
    return Identity(os_user(), "approver", "web app on loopback, no login")


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def beyond_loopback_refused(host: str, settings, what: str) -> str | None:
    """Why ``what`` must not listen on ``host``, if it must not: beyond loopback, only with login
    configured (``access:``); the worker's webhook then takes only a bearer token (the one of
    ``ingest_token_env``, or an API token with the ingest scope)."""
    if is_loopback(host) or settings.access is not None:
        return None
    return (f"{what} would listen on {host}, beyond loopback, and settings.yaml has no access: section: anyone "
            f"reaching it could act without logging in. Configure access (docs/security.md), or listen on {LOOPBACK}")


# Local accounts ------------------------------------------------------------------------------

def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise WorkbenchError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")


def add_account(engine: Engine, data_dir: Path, access: AccessSettings | None, *, name: str, role: Role,
                password: str, totp: bool, created_by: str, now: datetime) -> str | None:
    """Make a local account; return its TOTP secret (base32) when one is enrolled, for the
    authenticator app. The ledger keeps the password's argon2 hash and the secret encrypted."""
    if not name or len(name) > 100 or not name.isprintable():
        raise WorkbenchError(f"not an account name: {name!r} (printable, at most 100 characters)")
    check_password(password)
    secret = pyotp.random_base32() if totp else None
    try:
        with write_session(engine) as session:
            repo.add_account(session, name=name, role=role, password_hash=_HASHER.hash(password),
                             totp_secret=_cipher(access, data_dir).encrypt(secret.encode()).decode() if secret else None,
                             created_by=created_by, now=now)
    except IntegrityError:
        raise WorkbenchError(f"an account named {name!r} exists already") from None
    return secret


def provisioning_uri(name: str, secret: str) -> str:
    """What the QR code holds: the otpauth:// address an authenticator app enrols from."""
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)


def enrol_totp(engine: Engine, data_dir: Path, access: AccessSettings | None, name: str) -> str:
    """A new TOTP secret for the account (the old one stops working); return it for the app."""
    secret = pyotp.random_base32()
    with write_session(engine) as session:
        repo.existing_account(session, name).totp_secret = _cipher(access, data_dir).encrypt(secret.encode()).decode()
    return secret


def set_role(engine: Engine, name: str, role: Role) -> None:
    with write_session(engine) as session:
        repo.existing_account(session, name).role = role


def set_password(engine: Engine, name: str, password: str, now: datetime) -> None:
    """A new password (the account is unlocked, and its open logins end)."""
    check_password(password)
    with write_session(engine) as session:
        account = repo.existing_account(session, name)
        account.password_hash, account.failed_logins, account.locked_until = _HASHER.hash(password), 0, None
        repo.end_login_sessions(session, name, now)


def unlock(engine: Engine, name: str) -> None:
    with write_session(engine) as session:
        account = repo.existing_account(session, name)
        account.failed_logins, account.locked_until = 0, None


def remove_account(engine: Engine, name: str, now: datetime) -> None:
    """Remove an account and end its open logins (an account added again by that name starts without them)."""
    with write_session(engine) as session:
        session.delete(repo.existing_account(session, name))
        repo.end_login_sessions(session, name, now)


def log_in(engine: Engine, access: AccessSettings, data_dir: Path, name: str, password: str | None,
           code: str | None, now: datetime) -> Identity:
    """Let a local account in, or say why not. A wrong password or code counts towards the lock
    (``max_failed_logins`` in a row lock the account for ``lockout``); a right password without the
    code of an account with TOTP raises CodeRequired and counts nothing. ``password`` None: it was
    verified a moment ago (CodeRequired) and only the code is checked now. Every outcome is logged."""
    with write_session(engine) as session:  # what is logged is committed before a refusal is raised
        identity, refusal = _attempt(session, access, data_dir, name, password, code, now)
    if refusal is not None:
        raise refusal
    return identity


def _attempt(session, access: AccessSettings, data_dir: Path, name: str, password: str | None, code: str | None,
             now: datetime) -> tuple[Identity | None, LoginRefused | None]:
    account = repo.account(session, name)
    if account is None:
        _HASHER.verify(_DUMMY_HASH, "a password nobody has")  # as long as for a known name
        repo.record_login(session, name=name, method="password", outcome="refused", at=now, detail="no such account")
        return None, LoginRefused("wrong name or password")
    if account.locked_until is not None and as_utc(account.locked_until) > now:
        repo.record_login(session, name=name, method="password", outcome="locked", at=now)
        return None, LoginRefused(f"this account is locked after {account.failed_logins} failed logins, until "
                                  f"{as_utc(account.locked_until):%H:%M} UTC (or until `workbench users unlock {name}`)")
    if account.locked_until is not None:  # the lock has run out: the count starts again
        account.failed_logins, account.locked_until = 0, None
    method, failure = "password", None
    if password is not None and not _password_matches(account.password_hash, password):
        failure = "wrong name or password"
    elif account.totp_secret:
        method = "totp"
        if not code:
            return None, CodeRequired("enter the 6-digit code from your authenticator app")
        try:
            secret = _cipher(access, data_dir).decrypt(account.totp_secret.encode()).decode()
        except InvalidToken:
            repo.record_login(session, name=name, method=method, outcome="refused", at=now,
                              detail="the TOTP secret cannot be read with the TOTP key")
            return None, LoginRefused("this account's TOTP secret cannot be read (the TOTP key changed): enrol "
                                      f"again with `workbench users totp {name}`")
        if not pyotp.TOTP(secret).verify(code.strip(), for_time=now, valid_window=1):
            failure = "wrong code"
    if failure is None:
        account.failed_logins, account.locked_until, account.last_login_at = 0, None, now
        repo.record_login(session, name=name, method=method, outcome="in", at=now)
        return Identity(name, account.role, "web app", now), None
    account.failed_logins += 1
    if account.failed_logins < access.max_failed_logins:
        repo.record_login(session, name=name, method=method, outcome="refused", at=now,
                          detail=f"{failure} ({account.failed_logins} in a row)")
        return None, LoginRefused(failure)
    account.locked_until = now + access.lockout
    repo.record_login(session, name=name, method=method, outcome="locked", at=now,
                      detail=f"{failure} ({account.failed_logins} in a row)")
    return None, LoginRefused(f"{failure}: {account.failed_logins} failed logins in a row lock this account until "
                              f"{as_utc(account.locked_until):%H:%M} UTC")


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def open_session(engine: Engine, identity: Identity, access: AccessSettings, now: datetime) -> str:
    """A login that outlasts the browser tab: return the token for its cookie (the ledger keeps its
    SHA-256); it lasts ``access.session_ttl`` from the login."""
    token = secrets.token_urlsafe(32)
    with write_session(engine) as session:
        repo.add_login_session(session, token_hash=_digest(token), name=identity.name,
                               authenticated_at=identity.authenticated_at or now,
                               expires_at=(identity.authenticated_at or now) + access.session_ttl)
    return token


def session_identity(engine: Engine, token: str | None, now: datetime) -> Identity | None:
    """Who a login cookie's token speaks for, while the login lasts and the account exists, with the
    account's role as it is now (a role changed or an account removed takes effect at once)."""
    if not token:
        return None
    with read_session(engine) as session:
        row = repo.login_session(session, _digest(token))
        if row is None or row.ended_at is not None or as_utc(row.expires_at) <= now:
            return None
        account = repo.account(session, row.name)
        if account is None:
            return None
        return Identity(account.name, account.role, "web app", as_utc(row.authenticated_at))


def renew_session(engine: Engine, token: str | None, identity: Identity) -> None:
    """A step-up proved who they are again: the login's time moves to now (not its end)."""
    if token:
        with write_session(engine) as session:
            if row := repo.login_session(session, _digest(token)):
                row.authenticated_at = identity.authenticated_at


def record_single_sign_on(engine: Engine, name: str, now: datetime, refused: str = "") -> None:
    """Log a single sign-on the policy let in, or refused (``refused``: why)."""
    with write_session(engine) as session:
        repo.record_login(session, name=name, method="single sign-on", outcome="refused" if refused else "in", at=now,
                          detail=refused)


def record_logout(engine: Engine, identity: Identity, now: datetime, token: str | None = None) -> None:
    with write_session(engine) as session:
        repo.record_login(session, name=identity.name, method=identity.via, outcome="out", at=now)
        if token and (row := repo.login_session(session, _digest(token))):
            row.ended_at = now


def _cipher(access: AccessSettings | None, data_dir: Path) -> Fernet:
    """What encrypts TOTP secrets: the key of ``access.totp_key_env`` or the one kept in the data directory."""
    env = access.totp_key_env if access else AccessSettings.model_fields["totp_key_env"].default
    key = signing_key(env, data_dir, file="totp.key")
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key).digest()))


def cookie_secret(access: AccessSettings, data_dir: Path) -> str:
    """The key that signs single sign-on's cookie."""
    return signing_key(access.cookie_secret_env, data_dir, file="cookie.key").decode()


# Single sign-on ------------------------------------------------------------------------------

def streamlit_auth_file(access: AccessSettings, data_dir: Path, env: Mapping[str, str]) -> Path:
    """Write the ``[auth]`` settings ``st.login`` reads (Streamlit's secrets file, mode 0600, in the data
    directory) from the policy and the client secret of the environment; return its path."""
    oidc = access.oidc
    secret = env.get(oidc.client_secret_env)
    if not secret:
        raise WorkbenchError(f"single sign-on needs the client secret: set {oidc.client_secret_env}")
    values = {"redirect_uri": oidc.redirect_uri, "cookie_secret": cookie_secret(access, data_dir),
              "client_id": oidc.client_id, "client_secret": secret, "server_metadata_url": oidc.server_metadata_url}
    path = data_dir / "streamlit" / "secrets.toml"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fresh = path.with_name(f".secrets.{secrets.token_hex(4)}")
    descriptor = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:  # TOML's basic strings escape as JSON's do
        file.write("[auth]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
                   + f"[auth.client_kwargs]\nscope = {json.dumps(' '.join(oidc.scopes))}\n")
    fresh.replace(path)
    return path


def oidc_identity(oidc: OidcAccess, claims: Mapping[str, object], now: datetime) -> Identity:
    """The identity of a single sign-on, if the policy lets it in: its subject listed, or a
    verified e-mail address in a listed domain; its role from ``role_claim``."""
    subject, email = str(claims.get("sub") or ""), str(claims.get("email") or "")
    domain = email.rpartition("@")[2].lower() if "@" in email else ""
    verified = claims.get("email_verified") in (True, "true")
    who = email or subject
    if subject not in oidc.allow_subjects and not (verified and domain in oidc.allow_domains):
        raise AccessDenied(f"{who or 'this identity'} is not allowed into this workbench"
                           + ("" if verified or not email else " (its e-mail address is not verified)"))
    values = claims.get(oidc.role_claim)
    values = [values] if isinstance(values, str) else list(values) if isinstance(values, list) else []
    mapped = [oidc.roles[str(v)] for v in values if str(v) in oidc.roles]
    role = max(mapped, key=ROLES.index) if mapped else oidc.default_role
    if role is None:
        raise AccessDenied(f"{who} is allowed in, but no value of its {oidc.role_claim!r} claim maps to a role")
    signed_in = claims.get("auth_time") or claims.get("iat")
    at = datetime.fromtimestamp(float(signed_in), UTC) if isinstance(signed_in, (int, float)) else now
    return Identity(who, role, "single sign-on", at)


# API tokens ----------------------------------------------------------------------------------

def add_token(engine: Engine, name: str, scopes: list[str], *, created_by: str, now: datetime) -> str:
    """Make an API token; return it, the one time it is shown (the ledger keeps its SHA-256)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise WorkbenchError(f"scopes are {', '.join(SCOPES)}; got {', '.join(unknown) or 'none'}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with write_session(engine) as session:
            repo.add_token(session, name=name, token_hash=_digest(token), scopes=sorted(set(scopes)),
                           created_by=created_by, now=now)
    except IntegrityError:
        raise WorkbenchError(f"an API token named {name!r} exists already") from None
    return token


def revoke_token(engine: Engine, name: str, now: datetime) -> None:
    with write_session(engine) as session:
        row = repo.token_named(session, name)
        row.revoked_at = row.revoked_at or now


def token_identity(engine: Engine, authorization: str | None, scope: str, now: datetime) -> Identity | None:
    """Who a request's ``Authorization: Bearer`` API token speaks for, if it is live and has ``scope``;
    a token with the act scope acts as an operator, any other reads."""
    kind, _, presented = (authorization or "").partition(" ")
    presented = presented.strip()
    if kind.lower() != "bearer" or not presented.startswith(TOKEN_PREFIX):
        return None
    with write_session(engine) as session:
        row = repo.token_by_hash(session, _digest(presented))
        if row is None or row.revoked_at is not None or scope not in row.scopes:
            return None
        row.last_used_at = now
        return Identity(f"token {row.name}", "operator" if "act" in row.scopes else "viewer", "API token", now)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

