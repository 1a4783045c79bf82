"""Pydantic models of the policy files. Every model forbids unknown keys."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from functools import cached_property
from typing import Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from policies.conditions import Condition

Severity = Literal["info", "warning", "critical"]
SEVERITIES = ("info", "warning", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}  # how bad, for "the highest of"
Posture = Literal["demo", "staging", "production"]  # where the workbench runs (settings: posture)
Role = Literal["viewer", "operator", "approver"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "approver")  # each may do what the ones before it may
Scope = Literal["ingest", "read", "act"]
SCOPES: tuple[Scope, ...] = ("ingest", "read", "act")  # of an API token
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME = r"^[a-z0-9][a-z0-9_.-]*$"
_HOST_PORT = r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$"  # example.com, 10.0.0.1:8443, [::1]:80


LEAST_DURATION = timedelta(milliseconds=1)
MOST_DURATION = timedelta(days=365)  # any duration but those below
MOST_PROBE_TIMEOUT = timedelta(minutes=5)  # a target's timeout (rollups wait that long for late samples)
MOST_RETENTION = timedelta(days=3650)  # how long samples and rollups are kept


def parse_duration(value: object, most: timedelta = MOST_DURATION) -> timedelta:
    """'30s', '5m', '1.5h', '250ms' or a number of seconds; at least 1ms, at most ``most``."""
    seconds = _seconds(value)
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    if seconds > most.total_seconds():
        raise ValueError(f"duration {value!r} is longer than {format_duration(most)}, the most this key allows")
    if seconds < LEAST_DURATION.total_seconds():
        raise ValueError(f"duration {value!r} is shorter than 1ms, the least allowed")
    return timedelta(seconds=seconds)


def _seconds(value: object) -> float:
    """The seconds ``value`` spells (inf when too large for a float); ValueError when it is no duration."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float
            seconds = math.inf if value > 0 else -math.inf
    else:
        match = _DURATION.match(str(value).strip())
        if not match:
            raise ValueError(f"not a duration: {value!r} (use e.g. 250ms, 30s, 5m, 1h, 1d)")
        seconds = float(match["n"]) * _UNITS[match["unit"]]
    if math.isnan(seconds):
        raise ValueError(f"not a duration: {value!r} (use e.g. 250ms, 30s, 5m, 1h, 1d)")
    return seconds


