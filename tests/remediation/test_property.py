"""Property: over random catalogs, postures and orders of events (proposals, approvals,
rejections, time passing, worker passes and restarts, and a hostile hand editing the ledger:
altered parameters, requests queued again, tokens copied or forged), no action runs unless it is
enabled and allowed in the posture, and none that needs approval runs without a matching,
unexpired, unused approval issued by the operator for exactly that request and parameters."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import queries
from ledger.db import open_ledger, read_session, sqlite_url, write_session
from ledger.tables import ActionRequest, ApprovalUse
from policies.actions import ActionsFile
from policies.loader import Policy
from policies.schema import SettingsFile
from remediation import flow, tokens
from remediation.errors import RemediationError
from tests.remediation.support import KEY, NOW, open_incident, run_pass

POSTURES = ("demo", "staging", "production")
RUNNING = re.compile(r"^action request #(\d+) (\S+): running: note: level=(\d)$")

actions = st.lists(st.fixed_dictionaries({
    "risk": st.sampled_from(["read_only", "containment", "disruptive"]),
    "requires_approval": st.booleans(),
    "enabled": st.sampled_from([True, True, True, False]),
    "postures": st.sampled_from([list(POSTURES), list(POSTURES), ["demo", "staging"], ["production"]]),
    "cooldown": st.sampled_from(["0s", "5m"]),
    "max_attempts": st.integers(1, 3),
}), min_size=1, max_size=4)

pick = st.integers(0, 50)
LATEST = -1  # picks the newest request
hostile = st.one_of(
    st.tuples(st.just("alter"), pick),
    st.tuples(st.just("requeue"), pick),
    st.tuples(st.just("copy"), pick, pick),
    st.tuples(st.just("forge"), pick),
)
# An episode: a proposal, most often decided, maybe a hostile edit, time passing, the worker.
episode = st.tuples(
    st.tuples(st.just("propose"), pick, st.integers(0, 1), st.sampled_from([1, 2])),
    st.sampled_from([("approve", LATEST), ("approve", LATEST), ("reject", LATEST), None]),
    st.one_of(st.none(), hostile),
    st.sampled_from([None, ("advance", 1), ("advance", 6), ("advance", 20)]),
    st.sampled_from([("pass",), ("pass",), ("restart",), None]),
)
events = st.lists(episode, min_size=1, max_size=8).map(
    lambda episodes: [step for steps in episodes for step in steps if step is not None])


@dataclass(frozen=True)
class Issued:
    """An approval the operator gave: for which request and parameters, until when."""

    request: int
    parameters: dict
    expires_at: datetime


def catalog(specs: list[dict], posture: str) -> Policy:
    entries = [{"id": f"act-{i}", "runner": {"kind": "notify", "message": "level={{level}}"},
                "parameters": {"level": {"type": "integer", "choices": [1, 2], "default": 1}}, **spec}
               for i, spec in enumerate(specs)]
    return Policy(actions=ActionsFile.model_validate({"actions": entries}), settings=SettingsFile(posture=posture))


class World:
    """The ledger, the clock, the worker's passes and the approvals the operator issued."""

    def __init__(self, directory: Path, policy: Policy):
        self.directory, self.policy, self.url = directory, policy, sqlite_url(directory)
        self.engine = open_ledger(self.url)
        self.now = NOW
        self.incidents = [open_incident(self.engine, target=f"web-{i}") for i in range(2)]
        self.issued: dict[str, Issued] = {}

    def chosen(self, index: int, *statuses: str) -> int | None:
        """A request, picked by ``index`` among those in ``statuses`` (any status when none given)."""
        ids = [r.id for r in reversed(queries.list_action_requests(self.engine, statuses=list(statuses) or None))]
        return ids[index % len(ids)] if ids else None

    def edit(self, request_id: int | None, **changes) -> None:
        if request_id is None:
            return
        with write_session(self.engine) as session:
            row = session.get(ActionRequest, request_id)
            for name, value in changes.items():
                setattr(row, name, value)

    def apply(self, event: tuple) -> None:
        kind, *args = event
        try:
            getattr(self, f"do_{kind}")(*args)
        except RemediationError:
            pass  # refused as it should be; the property is checked on what ran

    def do_propose(self, action: int, incident: int, level: int) -> None:
        action_id = f"act-{action % len(self.policy.actions.actions)}"
        flow.propose(self.engine, self.policy, self.incidents[incident], action_id, {"level": level},
                     proposer="bob", reason="property", now=self.now)

    def do_approve(self, index: int) -> None:
        if (request_id := self.chosen(index, "pending")) is not None:
            done = flow.approve(self.engine, self.policy, KEY.encode(), request_id, actor="alice", reason="ok",
                                now=self.now)
            self.issued[done.approval_id] = Issued(done.id, dict(done.parameters), done.approval_expires_at)

    def do_reject(self, index: int) -> None:
        if (request_id := self.chosen(index, "pending")) is not None:
            flow.reject(self.engine, request_id, actor="alice", reason="no", now=self.now)

    def do_advance(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    def do_pass(self) -> None:
        run_pass(self.engine, self.policy, self.directory, self.now)

    def do_restart(self) -> None:
        self.engine.dispose()
        self.engine = open_ledger(self.url)

    def do_alter(self, index: int) -> None:
        request_id = self.chosen(index)
        if request_id is not None:
            level = queries.action_request(self.engine, request_id).parameters.get("level", 1)
            self.edit(request_id, parameters={"level": 3 - level})

    def do_requeue(self, index: int) -> None:
        self.edit(self.chosen(index), status="approved")

    def do_copy(self, source: int, target: int) -> None:
        if (source_id := self.chosen(source, "approved", "succeeded", "refused")) is not None:
            row = queries.action_request(self.engine, source_id)
            self.edit(self.chosen(target), status="approved", approval_id=row.approval_id,
                      approval_token=row.approval_token)

    def do_forge(self, index: int) -> None:
        if (request_id := self.chosen(index)) is not None:
            row = queries.action_request(self.engine, request_id)
            claims = tokens.Claims(id=tokens.new_approval_id(), request=row.id, incident=row.incident_id,
                                   action=row.action, parameters=row.parameters, approved_by="mallory",
                                   expires_at=(self.now + timedelta(hours=1)).isoformat())
            self.edit(request_id, status="approved", approval_id=claims.id,
                      approval_token=tokens.sign(b"not the workbench's key " * 2, claims))

    def runs(self) -> list[tuple[int, str, int, datetime]]:
        """Every run the ledger records: request, action, the parameter it ran with, when."""
        found = []
        for incident in self.incidents:
            for entry in queries.incident_detail(self.engine, incident).timeline:
                if match := RUNNING.match(entry.message):
                    found.append((int(match[1]), match[2], int(match[3]), entry.at))
        return found

    def spent(self) -> dict[int, list[str]]:
        with read_session(self.engine) as session:
            rows = session.exec(ApprovalUse.__table__.select()).all()
        spent: dict[int, list[str]] = {}
        for row in rows:
            spent.setdefault(row.request_id, []).append(row.approval_id)
        return spent


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=actions, posture=st.sampled_from(["demo", "demo", "staging", "production"]), script=events)
def test_nothing_runs_without_the_gate_and_a_matching_unexpired_unused_approval(specs, posture, script):
    policy = catalog(specs, posture)
    with tempfile.TemporaryDirectory() as directory:
        world = World(Path(directory), policy)
        try:
            for event in [*script, ("pass",)]:
                world.apply(event)
            runs, spent = world.runs(), world.spent()
        finally:
            world.engine.dispose()
    used: set[str] = set()
    for request_id, action_id, level, at in runs:
        action = policy.actions.action(action_id)
        assert action.enabled and posture in action.postures, (action_id, posture)
        if not action.needs_approval:
            continue
        [approval_id] = spent[request_id]
        issued = world.issued[approval_id]
        assert issued.request == request_id, "an approval runs only the request it was given for"
        assert issued.parameters == {"level": level}, "it runs only with the parameters approved"
        assert at < issued.expires_at, "an expired approval runs nothing"
        assert approval_id not in used, "an approval runs once"
        used.add(approval_id)
