"""SQLModel table classes. No behaviour here: writes live in the repository (repo/), reads in queries.py."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class Observation(SQLModel, table=True):
    """One probe run: did it pass, how long it took, and each check with its actual value."""

    __tablename__ = "observation"
    id: int | None = Field(default=None, primary_key=True)
    target: str = Field(index=True)
    kind: str
    service: str
    ok: bool
    started_at: datetime = Field(index=True)
    duration_ms: float
    status: int | None = None
    error: str | None = None
    checks: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    values: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    location: str | None = None  # the location of the worker that probed (several workers); None: the only one
    # which run this was, for runs the fleet schedules: "<slot start, epoch seconds>", and "@<location>" for a
    # target probed from several; a run taken up twice (a lease that ran out) is recorded once
    slot_key: str | None = None

    __table_args__ = (Index("uq_observation_slot", "target", "slot_key", unique=True),)


class LocationState(SQLModel, table=True):
    """Threshold state of a target probed from several locations, per location: the target's
    finding (in target_state) opens when a quorum of locations is failing."""

    __tablename__ = "location_state"
    target: str = Field(primary_key=True)
    location: str = Field(primary_key=True)
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    failing: bool = False
    last_ok: bool | None = None
    last_error: str | None = None
    last_observed_at: datetime | None = None


class FleetWorker(SQLModel, table=True):
    """A worker of a fleet sharing the ledger: where it runs, when it last said it was alive, and
    what it did over its last heartbeat; ``dead_finding_id`` is the open finding its silence raised."""

    __tablename__ = "fleet_worker"
    name: str = Field(primary_key=True)
    location: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime = Field(index=True)
    stopped_at: datetime | None = None
    house: bool = False  # holds the house duties (detectors, rollups, notifications, ...)
    buckets: int = 0  # buckets running at the last heartbeat
    targets: int = 0  # targets in them
    probes_per_second: float = 0.0
    lag_p99_seconds: float = 0.0  # schedule lag of its runs over the last heartbeat
    policy_digest: str = ""
    dead_finding_id: int | None = Field(default=None, foreign_key="finding.id")


class SampleBatch(SQLModel, table=True):
    """Samples a fleet worker flushed, as one Parquet file, waiting for the worker that holds
    the samples store to take them in."""

    __tablename__ = "sample_batch"
    id: int | None = Field(default=None, primary_key=True)
    worker: str
    created_at: datetime
    rows: int
    data: bytes


class TargetState(SQLModel, table=True):
    """Threshold state of one target, kept in the ledger so a restart does not reset it."""

    __tablename__ = "target_state"
    target: str = Field(primary_key=True)
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    last_ok: bool | None = None
    last_observed_at: datetime | None = None
    active_finding_id: int | None = Field(default=None, foreign_key="finding.id")


class LogCursor(SQLModel, table=True):
    """Where a logs target stopped reading, so a restart resumes there: for a file its identity
    (``device:inode``) and the byte offset after the last complete line read; for Loki the end
    of the last query, in nanoseconds since the epoch."""

    __tablename__ = "log_cursor"
    target: str = Field(primary_key=True)
    path: str  # the file, or the Loki URL
    inode: str | None = None
    offset: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime


class Finding(SQLModel, table=True):
    """One firing episode of a rule; folded into the incident with its correlation key."""

    __tablename__ = "finding"
    id: int | None = Field(default=None, primary_key=True)
    rule: str
    target: str = Field(index=True)
    service: str
    severity: str
    summary: str
    correlation_key: str = Field(index=True)
    first_seen: datetime
    last_seen: datetime
    occurrences: int = 1
    recovered_at: datetime | None = None
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    labels: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))
    # Why it opened no incident of its own: "silence #3", "maintenance #4", "parent incident #12".
    # A finding suppressed by a parent's incident is linked to it (incident_id) without counting there.
    suppressed_by: str | None = None


class Incident(SQLModel, table=True):
    __tablename__ = "incident"
    __table_args__ = (
        # At most one open incident per correlation key: repeats can never duplicate it.
        Index(
            "uq_incident_open_key",
            "correlation_key",
            unique=True,
            sqlite_where=text("resolved_at IS NULL"),
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    title: str
    state: str = Field(index=True)
    severity: str
    service: str = Field(index=True)
    correlation_key: str
    opened_at: datetime
    updated_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None = None
    finding_count: int = 0
    acknowledged_at: datetime | None = None  # someone on call has taken it: escalation stops
    acknowledged_by: str | None = None


class TimelineEntry(SQLModel, table=True):
    """Everything that happened to an incident: findings, state changes, notes."""

    __tablename__ = "timeline_entry"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    at: datetime
    actor: str
    kind: str  # finding | transition | note | recovery
    from_state: str | None = None
    to_state: str | None = None
    message: str


class Evidence(SQLModel, table=True):
    """What made a finding fire or recover: a probe's checks with actual values, redacted."""

    __tablename__ = "evidence"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    finding_id: int | None = Field(default=None, foreign_key="finding.id")
    observation_id: int | None = Field(default=None, foreign_key="observation.id")
    at: datetime
    kind: str  # probe
    summary: str
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Alert(SQLModel, table=True):
    """One alert episode from Alertmanager, pulled or pushed: deduplicated on
    (fingerprint, starts_at), whatever the order or number of deliveries."""

    __tablename__ = "alert"
    __table_args__ = (UniqueConstraint("fingerprint", "starts_at", name="uq_alert_episode"),)
    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(index=True)
    starts_at: datetime
    status: str  # firing | resolved
    ends_at: datetime | None = None
    alertname: str
    labels: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    annotations: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    generator_url: str | None = None
    source: str
    origin: str = Field(index=True)  # "webhook", or the name of the alertmanager target that pulled it
    first_received: datetime
    last_received: datetime
    deliveries: int = 1
    finding_id: int | None = Field(default=None, foreign_key="finding.id")
    raw: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class IngestPayload(SQLModel, table=True):
    """Every payload pushed to the worker, kept as received (secrets masked), accepted or not."""

    __tablename__ = "ingest_payload"
    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(index=True)
    source: str
    accepted: bool
    reason: str | None = None
    alerts: int = 0
    body: str


