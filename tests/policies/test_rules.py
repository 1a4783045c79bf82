"""rules.yaml: golden signals per service and detector rules, validated with file, line and
path; selectors and expressions as data, never evaluated as code."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from policies.errors import PolicyError
from policies.expressions import evaluate, parse_expression
from policies.loader import load_policy
from policies.rules import Rule, golden_signals
from policies.selectors import parse_matcher, parse_selector
from policies.templates import FindingLabels, render

RULE = TypeAdapter(Rule)

TARGETS = """
targets:
  - {name: web, kind: http, service: shop, url: "http://127.0.0.1:9/"}
"""


def problems(policy_dir, rules: str) -> list[str]:
    directory = policy_dir(TARGETS)
    (directory / "rules.yaml").write_text(rules)
    with pytest.raises(PolicyError) as caught:
        load_policy(directory)
    return [str(p) for p in caught.value.problems]


def test_rules_load_with_defaults_and_service_signals(policy_dir):
    directory = policy_dir(TARGETS)
    (directory / "rules.yaml").write_text("""
services:
  shop:
    latency: 'http_latency_seconds{job="shop"}'
    traffic: 'http_rps{job="shop"}'
    errors: 'http_eps{job="shop"}'
rules:
  - {name: shop-p99, kind: latency, service: shop, above: 0.3, for: 2m}
  - {name: shop-errors, kind: errors, errors: 'http_eps{job="shop"}', requests: 'http_rps{job="shop"}', above: 0.05}
