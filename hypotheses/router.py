"""The LLM router: the routing policy resolves a task's route, its gates decide whether the
call may go out at all and to which providers, the providers are tried in order (health
check, then the call, retried a bounded number of times while the answer is invalid), and
one routing decision is recorded per call, served or not.

Reasons a decision's actual provider differs from the route's first (``reason``): ``none``
(it does not), ``failover`` (an earlier provider was down, failed or answered invalidly),
``gate`` (a rule-first category, or the privacy gate refused providers), ``budget`` (the
task's daily token budget is used up), ``error`` (every provider failed), ``undeclared``
(the policy has no route for the task).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from datetime import time as day_time
from typing import Any

import httpx
import ollama
from pydantic import ValidationError
from sqlalchemy import Engine

from hypotheses.errors import InvalidAnswer, ProviderError
from ledger import queries
from ledger.db import utcnow, write_session
from ledger.repo import hypotheses
from ledger.tables import RoutingDecision
from policies.routing import Provider, Route, RoutingFile
from policies.schema import format_duration
from policies.secrets import redact


@dataclass(frozen=True)
class Call:
    """What a task asks a model: the messages, the JSON schema of the answer (``format=``) and
    the function that validates the answer's text (raising InvalidAnswer)."""

    task: str
    incident_id: int | None
    categories: tuple[str, ...]
    messages: list[dict[str, str]]
    schema: dict
    parse: Callable[[str], Any]


@dataclass(frozen=True)
class Attempt:
    provider: str
    outcome: str  # served | down | error | invalid | refused
    detail: str = ""
    latency_ms: float = 0.0
    tries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Routed:
    answer: Any | None  # None: no provider served; the caller falls back (``decision.detail`` says why)
    decision: queries.DecisionItem


@dataclass
class _Usage:
    tries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def resolve_chain(route: Route, categories: tuple[str, ...]) -> list[str]:
    """The route's chain, or the chain of the first of the categories (alphabetically) that has its own."""
    for category in sorted(categories):
        if category in route.chain_by_category:
            return route.chain_by_category[category]
    return route.chain


def privacy_allows(route: Route, provider: Provider) -> bool:
    return route.privacy == "any" or provider.privacy == "local"


class Router:
    def __init__(self, routing: RoutingFile, engine: Engine, *, now: Callable[[], datetime] = utcnow,
                 clock: Callable[[], float] = time.perf_counter):
        self.routing, self.engine, self.now, self.clock = routing, engine, now, clock

    def route(self, call: Call) -> Routed:
        started = self.clock()
        route = self.routing.routes.get(call.task)
        if route is None:
            return self._record(call, [], [], None, "undeclared", f"no route for task {call.task!r} in routing.yaml",
                                started)
        chain = resolve_chain(route, call.categories)
        if refused := sorted(c for c in call.categories if route.llm_allowed.get(c) is False):
            return self._record(call, chain, [], None, "gate",
                                f"category {refused[0]} is rule-first: its incidents never go to a model", started)
        if route.daily_token_budget is not None:
            used = queries.tokens_used(self.engine, call.task, datetime.combine(self.now().date(), day_time(),
                                                                               tzinfo=self.now().tzinfo))
            if used >= route.daily_token_budget:
                return self._record(call, chain, [], None, "budget", f"daily token budget of "
                                    f"{route.daily_token_budget} used up ({used} tokens today)", started)
        attempts: list[Attempt] = []
        for name in chain:
            provider = self.routing.providers[name]
            if not privacy_allows(route, provider):
                attempts.append(Attempt(name, "refused", f"privacy gate: {name} is {provider.privacy}; the route "
                                                         "sends incident data to local providers only"))
                continue
            answer, attempt = self._try(name, provider, call, route.max_attempts)
            attempts.append(attempt)
            if attempt.outcome == "served":
                return self._record(call, chain, attempts, answer, reason(chain[0], attempts), "", started)
        return self._record(call, chain, attempts, None, reason(chain[0], attempts), "", started)

    def _try(self, name: str, provider: Provider, call: Call, max_attempts: int) -> tuple[Any, Attempt]:
        started, usage = self.clock(), _Usage()
        try:
            check_health(provider)
            answer = ask(provider, call, max_attempts, usage)
            outcome, detail = "served", ""
        except ProviderError as exc:
            answer, outcome, detail = None, exc.outcome, str(exc)
        return answer, Attempt(name, outcome, detail, round((self.clock() - started) * 1000, 1), usage.tries,
                               usage.prompt_tokens, usage.completion_tokens)

    def _record(self, call: Call, chain: list[str], attempts: list[Attempt], answer: Any, why: str, detail: str,
                started: float) -> Routed:
        served = next((a.provider for a in attempts if a.outcome == "served"), None)
        detail = detail or "; ".join(f"{a.provider}: {a.outcome}: {a.detail}" for a in attempts
                                     if a.outcome != "served")
        prompt_tokens = sum(a.prompt_tokens for a in attempts)
        completion_tokens = sum(a.completion_tokens for a in attempts)
        decision = RoutingDecision(
            at=self.now(), task=call.task, incident_id=call.incident_id, category=",".join(call.categories) or None,
            route=chain, expected=chain[0] if chain else None, declared=chain[0] if chain else None, actual=served,
            reason=why, detail=redact(detail, emails=True), attempts=[asdict(a) for a in attempts],
            privacy_refusals=sum(1 for a in attempts if a.outcome == "refused"),
            latency_ms=round((self.clock() - started) * 1000, 1), prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, tokens=prompt_tokens + completion_tokens,
            cost=sum((a.prompt_tokens + a.completion_tokens) * self.routing.providers[a.provider].cost_per_token
                     for a in attempts),
        )
        with write_session(self.engine) as session:
            hypotheses.add_routing_decision(session, decision)
            item = queries.DecisionItem.model_validate(decision, from_attributes=True)
        return Routed(answer, item)