class RuleState(SQLModel, table=True):
    """Where one detector rule stands for one group of series (its ``by`` labels): inactive,
    pending since, firing since; when its condition last held and when it last flipped, for
    ``keep_firing_for`` and flap protection. Kept in the ledger so a restart changes nothing."""

    __tablename__ = "rule_state"
    rule: str = Field(primary_key=True)
    group: str = Field(primary_key=True)  # canonical JSON of the group's labels
    labels: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = "inactive"  # ledger.lifecycle.RulePhase
    active: bool = False  # the condition held at the last evaluation
    pending_since: datetime | None = None
    firing_since: datetime | None = None
    last_active_at: datetime | None = None
    flips: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # ISO times
    flapping: bool = False
    value: float | None = None
    evaluated_at: datetime | None = None
    finding_id: int | None = Field(default=None, foreign_key="finding.id")


class Silence(SQLModel, table=True):
    """Matchers on finding labels and a time span in which matching findings are kept but
    suppressed. A maintenance window is a silence of kind "maintenance"; a recurring one
    (``recurrence``: every day or week at a local time, for a duration) is in force only
    inside its occurrences, between ``starts_at`` and ``ends_at``."""

    __tablename__ = "silence"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = "silence"  # silence | maintenance
    matchers: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    starts_at: datetime
    ends_at: datetime | None = None  # None: a recurring window with no end
    recurrence: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    author: str
    comment: str
    created_at: datetime
    expired_at: datetime | None = None  # expired early by an operator
    expired_by: str | None = None


