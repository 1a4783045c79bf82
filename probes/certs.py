"""Days until a server certificate expires, read from its DER bytes.

``getpeercert()`` only decodes a certificate that was verified; the DER form is there even
when it was not (``verify_tls: false``, a chain the tls probe reports as invalid), so the
expiry is read from it with a minimal DER walk rather than a third-party library.
"""

from __future__ import annotations

from datetime import UTC, datetime

_UTC_TIME, _VERSION = 0x17, 0xA0


def days_left(der: bytes | None, now: datetime) -> float | None:
    """Days from ``now`` to the certificate's notAfter (negative once expired); None when
    there is no certificate or it cannot be read."""
    if not der:
        return None
    try:
        return (not_after(der) - now).total_seconds() / 86400
    except (IndexError, ValueError):
        return None


def not_after(der: bytes) -> datetime:
    """Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
    signature, issuer, validity SEQUENCE { notBefore, notAfter }, ... }, ... } (RFC 5280)."""
    _, tbs, _ = _element(der, 0)
    _, field, _ = _element(der, tbs)
    tag, _, end = _element(der, field)
    position = end if tag == _VERSION else field
    for _ in range(3):  # serialNumber, signature, issuer
        position = _element(der, position)[2]
    _, validity, _ = _element(der, position)
    tag, start, end = _element(der, _element(der, validity)[2])
    text = der[start:end].decode("ascii")
    if tag == _UTC_TIME:  # two-digit years: 50-99 are 19xx, 00-49 are 20xx
        text = ("19" if text[:2] >= "50" else "20") + text
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)


def _element(der: bytes, position: int) -> tuple[int, int, int]:
    """(tag, start of the content, end of the content) of the DER element at ``position``."""
    tag, length = der[position], der[position + 1]
    start = position + 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(der[start:start + size], "big")
        start += size
    if start + length > len(der):
        raise ValueError("truncated DER")
    return tag, start, start + length
