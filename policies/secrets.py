"""Secrets are referenced from the environment as ``${NAME}`` and never stored.

``expand`` fills the references in for one use and returns the secret values it used, so
the caller can ``redact`` them from anything it records (evidence, errors, logs).
``policy_secrets`` are the values of every secret a policy references: what the ledger masks
in every row it writes and shows (``redact_data`` over each value that came from outside).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

from policies.errors import WorkbenchError

if TYPE_CHECKING:
    from policies.loader import Policy

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MASK = "***"
# Shapes that are secrets whatever their source: bearer tokens, basic auth, key=value pairs, URL
# userinfo, JSON web tokens and API keys with a well-known prefix (OpenAI, GitHub, Slack, GitLab,
# AWS). Group 1 (and 2, when there is one) is kept around the mask. Each pattern takes time linear
# in the text: its quantifiers are possessive (nothing they give back could let the match go on),
# and a pattern that scans a long run starts only where that run starts, never again inside it.
# Beside each, words one of which every text it matches holds (lower-case for a pattern that
# ignores case): a text holding none is not scanned, which spares the slow scans of most text.
_SHAPES = [
    (re.compile(r"(?i)(bearer\s++)[A-Za-z0-9._~+/=-]{8,}+"), ("bearer",)),
    (re.compile(r"(?i)(basic\s++)[A-Za-z0-9+/=]{8,}+"), ("basic",)),
    (re.compile(r"(?i)((?:password|passwd|secret|token|api[_-]?key)[\"']?+\s*+[:=]\s*+[\"']?+)[^\s\"'&,;]{4,}+"),
     ("pass", "secret", "token", "api")),
    (re.compile(r"(://[^/\s:@]++:)[^/\s@]++(@)"), ("://",)),
    # a JWT starts at the first "eyJ" of its run of [\w-] that follows a non-word character: a
    # later one in the same run has the same end and a shorter first part, so it is not tried
    (re.compile(r"(?<![\w-])(?>((?:\w*+-)*?)eyJ)[\w-]{8,}+\.[\w-]{8,}+\.[\w-]{8,}+"), ("eyJ",)),
    (re.compile(r"()\b(?:(?:sk|ghp|gho|ghs|github_pat|xox[abpr]|glpat)[-_][A-Za-z0-9_-]{12,}+|AKIA[0-9A-Z]{16})"),
     ("sk-", "sk_", "ghp", "gho", "ghs", "github_pat", "xox", "glpat", "AKIA")),
]
# An address starts where its run of local-part characters starts, or where one just ended:
# "a@b.com1x@y.org" is two, masked as one.
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])"
                    r"(?:(?>[A-Za-z0-9._%+-]++@[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)*\.[A-Za-z]{2,}+))++")
# Shortest base64 form of a secret masked: 36 bits of it, which other text matches by chance once
# in 2**36 positions; shorter forms (of secrets of 4 bytes or fewer) would mask ordinary words.
_MIN_BASE64 = 6


class MissingSecret(WorkbenchError):
    pass


def references(template: str) -> list[str]:
    return _REFERENCE.findall(template)


def expand(template: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Return ``template`` with every ``${NAME}`` replaced from ``env``, and the values used."""
    used: list[str] = []

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name not in env:
            raise MissingSecret(f"environment variable {name} is not set")
        used.append(env[name])
        return env[name]

    return _REFERENCE.sub(fill, template), used


def policy_secrets(policy: Policy, env: Mapping[str, str] = os.environ) -> list[str]:
    """The values, set in ``env``, of the secrets ``policy`` references: every ``${NAME}`` in it
    (targets' URLs and headers, actions, routing providers, settings) and the variables its
    settings name for the webhook's bearer token, the approval signing key and, with ``access:``,
    the TOTP key, the sign-on cookie's key and the single sign-on client secret."""
    names = set(references(json.dumps(policy.model_dump(mode="json"))))
    names |= {policy.settings.ingest_token_env, policy.settings.approval_key_env}
    if access := policy.settings.access:
        names |= {access.totp_key_env, access.cookie_secret_env}
        if access.oidc is not None:
            names.add(access.oidc.client_secret_env)
    return [env[name] for name in sorted(names) if env.get(name)]


def encodings(secrets: Iterable[str]) -> set[str]:
    """Every form in which the secret values may appear in text: raw, URL-encoded (``quote``
    with and without ``/`` kept, ``quote_plus``), JSON-escaped (ASCII-only or not), and base64
    (standard and URL-safe, padded or not), encoded alone or as part of a longer encoded text
    such as the ``name:secret`` of basic auth, for any name. Not covered: encodings stacked on
    one another (base64 then URL-encoded) and base64 wrapped over several lines."""
    forms = set()
    for secret in filter(None, secrets):
        forms.update((secret, quote(secret), quote(secret, safe=""), quote_plus(secret),
                      json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]))
        forms.update(_base64_forms(secret.encode()))
    return forms


def _base64_forms(raw: bytes) -> Iterator[str]:
    """``raw`` in base64: whole, padded or not, and for each of the three positions it can take
    after other bytes, the characters that encode its bits only (the text around it changes the
    others); none shorter than ``_MIN_BASE64``."""
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        forms = [whole, whole.rstrip("=")]
        for offset in range(3):
            text = encode(bytes(offset) + raw).decode()
            forms.append(text[-(-4 * offset // 3):4 * (offset + len(raw)) // 3])
        yield from (form for form in forms if len(form) >= _MIN_BASE64)


@lru_cache(maxsize=256)
def _known(secrets: frozenset[str]) -> re.Pattern | None:
    """One pattern for every encoding of the secrets, longest first (where two start at the
    same place, the longer one is masked), so the text is scanned once whatever their number."""
    forms = sorted(encodings(secrets), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, forms))) if forms else None


def redact(text: str, secrets: Iterable[str] = (), *, emails: bool = False) -> str:
    """``text`` with the given secret values (in any of their ``encodings``) and secret-shaped
    strings masked, and e-mail addresses too when ``emails`` (what leaves the machine, such as a
    model's prompt). Linear in the length of ``text``."""
    known = _known(frozenset(secrets))
    if known is not None:
        text = known.sub(MASK, text)
    # lower-cased only when ASCII: elsewhere a pattern ignoring case matches more than lower()
    # shows (the long s "ſ" matches "s"), so every pattern scans it
    folded = text.lower() if text.isascii() else None
    for shape, words in _SHAPES:
        haystack = folded if shape.flags & re.IGNORECASE else text
        if haystack is not None and not any(word in haystack for word in words):
            continue
        text = shape.sub(lambda m: m.group(1) + MASK + (m.group(2) if shape.groups > 1 else ""), text)
    return _EMAIL.sub(MASK, text) if emails else text


# Data from outside repeats its short strings (label names and values, annotations, a payload's
# common labels beside each alert's): each is masked once and looked up after.
_SHORT = 512


@lru_cache(maxsize=16_384)
def _redact_short(text: str, secrets: frozenset[str]) -> str:
    return redact(text, secrets)


def redact_data(value, secrets: Iterable[str] = ()):
    """``value`` with every string in it ``redact``-ed: a string, or JSON-like data (dicts and
    lists, tuples read as lists; dict keys too), copied; numbers, booleans, None and times as
    they are."""
    secrets = frozenset(secrets)
    if isinstance(value, str):
        return _redact_short(value, secrets) if len(value) <= _SHORT else redact(value, secrets)
    if isinstance(value, dict):
        return {redact_data(key, secrets): redact_data(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(item, secrets) for item in value]
    return value