def reason(expected: str, attempts: list[Attempt]) -> str:
    served = next((a.provider for a in attempts if a.outcome == "served"), None)
    if served == expected:
        return "none"
    if all(a.outcome == "refused" for a in attempts) or (served and attempts[0].outcome == "refused"):
        return "gate"
    return "failover" if served else "error"


def check_health(provider: Provider) -> None:
    """The server answers and lists the provider's model, within ``health_timeout``."""
    listed = _request(provider, provider.health_timeout, "down", lambda client: client.list())
    names = {m.model for m in listed.models}
    if provider.model not in names and f"{provider.model}:latest" not in names:
        raise ProviderError("down", f"model {provider.model} is not on {provider.host}")


def ask(provider: Provider, call: Call, max_attempts: int, usage: _Usage) -> Any:
    """The validated answer; an invalid one is asked again, up to ``max_attempts`` tries."""
    messages = list(call.messages)
    for _ in range(max_attempts):
        usage.tries += 1
        response = _request(provider, provider.timeout, "error", lambda client: client.chat(
            model=provider.model, messages=messages, format=call.schema, stream=False,
            options={"temperature": provider.temperature, "num_predict": provider.max_tokens}))
        usage.prompt_tokens += response.prompt_eval_count or 0
        usage.completion_tokens += response.eval_count or 0
        content = response.message.content or ""
        try:
            return call.parse(content)
        except InvalidAnswer as exc:
            problem = exc
            messages = [*call.messages, {"role": "assistant", "content": content},
                        {"role": "user", "content": f"That answer is invalid: {exc}. Answer again in the schema."}]
    raise InvalidAnswer(f"no valid answer in {max_attempts} tries; last: {problem}")


def _request(provider: Provider, timeout: timedelta, outcome: str, send: Callable[[ollama.Client], Any]) -> Any:
    """One request through the official client; every failure becomes a one-line ProviderError."""
    try:
        with ollama.Client(host=provider.host, timeout=timeout.total_seconds()) as client:
            return send(client)
    except ConnectionError:
        raise ProviderError("down", f"cannot connect to {provider.host}") from None
    except httpx.TimeoutException:
        raise ProviderError(outcome, f"no answer within {format_duration(timeout)}") from None
    except ollama.ResponseError as exc:
        raise ProviderError(outcome, f"{provider.host} answered {exc.status_code}: {exc.error}") from None
    except (httpx.HTTPError, ValidationError, ValueError) as exc:
        raise ProviderError(outcome, f"{provider.host}: not an Ollama answer ({type(exc).__name__})") from None
