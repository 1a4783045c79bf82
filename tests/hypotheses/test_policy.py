"""hypotheses.yaml and routing.yaml: the shipped files load, mistakes are reported with the
file, the line and the path, and a new drafting rule takes effect without code."""

from __future__ import annotations

import shutil

import pytest

from hypotheses.refine import incident_draft
from policies.errors import PolicyError
from policies.loader import load_policy
from tests.hypotheses.seed import NOW
from tests.support import ROOT


def test_the_shipped_policy_routes_hypotheses_to_one_local_provider():
    policy = load_policy(ROOT / "policies")
    assert policy.routing.routes["hypothesis"].chain == ["local"]
    local = policy.routing.providers["local"]
    assert (local.host, local.privacy) == ("http://127.0.0.1:11434", "local")
    assert len(policy.hypotheses.rules) >= 8


@pytest.mark.parametrize("file, text, problem", [
    ("routing.yaml", "providers:\n  local: {host: 'http://h:1', model: m, privacy: local}\n"
                     "routes:\n  hypothesis:\n    chain: [local, cloud]\n",
     "routing.yaml: line 5, routes.hypothesis.chain[1]: names provider 'cloud', which is not under providers"),
    ("routing.yaml", "providers:\n  local: {host: 'http://h:1', model: m, privacy: local}\n"
                     "routes:\n  hypothesis:\n    chain: [local]\n    chain_by_category: {latency: [local, fast]}\n",
     "routing.yaml: line 6, routes.hypothesis.chain_by_category.latency[1]: names provider 'fast', which is not "
     "under providers"),
    ("routing.yaml", "providers:\n  local: {host: 'http://h:1', model: m, privacy: secret}\n",
     "routing.yaml: line 2, providers.local.privacy: Input should be 'local' or 'remote'"),
    ("routing.yaml", "providers:\n  local: {host: 'ftp://h', model: m, privacy: local}\n",
     "routing.yaml: line 2, providers.local.host: not an http(s) URL: 'ftp://h'"),
    ("routing.yaml", "routes:\n  hypothesis: {chain: [], budget: 3}\n",
     "routing.yaml: line 2, routes.hypothesis.budget: unknown key"),
    ("hypotheses.yaml", "rules:\n  - name: r\n    title: '${nope.x} is down'\n    explanation: e\n"
                        "    confidence: 0.5\n    when: [{evidence: finding}]\n",
     "hypotheses.yaml: line 2, rules[0]: template '${nope.x} is down' uses ${nope}: use incident, service, title, "
     "window"),
    ("hypotheses.yaml", "rules:\n  - name: r\n    title: t\n    explanation: e\n    confidence: 1.5\n"
                        "    when: [{evidence: finding, match: ['category=~(']}]\n",
     "hypotheses.yaml: line 5, rules[0].confidence: Input should be less than or equal to 1"),
])
def test_mistakes_are_reported_with_file_line_and_path(tmp_path, file, text, problem):
    (tmp_path / file).write_text(text)
    with pytest.raises(PolicyError) as error:
        load_policy(tmp_path)
    assert any(str(p).endswith(problem) for p in error.value.problems), error.value.problems


def test_a_new_drafting_rule_needs_no_code(tmp_path, incident):
    engine, store, incident_id = incident
    shutil.copy(ROOT / "policies" / "hypotheses.yaml", tmp_path)
    with open(tmp_path / "hypotheses.yaml", "a") as rules:
        rules.write("""
  - name: shop-503-after-release
    title: "The new release of ${service} returns ${http.status}"
    explanation: "${http.target} answered ${http.status}; the shop team ships on Mondays."
    confidence: 0.9
    when:
      - {evidence: probe, match: [status=503, target=~shop-.*], bind: http}
      - {evidence: series, match: [name=probe_success, shift=down]}
    checks:
      - {kind: incidents, title: "Incidents of ${service}", service: "${service}"}
""")
    _, draft = incident_draft(engine, store, load_policy(tmp_path), incident_id, NOW)
    top = draft.hypotheses[0]
    assert (top.id, top.title, top.confidence) == ("shop-503-after-release", "The new release of shop returns 503", 0.9)
    assert {e.split(":")[0] for e in top.evidence_ids} == {"evidence", "series"}
    assert [c.params for c in top.checks] == [{"service": "shop"}]
