"""Errors the ledger raises.

    WorkbenchError                 (policies.errors)
    └── LedgerError                the ledger cannot do what was asked
        ├── NotFound               no incident (or other row) with that id
        ├── TransitionRefused      the lifecycle table does not allow that change
        └── WorkerNameTaken        a live worker of the fleet already has that name
"""

from __future__ import annotations

from policies.errors import WorkbenchError


class LedgerError(WorkbenchError):
    pass


class NotFound(LedgerError):
    pass


class TransitionRefused(LedgerError):
    pass


class WorkerNameTaken(LedgerError):
    pass
