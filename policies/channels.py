"""Pydantic models of ``channels.yaml``: where notifications go and how.

``channels`` are the places a notification can be delivered (a webhook, e-mail, Slack, Telegram,
or any service Apprise knows); ``routes`` say which incidents go to which channels, matched on
the incident's labels in order (the first route that matches takes it, unless it says
``continue``), grouped and timed as Alertmanager does it. A route's channels are tried in turn: a
notification goes to the first, and to the next only when delivery there fails for good; the
in-app inbox always holds it. ``escalations`` re-notify an incident nobody acknowledged;
``approvals`` name the channels that get a pending action request with Approve and Reject, and
``approvers`` who may answer there. Secrets are ``${NAME}`` references to the environment.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal, Union
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from policies.schema import _NAME, Strict, parse_duration, require_unique
from policies.secrets import references
from policies.selectors import Matcher, parse_matcher

_REFERENCE_ONLY = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
ANSWERING = ("slack", "telegram")  # kinds that can take Approve / Reject / Acknowledge back


def _http_url(value: str) -> str:
    parts = urlsplit(value.replace("${", "").replace("}", ""))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {value!r}")
    return value.rstrip("/")


def _secret(value: str | None) -> str | None:
    if value is not None and not _REFERENCE_ONLY.match(value):
        raise ValueError("a secret is written as a reference to the environment, ${NAME}, never as its value")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]
SecretReference = Annotated[str, AfterValidator(_secret)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Channel(Strict):
    name: str = Field(pattern=_NAME, description="unique name of the channel")
    timeout: timedelta = Field(default=timedelta(seconds=10), description="limit for one delivery attempt")

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: object) -> timedelta:
        return parse_duration(value, timedelta(minutes=2))


class WebhookChannel(_Channel):
    kind: Literal["webhook"]
    url: HttpUrl = Field(description="where the JSON body is POSTed; secrets as ${NAME}")
    headers: dict[str, str] = Field(default_factory=dict, description="request headers; secrets as ${NAME}")


class EmailChannel(_Channel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    kind: Literal["email"]
    host: str = Field(min_length=1, description="SMTP server")
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = Field(default="starttls", description="starttls (port 587), "
                                                         "tls (implicit, port 465) or none (a relay on loopback)")
    ca_file: str | None = Field(default=None, description="CA bundle that signs the server's certificate "
                                "(default: the system's)")
    username: str | None = Field(default=None, description="login, if the server wants one; may be ${NAME}")
    password: SecretReference | None = Field(default=None, description="${NAME} of the password")
    sender: str = Field(alias="from", min_length=3, description="the From address")
    to: list[str] = Field(min_length=1, description="recipients")

    @model_validator(mode="after")
    def _login(self) -> EmailChannel:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


class SlackChannel(_Channel):
    kind: Literal["slack"]
    token: SecretReference = Field(description="${NAME} of the bot token (xoxb-...), for chat.postMessage")
    channel: str = Field(min_length=1, description="channel or user id the messages go to")
    api_url: HttpUrl = Field(default="https://slack.com/api", description="base URL of the Slack Web API")
    signing_secret: SecretReference | None = Field(default=None, description="${NAME} of the app's signing secret: with it the "
                                       "worker takes button answers at /channels/slack/interactions")


class TelegramChannel(_Channel):
    kind: Literal["telegram"]
    token: SecretReference = Field(description="${NAME} of the bot token")
    chat_id: str = Field(min_length=1, description="chat the messages go to")
    api_url: HttpUrl = Field(default="https://api.telegram.org", description="base URL of the Bot API")
    poll_timeout: timedelta = Field(default=timedelta(seconds=25), description="long-polling wait of getUpdates")

    @field_validator("poll_timeout", mode="before")
    @classmethod
    def _poll(cls, value: object) -> timedelta:
        return parse_duration(value, timedelta(seconds=50))


class AppriseChannel(_Channel):
    kind: Literal["apprise"]
    url: str = Field(min_length=3, description="an Apprise URL (e.g. ntfys://topic, pover://user@token); "
                     "secrets in it as ${NAME}")

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError(f"not an Apprise URL: {value!r} (scheme://..., see the Apprise wiki)")
        return value


Channel = Annotated[Union[WebhookChannel, EmailChannel, SlackChannel, TelegramChannel, AppriseChannel],
                    Field(discriminator="kind")]


class Route(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    matchers: list[str] = Field(default_factory=list, description="label matchers on the incident (KEY=VALUE, "
                                "KEY!=VALUE, KEY=~REGEX, KEY!~REGEX), all must hold; none: every incident")
    channels: list[str] = Field(min_length=1, description="tried in turn: the next only when delivery to one "
                                "fails for good")
    continue_: bool = Field(default=False, alias="continue", description="go on to the next routes after a match")
    group_by: list[str] = Field(default_factory=lambda: ["incident"], description="labels whose values make a "
                                "group: one notification per group (default: one per incident)")
    group_wait: Duration = Field(default=timedelta(seconds=30), description="wait before a new group's first "
                                  "notification, for more incidents to join it")
    group_interval: Duration = Field(default=timedelta(minutes=5), description="wait before notifying of "
                                      "changes to a group already notified")
    repeat_interval: Duration = Field(default=timedelta(hours=4), description="wait before notifying again of "
                                       "a group that has not changed")
    send_resolved: bool = Field(default=True, description="notify when the group's incidents are resolved")
    escalation: str | None = Field(default=None, description="escalation policy for its unacknowledged incidents")

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_matcher(text)
        return value

    @property
    def parsed_matchers(self) -> list[Matcher]:
        return [parse_matcher(text) for text in self.matchers]


class EscalationStep(Strict):
    after: Duration = Field(description="time since the incident opened, unacknowledged")
    channels: list[str] = Field(min_length=1, description="tried in turn, as a route's are")


class Escalation(Strict):
    name: str = Field(pattern=_NAME)
    severities: list[Literal["info", "warning", "critical"]] = Field(
        default_factory=lambda: ["critical"], description="severities of the incidents it escalates")
    steps: list[EscalationStep] = Field(min_length=1, description="in the order of their delays")
    repeat: timedelta | None = Field(default=None, description="the last step again, this often, until someone "
                                     "acknowledges")

    @field_validator("repeat", mode="before")
    @classmethod
    def _repeat(cls, value: object) -> timedelta | None:
        return None if value is None else parse_duration(value)

    @model_validator(mode="after")
    def _ordered(self) -> Escalation:
        afters = [step.after for step in self.steps]
        if afters != sorted(afters):
            raise ValueError("steps must come in the order of their delays (after)")
        return self


class Approver(Strict):
    channel: str = Field(description="a slack or telegram channel")
    identity: str = Field(min_length=1, description="the user id there (Slack: U...; Telegram: a number)")
    operator: str = Field(min_length=1, description="the operator's name in the audit")


class ChannelsFile(Strict):
    channels: list[Channel] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    escalations: list[Escalation] = Field(default_factory=list)
    approvals: list[str] = Field(default_factory=list, description="channels (slack, telegram) that get pending "
                                 "action requests with Approve and Reject")
    approvers: list[Approver] = Field(default_factory=list, description="who may decide from a channel")
    meta: list[str] = Field(default_factory=list, description="channels for the workbench's own trouble: a channel "
                            "failing, a worker job failing, the policy refused")
    app_url: HttpUrl = Field(default="http://127.0.0.1:8501", description="the web app's address, for links")
    interval: Duration = Field(default=timedelta(seconds=5), description="how often the worker plans and "
                                "delivers notifications")
    attempts: int = Field(default=3, ge=1, le=10, description="delivery attempts per channel before the next")
    backoff: Duration = Field(default=timedelta(seconds=5), description="wait before the second attempt, "
                               "doubled before each next one")
    debounce: Duration = Field(default=timedelta(minutes=1), description="least time between two notifications "
                                "of one incident of one category (firing, resolved, escalation)")

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: list) -> list:
        require_unique((channel.name for channel in value), "channel name")
        return value

    @field_validator("escalations")
    @classmethod
    def _unique_escalations(cls, value: list) -> list:
        require_unique((escalation.name for escalation in value), "escalation name")
        return value

    def channel(self, name: str):
        return next((channel for channel in self.channels if channel.name == name), None)

    def approver(self, channel: str, identity: str) -> Approver | None:
        return next((a for a in self.approvers if a.channel == channel and a.identity == identity), None)

    def escalation(self, name: str | None) -> Escalation | None:
        return next((e for e in self.escalations if e.name == name), None)


def secret_names(channel) -> list[str]:
    """The environment variables a channel's settings reference."""
    return references(channel.model_dump_json())