def format_duration(delta: timedelta) -> str:
    """The shortest policy spelling of a duration: 5m, 1h, 1.5s, 2d."""
    seconds = delta.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def require_unique(names, what: str) -> set[str]:
    """The names as a set; ValueError on the first one used twice ("rule name 'x' is used twice")."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} {name!r} is used twice")
        seen.add(name)
    return seen


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _TargetBase(Strict):
    name: str = Field(pattern=_NAME, description="unique name of the target")
    service: str = Field(pattern=_NAME, description="service the target belongs to")
    interval: timedelta = Field(default=timedelta(seconds=30), description="time between probes")
    timeout: timedelta | None = Field(default=None, description="limit for one probe (default: 10s or the interval if shorter)")
    severity: Severity = Field(default="warning", description="severity of the incident it opens")
    failure_threshold: int = Field(default=3, ge=1, le=100, description="failures in a row that open a finding")
    success_threshold: int = Field(default=2, ge=1, le=100, description="successes in a row that recover it")
    conditions: list[str] = Field(default_factory=list, description="Gatus-style conditions, all must hold; "
                                  "with none, the probe passes when it runs without error")
    enabled: bool = Field(default=True, description="false keeps the target in the file but never probes it")
    parent: str | None = Field(default=None, pattern=_NAME, description="a target this one depends on: while "
                               "the parent has an open incident, this target's findings are suppressed")
    locations: list[Annotated[str, Field(pattern=_NAME)]] = Field(
        default_factory=list, description="worker locations that each probe it every interval (several workers, "
        "docs/fleet.md); empty: once per interval, from any one")
    quorum: int | None = Field(default=None, ge=1, description="locations that must fail for the incident (default: "
                               "a majority of locations)")
    partial_severity: Severity | None = Field(default=None, description="severity of the finding while fewer than "
                                              "quorum locations fail (default: one step below severity)")

    @field_validator("interval", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: object) -> timedelta | None:
        return None if value is None else parse_duration(value, MOST_PROBE_TIMEOUT)

    @property
    def probe_timeout(self) -> timedelta:
        return self.timeout or min(timedelta(seconds=10), self.interval)

    @field_validator("conditions")
    @classmethod
    def _parse_conditions(cls, conditions: list[str]) -> list[str]:
        problems = []
        for i, source in enumerate(conditions):
            try:
                Condition.parse(source, cls.KIND)
            except ValueError as exc:
                problems.append(f"[{i}] {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return conditions

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> "_TargetBase":
        if self.timeout is not None and self.timeout > self.interval:
            raise ValueError(f"timeout ({self.timeout}) must not exceed interval ({self.interval})")
        return self

    @model_validator(mode="after")
    def _quorum_of_locations(self) -> "_TargetBase":
        require_unique(self.locations, "location")
        if self.quorum is not None and self.quorum > max(1, len(self.locations)):
            raise ValueError(f"quorum {self.quorum} is more than the {len(self.locations)} locations listed")
        return self

    @property
    def location_quorum(self) -> int:
        """Locations that must fail for the incident: ``quorum``, or a majority of ``locations``."""
        return self.quorum or len(self.locations) // 2 + 1

    @property
    def lower_severity(self) -> str:
        """The severity of a finding from fewer than quorum locations."""
        if self.partial_severity is not None:
            return self.partial_severity
        return SEVERITIES[max(0, SEVERITY_RANK[self.severity] - 1)]

    @cached_property
    def parsed_conditions(self) -> tuple[Condition, ...]:
        """The conditions parsed, once per target (every probe run evaluates them)."""
        return tuple(Condition.parse(source, self.KIND) for source in self.conditions)


class HttpTarget(_TargetBase):
    KIND: ClassVar[str] = "http"
    kind: Literal["http"]
    url: str = Field(pattern=r"^https?://", description="URL to request")
    method: Literal["GET", "HEAD", "POST", "PUT", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(
        default_factory=dict, description="request headers; reference secrets as ${ENV_VAR}"
    )
    body: str | None = Field(default=None, description="request body to send")
    follow_redirects: bool = Field(default=False, description="follow redirects")
    max_redirects: int = Field(default=5, ge=0, le=30, description="most redirects followed")
    redirect_credentials_to: list[Annotated[str, Field(pattern=_HOST_PORT)]] = Field(
        default_factory=list, description="hosts (host, any port, or host:port) a redirect to another origin may "
        "take the credential headers to: Authorization, Proxy-Authorization, Cookie and those with ${ENV_VAR} "
        "secrets; other origins never get them, nor does plain http after https")
    verify_tls: bool = Field(default=True, description="verify the server certificate")
    max_body_bytes: int | None = Field(default=None, ge=1, description="most bytes of the body read "
                                       "(default: the max_body_bytes setting)")


class TcpTarget(_TargetBase):
    KIND: ClassVar[str] = "tcp"
    kind: Literal["tcp"]
    host: str = Field(description="host name or address")
    port: int = Field(ge=1, le=65535)
    send: str | None = Field(default=None, description="text to send after connecting (\\r\\n escapes allowed)")
    expect: str | None = Field(default=None, description="text the answer must contain")


class DnsTarget(_TargetBase):
    KIND: ClassVar[str] = "dns"
    kind: Literal["dns"]
    query_name: str = Field(description="name to resolve")
    record_type: Literal["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SRV", "PTR", "SOA"] = "A"
    resolver: str | None = Field(default=None, description="resolver address[:port]; default: the system's")


class TlsTarget(_TargetBase):
    KIND: ClassVar[str] = "tls"
    kind: Literal["tls"]
    host: str = Field(description="host name or address")
    port: int = Field(default=443, ge=1, le=65535)
    server_name: str | None = Field(default=None, description="SNI and name to verify (default: host)")


class HostTarget(_TargetBase):
    KIND: ClassVar[str] = "host"
    kind: Literal["host"]
    path: str = Field(default="/", description="filesystem whose space [DISK] measures")
    interface: str | None = Field(default=None, description="network interface for [NET_*] (default: every interface but the loopback)")


class PrometheusTarget(_TargetBase):
    KIND: ClassVar[str] = "prometheus"
    kind: Literal["prometheus"]
    url: str = Field(pattern=r"^https?://", description="base URL of the Prometheus HTTP API")
    query: str = Field(min_length=1, description="PromQL expression")
    mode: Literal["instant", "range"] = Field(default="instant", description="instant or range query")
    range: timedelta = Field(default=timedelta(minutes=5), description="how far back a range query reaches")
    step: timedelta = Field(default=timedelta(seconds=15), description="resolution of a range query")
    metric: str | None = Field(default=None, pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$",
                               description="name of the samples stored (default: each series' __name__, "
                                           "else the target name)")
    headers: dict[str, str] = Field(default_factory=dict, description="request headers; secrets as ${ENV_VAR}")

    @field_validator("range", "step", mode="before")
    @classmethod
    def _span(cls, value: object) -> timedelta:
        return parse_duration(value)


class AlertmanagerTarget(_TargetBase):
    KIND: ClassVar[str] = "alertmanager"
    kind: Literal["alertmanager"]
    url: str = Field(pattern=r"^https?://", description="base URL of the Alertmanager API")
    filter: list[str] = Field(default_factory=list, description='label matchers, e.g. severity="critical"')
    include_silenced: bool = Field(default=False, description="also pull silenced alerts")
    include_inhibited: bool = Field(default=False, description="also pull inhibited alerts")
    headers: dict[str, str] = Field(default_factory=dict, description="request headers; secrets as ${ENV_VAR}")


class LogSignature(Strict):
    name: str = Field(pattern=_NAME)
    pattern: str = Field(description="regular expression a matching line contains")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return pattern


class LogsTarget(_TargetBase):
    KIND: ClassVar[str] = "logs"
    kind: Literal["logs"]
    path: str | None = Field(default=None, description="local log file to tail")
    loki_url: str | None = Field(default=None, pattern=r"^https?://", description="base URL of a Loki server")
    query: str | None = Field(default=None, description="LogQL stream selector for Loki")
    signatures: list[LogSignature] = Field(min_length=1, description="named patterns to count")
    headers: dict[str, str] = Field(default_factory=dict, description="Loki request headers; secrets as ${ENV_VAR}")

    @model_validator(mode="after")
    def _one_source(self) -> "LogsTarget":
        if (self.path is None) == (self.loki_url is None):
            raise ValueError("give either path (a local file) or loki_url with query, not both or neither")
        if self.loki_url is not None and not self.query:
            raise ValueError("loki_url needs a query (a LogQL stream selector)")
        return self


Target = Annotated[
    Union[HttpTarget, TcpTarget, DnsTarget, TlsTarget, HostTarget, PrometheusTarget, AlertmanagerTarget, LogsTarget],
    Field(discriminator="kind"),
]


class TargetsFile(Strict):
    targets: list[Target] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> "TargetsFile":
        require_unique((target.name for target in self.targets), "target name")
        return self


class DemoSettings(Strict):
    enabled: bool = Field(default=True, description="`workbench up` also starts the demo service")
    port: int = Field(default=8503, ge=1, le=65535)


ASSISTANT_TOOLS = ("list_incidents", "get_incident", "get_evidence", "golden_signals", "recent_log_lines",
                   "get_hypotheses", "changes_around")


class AssistantSettings(Strict):
    """What ``workbench mcp`` serves to assistants: read-only tools, each answer bounded."""

    tools: list[Literal[ASSISTANT_TOOLS]] = Field(default_factory=lambda: list(ASSISTANT_TOOLS),  # type: ignore[valid-type]
                                                  description="the tools served; a call to any other is refused")
    max_answer_bytes: int = Field(default=32_768, ge=1024, le=1_048_576, description="an answer longer than this "
                                  "is cut, with a note saying so")


class OidcAccess(Strict):
    """Single sign-on through an OpenID Connect provider, by Streamlit's ``st.login`` (Authlib):
    who is let in (subjects or e-mail domains) and which claim says their role."""

    server_metadata_url: str = Field(pattern=r"^https?://", description="the provider's discovery document "
                                     "(…/.well-known/openid-configuration)")
    client_id: str = Field(min_length=1, description="the workbench's client id at the provider")
    client_secret_env: str = Field(default="WORKBENCH_OIDC_CLIENT_SECRET", pattern=_ENV_NAME,
                                   description="environment variable holding the client secret")
    redirect_uri: str = Field(pattern=r"^https?://.+/oauth2callback$", description="the web app's address as the "
                              "browser reaches it, ending in /oauth2callback (registered at the provider)")
    allow_subjects: list[str] = Field(default_factory=list, description="subjects (sub claims) let in")
    allow_domains: list[str] = Field(default_factory=list, description="e-mail domains let in (a verified "
                                     "e-mail address is required)")
    role_claim: str = Field(default="groups", min_length=1, description="the ID token claim (a string or a list) "
                            "whose values map to roles")
    roles: dict[str, Role] = Field(default_factory=dict, description="claim value → role; the highest one matched "
                                   "is taken")
    default_role: Role | None = Field(default="viewer", description="the role of an allowed identity no claim "
                                      "value maps; null refuses them")
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"], description="the scopes "
                              "asked for (add the one that brings the role claim, e.g. groups, if the provider "
                              "needs it)")
    label: str = Field(default="Log in with single sign-on", min_length=1, description="the button's text")

    @model_validator(mode="after")
    def _someone(self) -> OidcAccess:
        if not self.allow_subjects and not self.allow_domains:
            raise ValueError("oidc lets nobody in: list allow_subjects or allow_domains")
        return self

    @field_validator("allow_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return [d.strip().lower().removeprefix("@") for d in value]


class AccessSettings(Strict):
    """Login to the web app (local accounts, OIDC, or both), roles, and the limits of a login."""

    local_accounts: bool = Field(default=True, description="accounts made with `workbench users add` may log in")
    oidc: OidcAccess | None = Field(default=None, description="single sign-on through an OpenID Connect provider")
    session_ttl: timedelta = Field(default=timedelta(hours=12), description="a login lasts this long, then asks "
                                   "again")
    max_failed_logins: int = Field(default=5, ge=1, le=100, description="failed logins in a row that lock an "
                                   "account")
    lockout: timedelta = Field(default=timedelta(minutes=15), description="how long a locked account stays locked")
    step_up_after: timedelta = Field(default=timedelta(minutes=10), description="approving a disruptive action "
                                     "asks for the password (or a fresh sign-in) again when the login is older")
    self_approval: bool = Field(default=False, description="a person may approve a request they proposed "
                                "(single-operator set-ups); the audit says so")
    cli_role: Role = Field(default="approver", description="the role of an OS user at the command line who has "
                           "no account of the same name (who has a shell here has the ledger)")
    metrics_token: bool = Field(default=False, description="the worker's /metrics asks for an API token with the "
                                "read scope")
    cookie_secret_env: str = Field(default="WORKBENCH_COOKIE_SECRET", pattern=_ENV_NAME, description="environment "
                                   "variable holding the key that signs the single sign-on cookie (unset: one is "
                                   "generated in the data directory)")
    totp_key_env: str = Field(default="WORKBENCH_TOTP_KEY", pattern=_ENV_NAME, description="environment variable "
                              "holding the key that encrypts TOTP secrets in the ledger (unset: one is generated "
                              "in the data directory)")

    @field_validator("session_ttl", "lockout", "step_up_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)

    @model_validator(mode="after")
    def _a_way_in(self) -> AccessSettings:
        if not self.local_accounts and self.oidc is None:
            raise ValueError("access lets nobody log in: keep local_accounts or configure oidc")
        return self


class FleetSettings(Strict):
    """Several workers, on one host or many, sharing the PostgreSQL ledger (docs/fleet.md)."""

    bucket_size: int = Field(default=500, ge=1, le=100_000, description="most targets in one bucket, the unit "
                             "of work a worker takes from the queue")
    window: timedelta = Field(default=timedelta(seconds=10), description="an interval is cut into windows of this "
                              "length; a bucket holds targets whose run falls in the same window")
    heartbeat: timedelta = Field(default=timedelta(seconds=5), description="how often a worker says it is alive "
                                 "and plans the buckets of the coming windows")
    lease: timedelta = Field(default=timedelta(seconds=20), description="a bucket, or the house duties, whose "
                             "worker stopped heartbeating is taken by another after this")
    dead_after: timedelta = Field(default=timedelta(seconds=60), description="a worker silent this long opens a "
                                  "fleet incident (one per worker)")
    max_buckets: int = Field(default=64, ge=2, le=10_000, description="buckets one worker runs at once")

    @field_validator("window", "heartbeat", "lease", "dead_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)

    @model_validator(mode="after")
    def _lease_outlives_heartbeats(self) -> FleetSettings:
        if self.lease < 2 * self.heartbeat:
            raise ValueError(f"lease ({format_duration(self.lease)}) must be at least two heartbeats "
                             f"({format_duration(2 * self.heartbeat)})")
        if self.dead_after < self.lease:
            raise ValueError(f"dead_after ({format_duration(self.dead_after)}) must not be shorter than lease "
                             f"({format_duration(self.lease)})")
        return self


class SettingsFile(Strict):
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="most bytes of a body a probe reads")
    max_connections: int = Field(default=100, ge=1, description="connection pool size of the probe client")
    policy_reload_interval: timedelta = Field(default=timedelta(seconds=5))
    worker_port: int = Field(default=8502, ge=1, le=65535)
    ui_port: int = Field(default=8501, ge=1, le=65535)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    mcp: AssistantSettings = Field(default_factory=AssistantSettings)
    access: AccessSettings | None = Field(default=None, description="login and roles (docs/security.md); without "
                                          "it the web app serves loopback only, as the OS user")
    fleet: FleetSettings | None = Field(default=None, description="several workers share the PostgreSQL ledger "
                                        "(docs/fleet.md); without it one worker probes every target")
    ingest_token_env: str = Field(default="WORKBENCH_INGEST_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                  description="environment variable whose value, when set, the alert "
                                              "webhook requires as a bearer token")
    ingest_max_bytes: int = Field(default=1_048_576, ge=1024, description="largest webhook body accepted")
    samples_retention: timedelta = Field(default=timedelta(days=30), description="how long samples are kept")
    samples_flush_interval: timedelta = Field(default=timedelta(seconds=5),
                                              description="how often buffered samples are written")
    rollups_1m_retention: timedelta = Field(default=timedelta(days=8), description="how long per-minute rollups "
                                            "are kept (the Trends page reads two days of them)")
    rollups_1h_retention: timedelta = Field(default=timedelta(days=400), description="how long per-hour rollups "
                                            "are kept")

    posture: Posture = Field(default="demo", description="where the workbench runs: actions run only in the "
                             "postures they allow")
    approval_expiry: timedelta = Field(default=timedelta(minutes=15), description="how long a request waits for a "
                                       "decision, and an approval for its run")
    approval_key_env: str = Field(default="WORKBENCH_APPROVAL_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                  description="environment variable holding the key that signs approvals "
                                              "(unset: a key generated once in the data directory)")
    remediation_interval: timedelta = Field(default=timedelta(seconds=5), description="how often the worker "
                                            "proposes, runs and verifies actions")
    action_output_max_bytes: int = Field(default=65_536, ge=1024, description="most bytes of an action's output "
                                         "kept")

    @field_validator("access", "fleet", mode="before")
    @classmethod
    def _section_with_defaults(cls, value: object) -> object:
        """``access:`` (or ``fleet:``) written alone (YAML's null) turns it on with every default."""
        return {} if value is None else value

    @field_validator("policy_reload_interval", "samples_flush_interval", "approval_expiry", "remediation_interval",
                     mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_validator("samples_retention", "rollups_1m_retention", "rollups_1h_retention", mode="before")
    @classmethod
    def _retention(cls, value: object) -> timedelta:
        return parse_duration(value, MOST_RETENTION)
