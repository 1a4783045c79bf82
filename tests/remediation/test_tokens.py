"""Approval tokens: HMAC-SHA256 over exactly what was approved; an altered, foreign or expired
token is refused. The signing key comes from the environment or is made once, mode 0600."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from datetime import timedelta

import pytest

from remediation.errors import SigningKeyError, TokenRefused
from remediation.tokens import KEY_FILE, Claims, sign, signing_key, verify
from tests.remediation.support import NOW

KEY = b"0123456789abcdef0123456789abcdef"
CLAIMS = Claims(id="a1b2c3d4e5f60718", request=5, incident=3, action="fault-off", parameters={"port": 8503},
                approved_by="alice", expires_at=(NOW + timedelta(minutes=15)).isoformat())
EXPECTED = {"id": CLAIMS.id, "request": 5, "incident": 3, "action": "fault-off", "parameters": {"port": 8503}}


def test_a_token_verifies_for_exactly_what_was_approved():
    token = sign(KEY, CLAIMS)
    assert verify(KEY, token, EXPECTED, NOW) == CLAIMS
    assert verify(KEY, token, EXPECTED, NOW + timedelta(minutes=14, seconds=59)) == CLAIMS


@pytest.mark.parametrize("field, value", [("request", 6), ("incident", 4), ("action", "restart"),
                                          ("parameters", {"port": 8504}), ("id", "ffffffffffffffff")])
def test_a_token_for_something_else_is_refused(field, value):
    with pytest.raises(TokenRefused, match=f"altered: the token was issued for another {field} than this request"):
        verify(KEY, sign(KEY, CLAIMS), {**EXPECTED, field: value}, NOW)


def test_an_altered_or_foreign_token_is_refused():
    forged = sign(KEY, replace(CLAIMS, parameters={"port": 22}))
    payload, signature = sign(KEY, CLAIMS).split(".")
    for token in (f"{forged.split('.')[0]}.{signature}", sign(b"another key" * 4, CLAIMS), payload, "", "x.y"):
        with pytest.raises(TokenRefused, match="altered: the signature does not match the token"):
            verify(KEY, token, EXPECTED, NOW)


def test_an_expired_token_is_refused():
    with pytest.raises(TokenRefused, match="expired at 2026-03-01 12:15:00 UTC"):
        verify(KEY, sign(KEY, CLAIMS), EXPECTED, NOW + timedelta(minutes=15))


def test_the_key_from_the_environment_wins_and_must_be_long(tmp_path):
    assert signing_key("APPROVAL_KEY", tmp_path, {"APPROVAL_KEY": "z" * 32}) == b"z" * 32
    assert not (tmp_path / KEY_FILE).exists()
    with pytest.raises(SigningKeyError, match="APPROVAL_KEY must hold at least 32 characters"):
        signing_key("APPROVAL_KEY", tmp_path, {"APPROVAL_KEY": "short"})


def test_without_it_a_key_is_made_once_readable_by_its_owner_only(tmp_path):
    data = tmp_path / "var"
    key = signing_key("APPROVAL_KEY", data, {})
    assert len(key) == 64 and signing_key("APPROVAL_KEY", data, {}) == key
    assert stat.S_IMODE((data / KEY_FILE).stat().st_mode) == 0o600
    assert sorted(p.name for p in data.iterdir()) == [KEY_FILE]


def test_a_key_file_others_can_read_is_refused(tmp_path):
    signing_key("APPROVAL_KEY", tmp_path, {})
    os.chmod(tmp_path / KEY_FILE, 0o644)
    with pytest.raises(SigningKeyError, match=r"is readable by others \(mode 0644\): chmod 600 it"):
        signing_key("APPROVAL_KEY", tmp_path, {})
