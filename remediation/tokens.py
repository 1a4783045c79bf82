"""Approval tokens: HMAC-SHA256 over what was approved, good for one run until they expire.

A token is ``<claims>.<signature>``: the claims (the approval's id, the request, the incident,
the action and its parameters, who approved and until when) as base64url of canonical JSON,
and the hex HMAC-SHA256 of that text. The key comes from the environment variable the
``approval_key_env`` setting names, or is generated once as ``approval.key`` in the data
directory, readable by its owner only. The key is never logged nor written to the ledger.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from remediation.errors import SigningKeyError, TokenRefused

KEY_FILE = "approval.key"
MIN_KEY_CHARS = 32


@dataclass(frozen=True)
class Claims:
    id: str  # the approval's id: a token is spent once per id
    request: int
    incident: int
    action: str
    parameters: dict
    approved_by: str
    expires_at: str  # ISO 8601, UTC


def new_approval_id() -> str:
    return secrets.token_hex(8)


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(key: bytes, claims: Claims) -> str:
    payload = base64.urlsafe_b64encode(canonical(asdict(claims))).decode().rstrip("=")
    return f"{payload}.{_mac(key, payload)}"


def verify(key: bytes, token: str, expected: Mapping[str, object], now: datetime) -> Claims:
    """The token's claims if it is signed with ``key``, was issued for exactly ``expected``
    (claims by name: the approval id, request, incident, action and parameters) and has not
    expired at ``now``; otherwise TokenRefused says which."""
    payload, _, signature = token.partition(".")
    if not hmac.compare_digest(signature.encode(), _mac(key, payload).encode()):
        raise TokenRefused("altered: the signature does not match the token")
    claims = _decode(payload)
    for name, value in expected.items():
        if getattr(claims, name) != value:
            raise TokenRefused(f"altered: the token was issued for another {name} than this request has")
    expires_at = datetime.fromisoformat(claims.expires_at)
    if now >= expires_at:
        raise TokenRefused(f"expired at {expires_at:%Y-%m-%d %H:%M:%S} UTC")
    return claims


def _mac(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def _decode(payload: str) -> Claims:
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return Claims(**data)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise TokenRefused(f"altered: the claims cannot be read ({type(exc).__name__})") from None


def signing_key(env_name: str, data_dir: Path, env: Mapping[str, str] = os.environ, file: str = KEY_FILE) -> bytes:
    """The key from ``env_name`` when it is set, else the one kept in ``data_dir`` as ``file``, made
    on first use."""
    value = env.get(env_name)
    if value:
        if len(value) < MIN_KEY_CHARS:
            raise SigningKeyError(f"{env_name} must hold at least {MIN_KEY_CHARS} characters")
        return value.encode()
    path = Path(data_dir) / file
    if not path.exists():
        _create_key(path)
    return _read_key(path)


def _create_key(path: Path) -> None:
    """Write a new key beside ``path`` with mode 0600 and link it into place, so that of two
    processes making one at once, both end up reading the same key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_hex(32) + "\n")
    try:
        os.link(fresh, path)
    except FileExistsError:
        pass
    finally:
        fresh.unlink()


def _read_key(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SigningKeyError(f"the key {path} is readable by others (mode {mode:04o}): chmod 600 it")
    key = path.read_text().strip()
    if len(key) < MIN_KEY_CHARS:
        raise SigningKeyError(f"the key {path} is shorter than {MIN_KEY_CHARS} characters")
    return key.encode()
