"""Every name one part of the policy gives for another resolves when the policy loads, as the
worker would look it up: target and rule parents, the logs target and signature of a
log_signature rule, the actions a rule or a recommendation proposes, the providers of a route.

``dangling(sections, unusable)`` gives (file, location, reason) for each name that does not;
the loader adds the line. A file that did not load (``unusable``) is not looked into, so its own
problems are not repeated as dangling names.
"""

from __future__ import annotations

from collections.abc import Iterator

from policies.actions import ActionsFile
from policies.channels import ANSWERING, ChannelsFile
from policies.routing import RoutingFile
from policies.rules import LogSignatureRule, RulesFile
from policies.schema import LogsTarget, TargetsFile

Dangling = tuple[str, tuple, str]  # file, location (as pydantic gives it), reason


def dangling(sections: dict[str, object], unusable: set[str]) -> list[Dangling]:
    found: list[Dangling] = []
    targets, rules = sections.get("targets.yaml"), sections.get("rules.yaml")
    actions, routing = sections.get("actions.yaml"), sections.get("routing.yaml")
    targets_known = "targets.yaml" not in unusable
    if targets is not None:
        found += _target_parents(targets)
    if rules is not None and targets_known:
        found += _rule_parents(rules, targets or TargetsFile())
        found += _log_signatures(rules, targets or TargetsFile())
    if rules is not None and "actions.yaml" not in unusable:
        found += _rule_actions(rules, actions or ActionsFile())
    if actions is not None:
        found += _recommended_actions(actions)
    if routing is not None:
        found += _route_providers(routing)
    if (channels := sections.get("channels.yaml")) is not None:
        found += _channel_names(channels)
    return found


def _target_parents(targets: TargetsFile) -> Iterator[Dangling]:
    parents = {target.name: target.parent for target in targets.targets}
    cycles: set[frozenset[str]] = set()
    for i, target in enumerate(targets.targets):
        if target.parent is None:
            continue
        where = ("targets", i, "parent")
        if target.parent not in parents:
            yield "targets.yaml", where, f"names parent {target.parent!r}, which is not a target"
        elif (cycle := _cycle(target.name, parents)) and frozenset(cycle) not in cycles:
            cycles.add(frozenset(cycle))
            yield "targets.yaml", where, f"parents form a cycle: {' -> '.join(cycle)}"


def _cycle(name: str, parents: dict[str, str | None]) -> list[str]:
    """The names from ``name`` up its parents until one repeats (that one last), when that is ``name``."""
    path = [name]
    while (parent := parents.get(path[-1])) is not None:
        path.append(parent)
        if parent in path[:-1]:
            return path if parent == name else []
    return []


def _rule_parents(rules: RulesFile, targets: TargetsFile) -> Iterator[Dangling]:
    names = {target.name for target in targets.targets}
    for i, rule in enumerate(rules.rules):
        if rule.parent is not None and rule.parent not in names:
            yield "rules.yaml", ("rules", i, "parent"), f"names parent {rule.parent!r}, which is not a target in " \
                                                        "targets.yaml"


def _log_signatures(rules: RulesFile, targets: TargetsFile) -> Iterator[Dangling]:
    by_name = {target.name: target for target in targets.targets}
    logs = [target for target in targets.targets if isinstance(target, LogsTarget)]
    for i, rule in enumerate(rules.rules):
        if not isinstance(rule, LogSignatureRule):
            continue
        target = by_name.get(rule.target) if rule.target else None
        if rule.target and target is None:
            yield "rules.yaml", ("rules", i, "target"), f"names target {rule.target!r}, which is not in targets.yaml"
        elif target is not None and not isinstance(target, LogsTarget):
            yield "rules.yaml", ("rules", i, "target"), f"names target {rule.target!r}, a {target.kind} target; " \
                                                        "a log_signature rule reads a logs target"
        elif target is not None and rule.signature not in _signatures(target):
            yield "rules.yaml", ("rules", i, "signature"), \
                f"names signature {rule.signature!r}, which logs target {target.name!r} does not have " \
                f"(it has {', '.join(sorted(_signatures(target)))})"
        elif target is None and not rule.target and not any(rule.signature in _signatures(t) for t in logs):
            yield "rules.yaml", ("rules", i, "signature"), f"names signature {rule.signature!r}, which no logs " \
                                                           "target in targets.yaml has"


def _signatures(target: LogsTarget) -> set[str]:
    return {signature.name for signature in target.signatures}


def _rule_actions(rules: RulesFile, actions: ActionsFile) -> Iterator[Dangling]:
    for i, rule in enumerate(rules.rules):
        for j, name in enumerate(rule.recommend):
            if actions.action(name) is None:
                yield "rules.yaml", ("rules", i, "recommend", j), f"names action {name!r}, which is not in " \
                                                                  "actions.yaml"


def _recommended_actions(actions: ActionsFile) -> Iterator[Dangling]:
    for i, recommendation in enumerate(actions.recommend):
        for j, name in enumerate(recommendation.actions):
            if actions.action(name) is None:
                yield "actions.yaml", ("recommend", i, "actions", j), f"names action {name!r}, which is not " \
                                                                      "under actions"


def _route_providers(routing: RoutingFile) -> Iterator[Dangling]:
    chains = [((task, "chain"), route.chain) for task, route in routing.routes.items()]
    chains += [((task, "chain_by_category", category), chain) for task, route in routing.routes.items()
               for category, chain in route.chain_by_category.items()]
    for where, chain in chains:
        for j, name in enumerate(chain):
            if name not in routing.providers:
                yield "routing.yaml", ("routes", *where, j), f"names provider {name!r}, which is not under providers"


def _channel_names(channels: ChannelsFile) -> Iterator[Dangling]:
    """Routes, escalation steps, approvals, approvers and meta name channels (and routes escalations) that exist;
    approvals and approvers name channels that can take an answer."""
    def unknown(where: tuple, name: str) -> Iterator[Dangling]:
        if channels.channel(name) is None:
            yield "channels.yaml", where, f"names channel {name!r}, which is not under channels"

    for i, route in enumerate(channels.routes):
        for j, name in enumerate(route.channels):
            yield from unknown(("routes", i, "channels", j), name)
        if route.escalation is not None and channels.escalation(route.escalation) is None:
            yield "channels.yaml", ("routes", i, "escalation"), f"names escalation {route.escalation!r}, which is " \
                                                               "not under escalations"
    for i, escalation in enumerate(channels.escalations):
        for j, step in enumerate(escalation.steps):
            for k, name in enumerate(step.channels):
                yield from unknown(("escalations", i, "steps", j, "channels", k), name)
    for j, name in enumerate(channels.meta):
        yield from unknown(("meta", j), name)
    answering = [(("approvals", j), name) for j, name in enumerate(channels.approvals)]
    answering += [(("approvers", j, "channel"), approver.channel) for j, approver in enumerate(channels.approvers)]
    for where, name in answering:
        channel = channels.channel(name)
        if channel is None:
            yield from unknown(where, name)
        elif channel.kind not in ANSWERING:
            yield "channels.yaml", where, f"names channel {name!r}, a {channel.kind} channel, which cannot take an " \
                                          f"answer (only {' and '.join(ANSWERING)} can)"
