"""Pydantic models of ``actions.yaml``: the catalog of remediation actions and which incident
categories recommend them.

An action names a runner (``webhook``, ``command`` or ``notify``), its parameters with a
schema, a risk class and the limits the policy gate enforces. Templates (a webhook's URL,
headers and body, a command's arguments, a note's message) name parameters as ``{{name}}``
and secrets from the environment as ``${NAME}``. Nothing here runs anything: remediation/
does, after the gate and, where needed, the operator's approval.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal, Union
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from policies.rules import Category
from policies.schema import _NAME, Posture, Strict, parse_duration, require_unique
from policies.secrets import references

Risk = Literal["read_only", "containment", "disruptive"]
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def placeholders(template: str) -> list[str]:
    """The parameter names a template uses, in order."""
    return PLACEHOLDER.findall(template)


def _duration(value: object) -> timedelta:
    if value in (0, "0", "0s"):
        return timedelta(0)
    return parse_duration(value)


class Parameter(Strict):
    """One parameter of an action; the gate validates every value against it."""

    type: Literal["string", "integer", "number", "boolean"] = Field(default="string")
    description: str = Field(default="", description="what the parameter means")
    default: str | int | float | bool | None = Field(default=None, description="value when none is given "
                                                     "(none: the parameter is required)")
    choices: list[str | int | float] | None = Field(default=None, description="the only values allowed")
    pattern: str | None = Field(default=None, description="regular expression a string value must match whole")
    minimum: float | None = Field(default=None, description="smallest number allowed")
    maximum: float | None = Field(default=None, description="largest number allowed")
    max_length: int = Field(default=200, ge=1, le=4096, description="longest string allowed")
    secret: bool = Field(default=False, description="the value is a reference to the environment, ${NAME}, "
                         "read at run time and masked in output")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return pattern

    @model_validator(mode="after")
    def _fits_type(self) -> "Parameter":
        if self.secret and (self.type != "string" or self.choices or self.pattern):
            raise ValueError("a secret parameter is a string reference (${NAME}), without choices or pattern")
        if self.type != "string" and self.pattern is not None:
            raise ValueError(f"pattern applies to strings, not to a {self.type}")
        if self.type not in ("integer", "number") and (self.minimum is not None or self.maximum is not None):
            raise ValueError(f"minimum and maximum apply to numbers, not to a {self.type}")
        return self

    @property
    def constrained(self) -> bool:
        """A string whose values are pinned down (choices, a pattern, a secret reference), or not a string."""
        return self.type != "string" or bool(self.choices or self.pattern or self.secret)


class WebhookRunner(Strict):
    """An HTTP request. Parameters may appear in the URL's path and query (never its host),
    headers and body; header and body secrets come from the environment as ${NAME}."""

    kind: Literal["webhook"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(default="POST")
    url: str = Field(pattern=r"^https?://", description="URL to call; {{name}} only after the host")
    headers: dict[str, str] = Field(default_factory=dict, description="request headers; secrets as ${ENV_VAR}")
    body: str | None = Field(default=None, description="body template")

    @field_validator("url")
    @classmethod
    def _fixed_host(cls, url: str) -> str:
        parts = urlsplit(url)
        if placeholders(f"{parts.scheme}://{parts.netloc}") or references(parts.netloc):
            raise ValueError("the scheme and host of a webhook are fixed: parameters only in its path and query")
        return url

    def templates(self) -> list[str]:
        return [self.url, *self.headers.values(), *([self.body] if self.body else [])]


class CommandRunner(Strict):
    """A local program run without a shell: a fixed executable and its arguments."""

    kind: Literal["command"]
    argv: list[str] = Field(min_length=1, description="the program (an absolute path) and its arguments; "
                            "{{name}} and ${ENV_VAR} in arguments only")
    env: dict[str, str] = Field(default_factory=dict, description="environment of the program besides PATH "
                                "and LANG; secrets as ${ENV_VAR}")

    @field_validator("argv")
    @classmethod
    def _fixed_executable(cls, argv: list[str]) -> list[str]:
        program = argv[0]
        if not program.startswith("/") or placeholders(program) or references(program):
            raise ValueError(f"argv[0] must be a fixed absolute path to the program, got {program!r}")
        return argv

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        for name in env:
            if not re.match(_ENV_NAME, name):
                raise ValueError(f"not an environment variable name: {name!r}")
        return env

    def templates(self) -> list[str]:
        return [*self.argv[1:], *self.env.values()]


class NotifyRunner(Strict):
    """A note on the incident's timeline (and, once channels exist, a message to them)."""

    kind: Literal["notify"]
    message: str = Field(min_length=1, description="the note, a template")

    def templates(self) -> list[str]:
        return [self.message]


Runner = Annotated[Union[WebhookRunner, CommandRunner, NotifyRunner], Field(discriminator="kind")]


class Action(Strict):
    id: str = Field(pattern=_NAME, description="unique id of the action")
    description: str = Field(default="", description="what it does, for the operator")
    runner: Runner
    parameters: dict[str, Parameter] = Field(default_factory=dict, description="parameters by name")
    risk: Risk = Field(description="read_only, containment or disruptive")
    requires_approval: bool = Field(default=True, description="ask the operator first (disruptive actions "
                                    "always do)")
    cooldown: timedelta = Field(default=timedelta(minutes=10), description="least time between two runs with "
                                "the same parameters")
    max_attempts: int = Field(default=1, ge=1, le=100, description="most runs per incident")
    postures: list[Posture] = Field(min_length=1, description="postures it may run in")
    timeout: timedelta = Field(default=timedelta(seconds=30), description="longest a run may take")
    enabled: bool = Field(default=False, description="false: the gate refuses it")

    @field_validator("cooldown", mode="before")
    @classmethod
    def _cooldown(cls, value: object) -> timedelta:
        return _duration(value)

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_validator("parameters")
    @classmethod
    def _parameter_names(cls, parameters: dict[str, Parameter]) -> dict[str, Parameter]:
        for name in parameters:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise ValueError(f"parameter name {name!r} must be an identifier")
        return parameters

    @model_validator(mode="after")
    def _templates_use_parameters(self) -> "Action":
        for template in self.runner.templates():
            for name in placeholders(template):
                if name not in self.parameters:
                    raise ValueError(f"{{{{{name}}}}} is not a parameter of {self.id!r}")
        if self.runner.kind == "command" and (loose := [n for n, p in self.parameters.items() if not p.constrained]):
            raise ValueError(f"string parameters of a command need choices or a pattern: {', '.join(loose)}")
        return self

    @property
    def needs_approval(self) -> bool:
        return self.risk == "disruptive" or self.requires_approval


class Recommendation(Strict):
    """Incidents with a finding of this category (and service, if given) get these actions proposed."""

    category: Category
    service: str | None = Field(default=None, pattern=_NAME, description="only incidents of this service")
    actions: list[str] = Field(min_length=1, description="ids of actions to propose")


class ActionsFile(Strict):
    actions: list[Action] = Field(default_factory=list)
    recommend: list[Recommendation] = Field(default_factory=list, description="actions proposed by incident "
                                            "category")

    @model_validator(mode="after")
    def _unique_ids(self) -> "ActionsFile":
        require_unique((action.id for action in self.actions), "action id")
        return self

    def action(self, action_id: str) -> Action | None:
        return next((a for a in self.actions if a.id == action_id), None)