""")
    rules = load_policy(directory).rules
    latency = rules.resolved[0]
    assert latency.series == 'http_latency_seconds{job="shop"}'  # the service's latency signal
    assert (latency.for_.total_seconds(), latency.percentile, latency.by, latency.kind_category) == \
        (120, 99, ["service"], "latency")
    assert latency.correlation_key == "{service}/{rule}" and rules.noise.flap_limit == 4


def test_default_golden_signals_come_from_the_probes():
    signals = golden_signals({}, "demo")
    assert signals.latency.series == 'probe_duration_seconds{service="demo", kind!="host"}'
    assert signals.latency.type == "durations" and signals.traffic is None
    assert signals.errors is None and signals.success == 'probe_success{service="demo"}'
    assert signals.saturation[0].unit == "percent" and parse_selector(signals.saturation[0].series).matches(
        "probe_value", {"service": "demo", "kind": "host", "value": "CPU"})


def test_signals_are_bare_selectors_or_say_what_they_are(tmp_path):
    """A bare selector keeps its meaning (durations, rates, a ratio); a mapping says the type."""
    (tmp_path / "rules.yaml").write_text(
        "services:\n"
        "  shop:\n"
        "    latency: {series: 'http_request_duration_seconds_rate{job=\"shop\"}', type: histogram}\n"
        "    traffic: {series: http_requests_total, type: counter}\n"
        "    errors: {series: shop_error_ratio, type: ratio}\n"
        "    saturation: [pool_ratio, {series: cpu_percent, unit: percent, name: CPU}]\n"
        "  cart: {latency: cart_seconds, traffic: cart_rps, errors: cart_errors}\n")
    services = load_policy(tmp_path).rules.services
    assert (services["shop"].latency.type, services["shop"].traffic.type, services["shop"].errors.type) == (
        "histogram", "counter", "ratio")
    assert [(s.series, s.unit, s.name) for s in services["shop"].saturation] == [
        ("pool_ratio", "ratio", None), ("cpu_percent", "percent", "CPU")]
    cart = golden_signals(services, "cart")
    assert (cart.latency.type, cart.traffic.type, cart.errors.type, cart.errors_rate) == (
        "durations", "rate", "rate", True)
    assert not golden_signals(services, "shop").errors_rate


@pytest.mark.parametrize("services,rules,expected", [
    ("{shop: {errors: shop_errors}}", "[]", "errors needs traffic"),
    ("{shop: {latency: {series: p95, type: percentile}}}", "[]", "a percentile series needs it"),
    ("{shop: {latency: {series: x, type: summary}}}", "[]", "services.shop.latency.type"),
    ("{shop: {latency: {series: 'x_bucket_rate', type: histogram}}}", "[{name: slow, kind: latency, service: shop, "
     "above: 1}]", "a latency rule without series reads shop's latency, which is a histogram"),
])
def test_signal_mistakes_are_refused_in_words(tmp_path, services, rules, expected):
    (tmp_path / "rules.yaml").write_text(f"services: {services}\nrules: {rules}\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path)
    assert expected in str(caught.value)


@pytest.mark.parametrize("rules,expected", [
    ("rules:\n  - {name: a, kind: latency, above: 1}\n",
     "rules.yaml: line 2, rules[0]: a latency rule needs a series or a service"),
    ("rules:\n  - {name: a, kind: saturation, series: cpu, above: 1, below: 2}\n",
     "rules.yaml: line 2, rules[0]: give exactly one of above or below"),
    ("rules:\n  - {name: a, kind: threshold, series: {x: cpu}, expr: 'x + __import__(1)', above: 1}\n",
     "rules.yaml: line 2, rules[0]: expr 'x + __import__(1)': only + - * / and parentheses are allowed"),
    ("rules:\n  - {name: a, kind: threshold, series: {x: cpu}, expr: 'x + y', above: 1}\n",
     "rules.yaml: line 2, rules[0]: expr 'x + y' uses 'y', which is not one of the series (x)"),
    ("rules:\n  - {name: a, kind: traffic, series: 'rps{a=\"1\"', drop: 0.5}\n",
     "rules.yaml: line 2, rules[0].series: cannot parse series selector"),
    ("rules:\n  - {name: a, kind: errors, errors: e, above: 0.1}\n",
     "rules.yaml: line 2, rules[0]: give both errors and requests, or neither"),
    ("rules:\n  - {name: a, kind: errors, errors: 'e{', requests: r, above: 0.1}\n",
     "rules.yaml: line 2, rules[0].errors: cannot parse series selector 'e{'"),
    ("rules:\n  - {name: a, kind: saturation, series: cpu, above: 1, summary: '{host}'}\n",
     "rules.yaml: line 2, rules[0].summary: unknown field {host}"),
    ("rules:\n  - {name: a, kind: saturation, series: cpu, above: 1, parent: nope}\n",
     "rules.yaml: line 2, rules[0].parent: names parent 'nope', which is not a target in targets.yaml"),
    ("rules:\n  - {name: a, kind: absence, series: up, wndow: 5m}\n",
     "rules.yaml: line 2, rules[0].wndow: unknown key"),
    ("rules:\n  - {name: a, kind: absence, series: up}\n  - {name: a, kind: absence, series: up}\n",
     "rule name 'a' is used twice"),
])
def test_bad_rules_are_reported_with_file_line_and_reason(policy_dir, rules, expected):
    found = problems(policy_dir, rules)
    assert any(expected in p for p in found), found


def test_a_value_of_several_forms_is_one_problem_in_the_operators_words(policy_dir):
    """A series may be a selector or named selectors: a bad one is one problem at its key, saying
    what is wrong with the name, never pydantic's steps (function-after[...], dict[...])."""
    found = problems(policy_dir, "rules:\n  - name: checkout-errors\n    kind: threshold\n"
                                 "    series: checkout-error-ratio\n    above: 0.05\n")
    assert [p.split("rules.yaml: ", 1)[1] for p in found] == [
        "line 4, rules[0].series: 'checkout-error-ratio' is not a valid series name: use letters, digits, _ and : "
        "(not starting with a digit), as Prometheus does"]


SATURATION = "rules:\n  - {name: a, kind: saturation, series: cpu, above: 1, by: [service, value], %s}\n"


