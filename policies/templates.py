"""The templates of a detector rule's findings, ``summary`` and ``correlation_key``: str.format
with the fields below, as the detector renders them (detectors/cycle.py). ``problem`` renders a
template with sample values of each field's type, as the policy loads, so a template that passes
``policy check`` renders at run time: a format spec that does not fit its field's type, an
attribute or index the value lacks, a label the rule's findings never carry."""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping

FIELDS = {  # name -> what the value is, as the operator reads it
    "rule": "text", "service": "text", "target": "text",
    "value": "a number, or none when there is no data",
    "threshold": "a number, or none",
    "window": "text such as 5m",
    "severity": "text", "category": "text",
    "labels": "the finding's labels: labels[name] is text, or none when the finding lacks it",
}


class _Formatter(string.Formatter):
    """str.format that prints a missing value as 'none' whatever its format spec."""

    def format_field(self, value, format_spec):
        return "none" if value is None else super().format_field(value, format_spec)


class FindingLabels(dict):
    """A finding's labels as templates see them: a label it lacks (a group with no such label) is none."""

    def __missing__(self, key):
        return None


def render(template: str, fields: Mapping[str, object]) -> str:
    return _Formatter().format(template, **fields)


def unknown_field(template: str) -> str | None:
    """The first field the template names that is not a template field; ValueError when it does not parse."""
    try:
        names = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as exc:
        raise ValueError(f"not a valid template: {exc}") from None
    return next((_root(name) for name in names if _root(name) not in FIELDS), None)


def samples(rule: str, service: str | None, window: str, severity: str, category: str,
            labels: Mapping[str, str], by: Iterable[str]) -> list[tuple[str, dict]]:
    """(when, fields) a rule's templates meet at run time: a value; no data and no group labels (an
    absence rule that finds nothing); the shortest values: zeros, empty labels, a service and a
    target named by one character."""
    common = {"rule": rule, "service": service or "service", "target": "target", "window": window,
              "severity": severity, "category": category}
    return [
        ("", {**common, "value": 0.93, "threshold": 0.5, "labels": {**labels, **{name: "x" for name in by}}}),
        (" when there is no data", {**common, "value": None, "threshold": None, "labels": FindingLabels(labels)}),
        (" with the shortest values", {**common, "service": service or "x", "target": "x", "value": 0.0,
                                       "threshold": 0.0, "labels": FindingLabels({**labels, **{n: "" for n in by}})}),
    ]


def problem(template: str, cases: list[tuple[str, dict]]) -> str | None:
    """Why the template cannot be rendered in one of the cases, naming the field; None when it can."""
    for _, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        piece = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        for when, fields in cases:
            try:
                render(piece, fields)
            except KeyError as exc:
                return _missing(piece, field, exc.args[0], fields)
            except Exception as exc:
                return f"{piece} cannot be rendered{when}: {exc} ({_root(field)} is {FIELDS[_root(field)]})"
    return None


def _missing(piece: str, field: str, key: object, fields: dict) -> str:
    if _root(field) == "labels" and f"[{key}]" in field:
        return f"{piece}: its findings never carry label {key!r} (they carry " \
               f"{', '.join(sorted(fields['labels'])) or 'no labels'}: the rule's labels and its by labels)"
    return f"{piece}: unknown field {{{key}}} (use {', '.join(FIELDS)}[name])"


def _root(field: str) -> str:
    return field.split(".")[0].split("[")[0]
