"""Errors of refining hypotheses and routing LLM calls.

    WorkbenchError                  (policies.errors)
    └── HypothesisError             the draft stands; the message says why
        ├── ProviderError           one provider could not serve a call: down, timed out, an error answer
        │   └── InvalidAnswer       its answer did not validate (schema, bounds, unknown evidence ids)
        └── ImportFailed            a decisions file could not be read at all
"""

from __future__ import annotations

from policies.errors import WorkbenchError


class HypothesisError(WorkbenchError):
    pass


class ProviderError(HypothesisError):
    def __init__(self, outcome: str, message: str):
        self.outcome = outcome  # down | error | invalid
        super().__init__(message)


class InvalidAnswer(ProviderError):
    def __init__(self, message: str):
        super().__init__("invalid", message)


class ImportFailed(HypothesisError):
    pass