@pytest.mark.parametrize("template,problem", [
    ("summary: '{window:.1f}'", "summary: {window:.1f} cannot be rendered: Unknown format code 'f' for object of "
                                "type 'str' (window is text such as 5m)"),
    ("summary: '{value:d}'", "summary: {value:d} cannot be rendered: Unknown format code 'd' for object of type "
                             "'float' (value is a number, or none when there is no data)"),
    ("correlation_key: '{value.real}'", "correlation_key: {value.real} cannot be rendered when there is no data: "
                                        "'NoneType' object has no attribute 'real' (value is a number, or none when "
                                        "there is no data)"),
    ("summary: '{labels[host]}'", "summary: {labels[host]}: its findings never carry label 'host' (they carry "
                                  "service, value: the rule's labels and its by labels)"),
    ("summary: '{labels[value][0]}'", "summary: {labels[value][0]} cannot be rendered when there is no data: "
                                      "'NoneType' object is not subscriptable (labels is the finding's labels: "
                                      "labels[name] is text, or none when the finding lacks it)"),
    ("summary: '{target[2]}'", "summary: {target[2]} cannot be rendered with the shortest values: string index out "
                               "of range (target is text)"),
    ("summary: '{value:{nope}}'", "summary: {value:{nope}}: unknown field {nope} (use rule, service, target, value, "
                                  "threshold, window, severity, category, labels[name])"),
    ("correlation_key: 'd{}emo'", "correlation_key: unknown field {} (use rule, service, target, value, threshold, "
                                  "window, severity, category, labels[name])"),
    ("summary: '{labelsx}'", "summary: unknown field {labelsx} (use rule, service, target, value, threshold, window, "
                             "severity, category, labels[name])"),
])
def test_templates_are_rendered_at_load_with_values_of_each_fields_type(policy_dir, template, problem):
    found = problems(policy_dir, SATURATION % template)
    assert found == [f"{policy_dir(TARGETS) / 'rules.yaml'}: line 2, rules[0].{problem}"]


def test_templates_that_fit_their_fields_load(policy_dir):
    directory = policy_dir(TARGETS)
    (directory / "rules.yaml").write_text(SATURATION % "summary: '{labels[value]} of {service} at {value:.0f}% over "
                                          "{window} (above {threshold:g}%, {labels[team]})', labels: {team: ops}, "
                                          "correlation_key: '{service}/{rule}/{labels[value]:>8}'")
    assert load_policy(directory).rules.rules[0].summary.startswith("{labels[value]} of {service}")


def test_a_target_parent_must_exist_and_not_loop(policy_dir):
    directory = policy_dir("""
targets:
  - {name: b, kind: tcp, service: s, host: 127.0.0.1, port: 9}
  - {name: c, kind: tcp, service: s, host: 127.0.0.1, port: 9, parent: zz}
""")
    with pytest.raises(PolicyError) as caught:
        load_policy(directory)
    [problem] = caught.value.problems
    assert str(problem) == f"{directory / 'targets.yaml'}: line 4, targets[1].parent: names parent 'zz', which is " \
                           "not a target"
    (directory / "targets.yaml").write_text("""
targets:
  - {name: a, kind: tcp, service: s, host: 127.0.0.1, port: 9, parent: b}
  - {name: b, kind: tcp, service: s, host: 127.0.0.1, port: 9, parent: a}
  - {name: c, kind: tcp, service: s, host: 127.0.0.1, port: 9, parent: a}
""")
    with pytest.raises(PolicyError) as caught:
        load_policy(directory)
    assert [str(p) for p in caught.value.problems] == [
        f"{directory / 'targets.yaml'}: line 3, targets[0].parent: parents form a cycle: a -> b -> a"]


@pytest.mark.parametrize("text,name,labels,matches", [
    ('up{job="node"}', "up", {"job": "node"}, True),
    ('up{job="node"}', "up", {"job": "web"}, False),
    ('up{job!="node", instance=~"a.*"}', "up", {"job": "web", "instance": "abc"}, True),
    ('up{instance=~"a"}', "up", {"instance": "abc"}, False),        # anchored, as in Prometheus
    ('up{instance!~"a.*"}', "up", {"instance": "b"}, True),
    ('{service="x"}', "anything", {"service": "x"}, True),
    ('up{zone=""}', "up", {}, True),                                 # a missing label is empty
    ('up{msg="say \\"hi\\""}', "up", {"msg": 'say "hi"'}, True),
])
def test_selectors(text, name, labels, matches):
    assert parse_selector(text).matches(name, labels) is matches


@pytest.mark.parametrize("text", ["", "up{job=node}", "up{job=\"a\"", "up{1a=\"x\"}", "up{a=~\"(\"}"])
def test_bad_selectors(text):
    with pytest.raises(ValueError):
        parse_selector(text)


@pytest.mark.parametrize("text,label,op,value", [
    ("service=shop", "service", "=", "shop"), ("alertname=~Disk.*", "alertname", "=~", "Disk.*"),
    ("severity!=info", "severity", "!=", "info"), ('team="a b"', "team", "=", "a b"),
])
def test_cli_matchers(text, label, op, value):
    m = parse_matcher(text)
    assert (m.label, m.op, m.value) == (label, op, value)


