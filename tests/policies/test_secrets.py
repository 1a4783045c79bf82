import pytest

from policies.secrets import MissingSecret, expand, redact


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