class RoutingDecision(SQLModel, table=True):
    """One LLM call as routed: the route the policy resolved, the provider that served it (or
    none), and why they differ. Decisions imported from another system's log carry its
    ``declared`` provider and an ``external_key``, so importing a file twice adds nothing."""

    __tablename__ = "routing_decision"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    source: str = "workbench"  # workbench | import
    origin: str | None = None  # the imported file's name
    external_key: str | None = Field(default=None, unique=True)
    request_id: str | None = None
    task: str = Field(index=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    category: str | None = None
    route: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # as the policy resolved it
    expected: str | None = None  # the route's first provider
    declared: str | None = None  # what the deciding system meant to use
    actual: str | None = None  # the provider that served; None: none did
    reason: str = "none"  # none | failover | gate | budget | error | undeclared; imported: off-policy | privacy
    detail: str = ""
    attempts: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    privacy_refusals: int = 0
    latency_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens: int = 0
    cost: float = 0.0


class HypothesisRun(SQLModel, table=True):
    """One refinement of an incident's drafted hypotheses by a model: requested, running, done
    or failed (the draft stands, with the reason). ``evidence_key`` names the evidence it saw."""

    __tablename__ = "hypothesis_run"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    status: str = "pending"  # ledger.lifecycle.RunStatus
    requested_by: str
    requested_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    evidence_key: str | None = None
    draft: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    refinement: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    reason: str | None = None
    decision_id: int | None = Field(default=None, foreign_key="routing_decision.id")


class ActionRequest(SQLModel, table=True):
    """One proposed remediation action on an incident, through the policy gate, the operator's
    decision, its run and its verification. ``parameters`` hold secrets only as ``${NAME}``
    references; ``plan`` (what runs) and ``output`` are redacted."""

    __tablename__ = "action_request"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    action: str = Field(index=True)
    parameters: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    risk: str  # read_only | containment | disruptive
    runner: str  # webhook | command | notify
    plan: str
    needs_approval: bool
    # ledger.lifecycle.RequestStatus
    status: str = Field(index=True)
    reason: str  # why it was proposed
    proposed_by: str
    proposed_at: datetime
    expires_at: datetime  # no decision by then: expired
    gate: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # checks, each with ok
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    approval_id: str | None = None
    approval_token: str | None = None
    approval_expires_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    output: str | None = None
    verification: str | None = None  # ledger.lifecycle.Verification


class ApprovalUse(SQLModel, table=True):
    """An approval token that has been spent: a token is good for one run only."""

    __tablename__ = "approval_use"
    approval_id: str = Field(primary_key=True)
    request_id: int = Field(foreign_key="action_request.id")
    used_at: datetime


class RuleSuggestion(SQLModel, table=True):
    """A detector rule the workbench learned from history: a new rule for a service whose
    incidents no rule caught, or a tuned successor of a noisy or late rule; with where it came
    from (``provenance``: incidents and series), its backtest beside the current rule's, and the
    operator's decision."""

    __tablename__ = "rule_suggestion"
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime
    kind: str  # new | tune
    name: str = Field(index=True)  # of the rule it would be
    replaces: str | None = None  # the rule it tunes
    service: str | None = None
    rule: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # as rules.yaml holds it
    why: str = ""
    provenance: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    backtest: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # suggested, current
    status: str = Field(default="pending", index=True)  # ledger.lifecycle.SuggestionStatus
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None


class RuleRevision(SQLModel, table=True):
    """Each version of a learned rule as written to the policy's learned-rules file: who, when,
    why, from which suggestion; ``rule`` None when a rollback removed it."""

    __tablename__ = "rule_revision"
    __table_args__ = (UniqueConstraint("name", "revision"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    revision: int
    rule: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    suggestion_id: int | None = Field(default=None, foreign_key="rule_suggestion.id")
    actor: str
    at: datetime
    reason: str
    backtest: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class FindingFeedback(SQLModel, table=True):
    """The operator's word on a finding (one firing episode of a rule): useful, noise or expected
    (ledger.lifecycle.Verdict). The latest counts; backtests and rule suggestions read it."""

    __tablename__ = "finding_feedback"
    id: int | None = Field(default=None, primary_key=True)
    finding_id: int = Field(foreign_key="finding.id", index=True)
    verdict: str
    actor: str
    at: datetime
    reason: str | None = None


class Notification(SQLModel, table=True):
    """One notification in the outbox, to one channel: about a group of incidents (firing or
    resolved), an unacknowledged incident (escalation), a pending action request (approval), the
    workbench's own trouble (meta) or a test. ``key`` names what it is, so planning it twice adds
    nothing. Delivered at least once: each attempt is a DeliveryAttempt. A notification that fails
    for good is ``failed``, or ``fallback`` when the next channel of its route took it over (the
    successor's ``fallback_of``); the in-app inbox shows every one until it is read."""

    __tablename__ = "notification"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    channel: str = Field(index=True)
    category: str  # firing | resolved | escalation | approval | meta | test
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    request_id: int | None = Field(default=None, foreign_key="action_request.id")
    route: str | None = None  # routes[i] or escalations[i].steps[j] of channels.yaml
    fallbacks: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # channels after this one
    status: str = Field(default="pending", index=True)  # ledger.lifecycle.DeliveryStatus
    attempts: int = 0
    error: str | None = None
    at: datetime = Field(index=True)  # when it was planned
    next_attempt_at: datetime
    sent_at: datetime | None = None
    digest: str  # sha256 of the payload
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    fallback_of: int | None = Field(default=None, foreign_key="notification.id")
    read_at: datetime | None = None  # seen in the inbox


class DeliveryAttempt(SQLModel, table=True):
    """One try at delivering a notification, recorded before it starts: one left without an end
    was cut short (the worker stopped), and the notification may have reached its channel twice."""

    __tablename__ = "delivery_attempt"
    id: int | None = Field(default=None, primary_key=True)
    notification_id: int = Field(foreign_key="notification.id", index=True)
    started_at: datetime
    finished_at: datetime | None = None
    ok: bool | None = None
    error: str | None = None
    latency_ms: float | None = None


class NotificationGroup(SQLModel, table=True):
    """What was last notified of one group of one route (Alertmanager's notification log): a restart
    neither repeats nor forgets it."""

    __tablename__ = "notification_group"
    route: str = Field(primary_key=True)
    group_key: str = Field(primary_key=True)  # canonical JSON of the group's labels
    first_at: datetime  # a firing incident joined the group
    notified_at: datetime | None = None
    firing: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # incident ids notified
    sequence: int = 0


class ChannelPrompt(SQLModel, table=True):
    """Buttons sent to a channel (Approve / Reject an action request, Acknowledge an incident): the
    short nonce in each button's answer, good once, until it expires."""

    __tablename__ = "channel_prompt"
    nonce: str = Field(primary_key=True)
    channel: str
    purpose: str  # approval | acknowledge
    request_id: int | None = Field(default=None, foreign_key="action_request.id")
    incident_id: int | None = Field(default=None, foreign_key="incident.id")
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None = None
    answered_by: str | None = None  # the operator the identity maps to
    answer: str | None = None


class ChannelCursor(SQLModel, table=True):
    """Where reading a channel's answers stopped (Telegram: the next update id), so a restart
    neither reads an answer twice nor misses one."""

    __tablename__ = "channel_cursor"
    channel: str = Field(primary_key=True)
    offset: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime


class ChannelAnswer(SQLModel, table=True):
    """Every button answer a channel brought back, taken or refused and why: the audit of decisions
    made outside the app, forged and replayed ones included."""

    __tablename__ = "channel_answer"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    channel: str
    identity: str  # the user id the channel vouches for
    operator: str | None = None  # whom the approvers list maps it to
    answer: str  # approve | reject | acknowledge, or what came
    nonce: str | None = None
    outcome: str  # taken | refused
    detail: str


class AssistantCall(SQLModel, table=True):
    """Every call an assistant made to the read-only MCP tools (``workbench mcp``): which tool,
    with what arguments (masked), who called, how many bytes the answer had, and whether it was
    answered or refused."""

    __tablename__ = "assistant_call"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    tool: str
    arguments: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    caller: str  # the client's name as it introduced itself, and the OS user running the server
    outcome: str  # answered | refused | failed
    bytes: int  # of the answer sent (after cutting)
    detail: str = ""  # why refused or failed; what was cut


class Account(SQLModel, table=True):
    """A local operator account (``workbench users add``): the password's hash (argon2), never the
    password; the TOTP secret encrypted with the access key; failed logins in a row and the lock."""

    __tablename__ = "account"
    name: str = Field(primary_key=True)
    role: str  # viewer | operator | approver
    password_hash: str
    totp_secret: str | None = None  # Fernet token of the base32 secret, or none enrolled
    failed_logins: int = 0
    locked_until: datetime | None = None
    created_at: datetime
    created_by: str
    last_login_at: datetime | None = None


class LoginEvent(SQLModel, table=True):
    """Every login to the web app, let in or refused, and every logout: who, how, and why not."""

    __tablename__ = "login_event"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    name: str
    method: str  # password | totp | single sign-on; a logout: how they had logged in (web app | single sign-on)
    outcome: str  # in | refused | locked | out
    detail: str = ""


class LoginSession(SQLModel, table=True):
    """A login to the web app that lasts beyond one browser tab: the SHA-256 of the token its
    cookie holds, whose login, since when (a step-up renews it), until when, and whether it ended."""

    __tablename__ = "login_session"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True)
    name: str
    authenticated_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None


class ApiToken(SQLModel, table=True):
    """A token for the webhook and for scripts: its SHA-256 only, its scopes (ingest, read, act),
    who made it, when it was last used and whether it is revoked."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    token_hash: str = Field(unique=True)
    scopes: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime
    created_by: str
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