@pytest.mark.parametrize("expr,values,expected", [
    ("a / b", {"a": 1, "b": 4}, 0.25), ("(a + b) * 100", {"a": 1, "b": 2}, 300), ("-a", {"a": 2}, -2),
    ("a / b", {"a": 1, "b": 0}, None), ("a - b", {"a": 1, "b": None}, None),
])
def test_expressions(expr, values, expected):
    assert evaluate(parse_expression(expr, set(values)), values) == expected


@pytest.mark.parametrize("expr", ["a.b", "a ** 2", "f(a)", "a if a else b", "'x'", "a[0]"])
def test_expressions_refuse_anything_but_arithmetic(expr):
    with pytest.raises(ValueError):
        parse_expression(expr, {"a", "b"})


LOGS = """
targets:
  - {name: web, kind: http, service: shop, url: "http://127.0.0.1:9/"}
  - name: app-log
    kind: logs
    service: shop
    path: /var/log/app.log
    signatures: [{name: oom, pattern: "Out of memory"}, {name: panic, pattern: "panic:"}]
"""


def test_a_log_signature_rule_names_a_logs_target_and_one_of_its_signatures(policy_dir):
    directory = policy_dir(LOGS)
    (directory / "rules.yaml").write_text("""rules:
  - {name: a, kind: log_signature, target: nope, signature: oom}
  - {name: b, kind: log_signature, target: web, signature: oom}
  - {name: c, kind: log_signature, target: app-log, signature: segfault}
  - {name: d, kind: log_signature, signature: segfault}
  - {name: e, kind: log_signature, target: app-log, signature: panic}
  - {name: f, kind: log_signature, signature: oom}
""")
    with pytest.raises(PolicyError) as caught:
        load_policy(directory)
    rules = directory / "rules.yaml"
    assert [str(p) for p in caught.value.problems] == [
        f"{rules}: line 2, rules[0].target: names target 'nope', which is not in targets.yaml",
        f"{rules}: line 3, rules[1].target: names target 'web', a http target; a log_signature rule reads a logs "
        "target",
        f"{rules}: line 4, rules[2].signature: names signature 'segfault', which logs target 'app-log' does not "
        "have (it has oom, panic)",
        f"{rules}: line 5, rules[3].signature: names signature 'segfault', which no logs target in targets.yaml has",
    ]


TEXT_SPECS = ["", ":s", ":>5", ":.3", ":d"]
NUMBER_SPECS = ["", ":.1f", ":g", ":,", ":%", ":d", ":c"]
FIELD = st.one_of(
    st.tuples(st.sampled_from(["rule", "service", "target", "window", "severity", "category"]),
              st.sampled_from(["", "[0]", "[1]", "[3]", ".upper"]), st.sampled_from(TEXT_SPECS)),
    st.tuples(st.sampled_from(["value", "threshold"]), st.sampled_from(["", ".real"]), st.sampled_from(NUMBER_SPECS)),
    st.tuples(st.just("labels"), st.sampled_from(["[value]", "[service]", "[team]", "[value][0]", "[service][1]"]),
              st.sampled_from(TEXT_SPECS)),
).map(lambda parts: "{" + "".join(parts) + "}")
TEMPLATES = st.lists(FIELD | st.sampled_from(["x", " ", "/"]), max_size=3).map("".join)
RUN_TIME_TEXT = st.text(min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(template=TEMPLATES,
       value=st.none() | st.floats(), threshold=st.none() | st.floats(), service=RUN_TIME_TEXT, target=RUN_TIME_TEXT,
       group=st.dictionaries(st.sampled_from(["service", "value"]), st.text(max_size=4)))
def test_a_template_the_check_accepts_renders_with_any_values_of_its_fields(template, value, threshold, service,
                                                                            target, group):
    try:
        rule = RULE.validate_python({"name": "a", "kind": "saturation", "series": "cpu", "above": 1,
                                     "by": ["service", "value"], "summary": template})
    except ValidationError:
        return
    fields = {"rule": rule.name, "service": service, "target": target, "value": value, "threshold": threshold,
              "window": "5m", "severity": rule.severity, "category": rule.kind_category,
              "labels": FindingLabels({**rule.labels, **group})}
    render(template, fields)
