"""Days until a server certificate expires, read from its DER bytes.

``getpeercert()`` only decodes a certificate that was verified; the DER form is there even
when it was not (``verify_tls: false``, a chain the tls probe reports as invalid), so the
expiry is read from it with ``cryptography``.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509


def days_left(der: bytes | None, now: datetime) -> float | None:
    """Days from ``now`` to the certificate's notAfter (negative once expired); None when
    there is no certificate or it cannot be read."""
    if not der:
        return None
    try:
        not_after = x509.load_der_x509_certificate(der).not_valid_after_utc
    except ValueError:
        return None
    return (not_after - now).total_seconds() / 86400
