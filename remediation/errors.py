"""Errors of guarded remediation.

    WorkbenchError                 (policies.errors)
    └── RemediationError           an action request cannot be proposed, decided or run as asked
        ├── GateRefused            the policy gate said no (the request is kept, refused, with why)
        ├── TokenRefused           an approval token is altered, expired, replayed or missing
        └── SigningKeyError        the approval signing key is too short or readable by others
"""

from __future__ import annotations

from policies.errors import WorkbenchError


class RemediationError(WorkbenchError):
    pass


class GateRefused(RemediationError):
    pass


class TokenRefused(RemediationError):
    pass


class SigningKeyError(RemediationError):
    pass
