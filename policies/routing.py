"""Pydantic models of ``routing.yaml``: which model providers exist and, for each task, the
ordered chain of providers the router tries, behind its gates.

Gates of a route: ``llm_allowed`` per incident category (a category set to false is
rule-first: its incidents never go to a model), ``privacy`` (``local``: incident data only to
providers whose privacy class is local; ``any``: remote ones too) and ``daily_token_budget``
(tokens of the task's calls per UTC day).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from policies.rules import Category
from policies.schema import _NAME, Strict, parse_duration

Privacy = Literal["local", "remote"]


class Provider(Strict):
    kind: Literal["ollama"] = Field(default="ollama", description="the API it speaks")
    host: str = Field(description="base URL of the Ollama API, e.g. http://127.0.0.1:11434")
    model: str = Field(min_length=1, description="model name as the server lists it")
    privacy: Privacy = Field(description="local: the data stays on machines you run; remote: it leaves them")
    cost_per_token: float = Field(default=0, ge=0, description="what one token costs, for the budget view")
    timeout: timedelta = Field(default=timedelta(seconds=120), description="limit for one answer")
    health_timeout: timedelta = Field(default=timedelta(seconds=2), description="limit for the health check")
    temperature: float = Field(default=0, ge=0, le=2)
    max_tokens: int = Field(default=768, ge=16, le=32768, description="most tokens of one answer")

    @field_validator("host")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value.rstrip("/")

    @field_validator("timeout", "health_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)


class Route(Strict):
    chain: list[str] = Field(min_length=1, description="providers in the order they are tried")
    chain_by_category: dict[Category, list[str]] = Field(default_factory=dict, description="another chain for "
                                                         "incidents of a category")
    llm_allowed: dict[Category, bool] = Field(default_factory=dict, description="false: incidents of the "
                                              "category never go to a model (unlisted: allowed)")
    privacy: Literal["local", "any"] = Field(default="local", description="local: only local providers see the data")
    daily_token_budget: int | None = Field(default=None, ge=1, description="tokens per UTC day for the task")
    max_attempts: int = Field(default=2, ge=1, le=5, description="tries per provider for a valid answer")


class Refinement(Strict):
    """The worker's background refinement of open incidents' hypotheses."""

    enabled: bool = True
    interval: timedelta = Field(default=timedelta(seconds=30), description="time between refinement runs")
    per_run: int = Field(default=2, ge=1, le=50, description="most incidents refined in one run")

    @field_validator("interval", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)


class RoutingFile(Strict):
    providers: dict[str, Provider] = Field(default_factory=dict)
    routes: dict[str, Route] = Field(default_factory=dict)
    refinement: Refinement = Field(default_factory=Refinement)

    @field_validator("providers", "routes")
    @classmethod
    def _names(cls, value: dict) -> dict:
        for name in value:
            if not re.match(_NAME, name):
                raise ValueError(f"name {name!r}: use lower-case letters, digits, '.', '_' and '-'")
        return value
