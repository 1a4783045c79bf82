"""Writes of the assistants' audit: each call to the read-only MCP tools, answered or refused."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from ledger.repo.rows import masked
from ledger.tables import AssistantCall


def record_call(session: Session, *, at: datetime, tool: str, arguments: dict, caller: str, outcome: str,
                size: int, detail: str = "") -> AssistantCall:
    call = AssistantCall(at=at, tool=tool, arguments=masked(session, arguments), caller=masked(session, caller),
                         outcome=outcome, bytes=size, detail=masked(session, detail))
    session.add(call)
    return call
