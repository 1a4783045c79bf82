"""Writes of access: local accounts (their hash, role, TOTP secret, failed logins and lock), the log
of logins, and API tokens (their hash and scopes)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from ledger.errors import NotFound
from ledger.tables import Account, ApiToken, LoginEvent, LoginSession


def account(session: Session, name: str) -> Account | None:
    return session.get(Account, name)


def add_account(session: Session, *, name: str, role: str, password_hash: str, totp_secret: str | None,
                created_by: str, now: datetime) -> Account:
    row = Account(name=name, role=role, password_hash=password_hash, totp_secret=totp_secret, created_at=now,
                  created_by=created_by)
    session.add(row)
    return row


def existing_account(session: Session, name: str) -> Account:
    row = session.get(Account, name)
    if row is None:
        raise NotFound(f"no account named {name!r}")
    return row


def record_login(session: Session, *, name: str, method: str, outcome: str, at: datetime, detail: str = "") -> None:
    session.add(LoginEvent(at=at, name=name[:200], method=method, outcome=outcome, detail=detail))


def add_login_session(session: Session, *, token_hash: str, name: str, authenticated_at: datetime,
                      expires_at: datetime) -> LoginSession:
    row = LoginSession(token_hash=token_hash, name=name, authenticated_at=authenticated_at, expires_at=expires_at)
    session.add(row)
    return row


def login_session(session: Session, token_hash: str) -> LoginSession | None:
    return session.exec(select(LoginSession).where(LoginSession.token_hash == token_hash)).first()


def end_login_sessions(session: Session, name: str, now: datetime) -> None:
    for row in session.exec(select(LoginSession).where(LoginSession.name == name,
                                                       col(LoginSession.ended_at).is_(None))):
        row.ended_at = now


def add_token(session: Session, *, name: str, token_hash: str, scopes: list[str], created_by: str,
              now: datetime) -> ApiToken:
    row = ApiToken(name=name, token_hash=token_hash, scopes=scopes, created_at=now, created_by=created_by)
    session.add(row)
    return row


def token_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    return session.exec(select(ApiToken).where(ApiToken.token_hash == token_hash)).first()


def token_named(session: Session, name: str) -> ApiToken:
    row = session.exec(select(ApiToken).where(ApiToken.name == name)).first()
    if row is None:
        raise NotFound(f"no API token named {name!r}")
    return row
