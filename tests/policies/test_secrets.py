import base64
import json
import re
import subprocess
import sys
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.loader import load_policy
from policies.schema import SettingsFile
from policies.secrets import _SHAPES, MASK, MissingSecret, expand, policy_secrets, redact, redact_data
from tests.support import ROOT


def test_expand_fills_references_and_returns_what_it_used():
    value, used = expand("Bearer ${TOKEN}", {"TOKEN": "s3cr3t-value"})
    assert value == "Bearer s3cr3t-value" and used == ["s3cr3t-value"]


def test_missing_reference_is_a_clear_error():
    with pytest.raises(MissingSecret, match="environment variable TOKEN is not set"):
        expand("${TOKEN}", {})


@pytest.mark.parametrize("text,expected", [
    ("got s3cr3t-value back", "got *** back"),
    ("Authorization: Bearer abcdefgh12345", "Authorization: Bearer ***"),
    ("password=hunter22&x=1", "password=***&x=1"),
    ('{"api_key": "k-123456"}', '{"api_key": "***"}'),
    ("http://user:pa55word@db:5432/x", "http://user:***@db:5432/x"),
    ("nothing secret here", "nothing secret here"),
])
def test_redact(text, expected):
    assert redact(text, ["s3cr3t-value"]) == expected


@pytest.mark.parametrize("text,expected", [
    ("x-eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "x-***"),
    ("key ghp_abcdefghijkl0123 and AKIAABCDEFGHIJKLMNOP", "key *** and ***"),
    ("Basic dXNlcjpwYXNzd29yZA==", "Basic ***"),
])
def test_secret_shapes(text, expected):
    assert redact(text) == expected


def test_addresses_written_together_are_all_masked():
    assert re.fullmatch(r"to (\*\*\*)+, \*\*\*", redact("to a@b.com1x@y.org, c@d.io", emails=True))


# --- hostile text the size of the largest webhook body --------------------------------

WEBHOOK_LIMIT = SettingsFile.model_fields["ingest_max_bytes"].default
# A pattern that rescans from every position takes minutes on these (88 s for 263 KB of
# "eyJ-"); masking that is linear takes a fraction of a second. The limit only tells the two apart.
MINUTES_APART = 60
REDACT_STDIN = ("import json, sys; from policies.secrets import redact; case = json.load(sys.stdin); "
                "sys.stdout.write(redact(case['text'], case['secrets'], emails=case['emails']))")
SAME = "unchanged"
EACH_UNIT = "each repeated unit masked as it is alone"


@pytest.mark.parametrize("prefix,unit,suffix,expected,emails,secrets", [
    ("", "eyJ-", "", SAME, False, []),
    ("eyJ", "a-", "", SAME, False, []),
    ("eyJ", "a", ".bbbbbbbb.cccccccc", MASK, False, []),
    ("", "eyJaaaaaaaa." * 3, "", EACH_UNIT, False, []),
    ("token=", "a", "", "token=" + MASK, False, []),
    ("", "token=", "", "token=" + MASK, False, []),
    ("token", " ", "x", SAME, False, []),
    ("", "bearer ", "", SAME, False, []),
    ("Bearer", "\t", "!", SAME, False, []),
    ("Bearer ", "a", "", "Bearer " + MASK, False, []),
    ("", "basic ", "", SAME, False, []),
    ("", "://a:", "", SAME, False, []),
    ("://", "a:", "", SAME, False, []),
    ("://a:", "b", "@host", f"://a:{MASK}@host", False, []),
    ("", "a-", "", SAME, False, []),
    ("", "sk-", "", MASK, False, []),
    ("", "sk-aaaaaaaa ", "", SAME, False, []),
    ("", "a", "", SAME, True, []),
    ("", "a.", "", SAME, True, []),
    ("", "a@b.", "", SAME, True, []),
    ("", "x@y.org1", "", MASK + "1", True, []),
    ("", "a", "", SAME, False, ["a" * 31 + "b"]),
    ("", "eyJ-token= bearer ://a:sk-a@b. ", "", EACH_UNIT, True, ["eyJ-token"]),
])
def test_hostile_text_of_the_largest_webhook_body_is_masked_in_linear_time(prefix, unit, suffix, expected,
                                                                         emails, secrets):
    text = prefix + unit * ((WEBHOOK_LIMIT - len(prefix) - len(suffix)) // len(unit)) + suffix
    case = json.dumps({"text": text, "secrets": secrets, "emails": emails})
    done = subprocess.run([sys.executable, "-c", REDACT_STDIN], input=case, capture_output=True, text=True,
                          encoding="utf-8", cwd=ROOT, timeout=MINUTES_APART, check=True)
    if expected == SAME:
        expected = text
    elif expected == EACH_UNIT:
        expected = redact(unit, secrets, emails=emails) * (len(text) // len(unit))
    assert done.stdout == expected


# --- secret values, one pass for all, in the encodings they travel in ------------------

def every_shape(text: str) -> str:
    """Each secret shape applied to the whole text, none skipped."""
    for shape, _ in _SHAPES:
        text = shape.sub(lambda m: m.group(1) + MASK + (m.group(2) if shape.groups > 1 else ""), text)
    return text


# pieces of text that make or nearly make secret shapes, in any case, with ASCII and not
_PIECES = st.sampled_from(["Bearer ", "basic ", "PassWord", "passwd", "ſecret", "tOKen", "api_key", "Api-Key", ": ",
                           "=", '"', "'", " ", "://", "user", ":", "@", "host/", "eyJ", "hbGciOi", ".", "-", "_",
                           "sk", "ghp", "xoxb", "glpat", "AKIA", "ABCDEFGHIJKLMNOP", "abcdefgh12345", "é", "K", ","])


@settings(max_examples=1_000, deadline=None)
@given(st.lists(_PIECES, max_size=14).map("".join))
def test_skipping_shapes_by_their_key_words_masks_what_every_shape_would(text):
    assert redact(text) == every_shape(text)


def test_a_secret_containing_another_is_masked_whole():
    assert redact("x abc12345-longer y abc12345", ["abc12345", "abc12345-longer"]) == "x *** y ***"


def test_many_secrets_are_all_masked():
    values = [f"secret-{i:03}-{'x' * (i % 7)}" for i in range(300)]
    assert redact(" ".join(reversed(values)), values) == " ".join([MASK] * 300)


SECRET = 's3cr3t/välue+ "1">>>?'  # standard and urlsafe base64 differ for it, and pad it
ENCODERS = [base64.b64encode, base64.urlsafe_b64encode]


@pytest.mark.parametrize("encoded", [
    SECRET, quote(SECRET), quote(SECRET, safe=""), quote_plus(SECRET), json.dumps(SECRET)[1:-1],
    json.dumps(SECRET, ensure_ascii=False)[1:-1], *(encode(SECRET.encode()).decode() for encode in ENCODERS),
    base64.b64encode(SECRET.encode()).decode().rstrip("="),
])
def test_secret_is_masked_in_each_encoding(encoded):
    assert redact(f"seen {encoded} in the log", [SECRET]) == f"seen {MASK} in the log"


def test_secret_is_masked_in_a_json_document():
    document = json.dumps({"url": f"https://h/?t={quote_plus(SECRET)}", "raw": SECRET})
    assert json.loads(redact(document, [SECRET])) == {"url": f"https://h/?t={MASK}", "raw": MASK}


@pytest.mark.parametrize("name", ["u", "ab", "svc", "deploy-bot"])  # the three positions in base64
@pytest.mark.parametrize("encode", ENCODERS, ids=["standard", "urlsafe"])
def test_secret_is_masked_inside_base64_of_name_and_secret(name, encode):
    credentials = encode(f"{name}:{SECRET}".encode()).decode()
    head, mask, tail = redact(f"seen {credentials} in the log", [SECRET])[5:-11].partition(MASK)
    # what is left encodes the name and the colon, and the secret's last bits with the padding
    assert mask and credentials.startswith(head) and credentials.endswith(tail)
    assert len(head) <= 4 * (len(name) + 1) // 3 + 1 and len(tail) <= 3


def test_base64_forms_too_short_to_tell_from_words_are_not_masked():
    assert redact("x eA eA== x", ["x"]) == "*** eA eA== ***"


# --- every string of JSON-like data; the secrets a policy references --------------------

def test_redact_data_masks_every_string_keys_included_and_leaves_the_rest():
    data = {"labels": {"dsn": "postgres://admin:S3cretPw@db/x", "token=abcd1234efgh": "v"},
            "checks": [{"actual": f"got {SECRET}", "ok": False, "n": 3}, None], "pair": ("a", 1.5)}
    assert redact_data(data, [SECRET]) == {"labels": {"dsn": f"postgres://admin:{MASK}@db/x", f"token={MASK}": "v"},
                                           "checks": [{"actual": f"got {MASK}", "ok": False, "n": 3}, None],
                                           "pair": ["a", 1.5]}
    assert redact_data(f"x {SECRET}", [SECRET]) == f"x {MASK}" and redact_data(7) == 7


def test_policy_secrets_are_the_values_of_every_reference_and_of_the_named_tokens(tmp_path):
    (tmp_path / "targets.yaml").write_text("""
targets:
  - {name: web, kind: http, service: shop, url: "http://127.0.0.1:9/?k=${URL_KEY}",
     headers: {Authorization: "Bearer ${PROBE_TOKEN}"}, conditions: ["[STATUS] == 200"]}
""")
    (tmp_path / "actions.yaml").write_text("""
actions:
  - id: hook
    runner: {kind: webhook, url: "http://127.0.0.1:9/hook", headers: {X-Key: "${HOOK_TOKEN}"}}
    risk: containment
    postures: [demo]
""")
    (tmp_path / "settings.yaml").write_text("ingest_token_env: INGEST\n")
    env = {"URL_KEY": "k-1", "PROBE_TOKEN": "p-2", "HOOK_TOKEN": "h-3", "INGEST": "i-4",
           "WORKBENCH_APPROVAL_KEY": "a-5", "UNREFERENCED": "u-6", "HOME": "/root"}
    assert policy_secrets(load_policy(tmp_path), env) == ["h-3", "i-4", "p-2", "k-1", "a-5"]
    assert policy_secrets(load_policy(tmp_path), {"PROBE_TOKEN": ""}) == [], "unset or empty: nothing to mask"
    (tmp_path / "settings.yaml").write_text("""
access:
  totp_key_env: TOTP
  oidc: {server_metadata_url: "http://127.0.0.1:9/.well-known/openid-configuration", client_id: wb,
         client_secret_env: OIDC, redirect_uri: "http://127.0.0.1:8501/oauth2callback", allow_domains: [example.com]}
""")
    env = {"TOTP": "t-7", "OIDC": "o-8", "WORKBENCH_COOKIE_SECRET": "c-9"}
    assert sorted(policy_secrets(load_policy(tmp_path), env)) == ["c-9", "o-8", "t-7"], "with access: its keys too"
