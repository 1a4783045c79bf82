"""JSON from outside (a probed body, an API's answer, a webhook payload) decoded with one
readable reason for whatever makes it unusable, never an exception of another kind."""

from __future__ import annotations

import json


def parse_json(data: bytes | str) -> object:
    """The decoded document, or ValueError saying why there is none: not UTF-8, not JSON, nested
    deeper than the parser goes, an integer longer than Python converts (4,300 digits), or a
    lone UTF-16 surrogate escaped as ``\\ud800``, which is no text and no database can store."""
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except RecursionError:
        raise ValueError("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # an integer over sys.get_int_max_str_digits()
        raise ValueError(f"invalid JSON: {str(exc).split(';')[0]}") from None  # without Python's advice
    escaped = b"\\ud" if isinstance(data, bytes) else "\\ud"
    if escaped in data.lower():
        try:
            json.dumps(doc, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise ValueError("invalid JSON: a lone UTF-16 surrogate (\\ud800-\\udfff) is not text") from None
    return doc


def parse_json_line(line: str) -> object:
    """One line of JSON Lines, as ``parse_json`` decodes it; the reason it is not JSON names the
    column only (the line is the file's)."""
    try:
        return parse_json(line)
    except ValueError as exc:
        raise ValueError(f"not JSON: {str(exc).removeprefix('invalid JSON: ').replace(' at line 1 column', ' at column')}") from None


def holds_nul(doc: object) -> bool:
    """Whether a decoded document holds a NUL character (``\\u0000``) in a key or a string, which
    PostgreSQL text and JSON cannot store. Walked without recursion, at any depth."""
    pending = [doc]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            pending.extend(value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False
