"""What onboarding recognises in a service's series names, and writing it into a policy that
keeps the operator's comments, refuses a second time, and rejects what would not load. The real
Prometheus path: tests/integration/test_onboarding.py."""

from __future__ import annotations

import shutil

import pytest

from app.cli import main
from learning.onboarding import Discovered, plan
from policies.errors import WorkbenchError
from policies.loader import load_policy
from tests.support import ROOT


def found(**labels: set[str]) -> Discovered:
    return Discovered(labels={name: set(keys) for name, keys in labels.items()})


def test_a_status_label_a_failed_counter_a_utilization_gauge_and_nothing_known():
    by_status = plan("api", "http://prom:9090", '{job="api"}', found(grpc_requests_total={"status", "method"}))
    assert by_status.targets[1]["query"] == (
        'sum(rate(grpc_requests_total{job="api", status=~"5.."}[1m])) or vector(0)')
    failed = plan("api", "http://prom:9090", '{job="api"}', found(api_requests_total=set(),
                                                                  api_requests_failed_total=set()))
    assert failed.targets[1]["query"] == 'sum(rate(api_requests_failed_total{job="api"}[1m]))'
    assert [r["name"] for r in failed.rules] == ["api-errors"] and failed.signals["errors"] == "api_errors_per_second"
    gauge = plan("api", "http://prom:9090", '{job="api"}', found(api_worker_utilization=set(),
                                                                 api_disk_utilization_percent=set()))
    assert gauge.signals == {"saturation": [{"series": "api_disk_utilization_percent", "unit": "percent"},
                                            {"series": "api_worker_utilization", "unit": "ratio"}]}
    assert [rule["above"] for rule in gauge.rules] == [90, 0.9]
    assert (gauge.rules[0]["window"], gauge.rules[0]["for"]) == ("2m", "1m")  # 8 and 4 runs of 15 s
    with pytest.raises(WorkbenchError, match=r"nothing recognised among 2 series names \(go_gc_seconds, "
                                             r"process_open_fds\)"):
        plan("api", "http://prom:9090", '{job="api"}', found(go_gc_seconds=set(), process_open_fds=set()))


def test_without_prometheus_an_http_probe_is_written_into_the_policy_keeping_its_comments(tmp_path, capsys):
    policy = tmp_path / "policy"
    shutil.copytree(ROOT / "policies", policy)
    args = ["--policy", str(policy), "--data", str(tmp_path / "var"), "services", "add", "shop", "--url",
            "http://127.0.0.1:9/health", "--yes"]
    assert main(args) == 0
    assert "Written: 1 target(s), 0 rule(s)." in capsys.readouterr().out
    text = (policy / "targets.yaml").read_text()
    assert text.startswith("# What the workbench watches.") and "  - name: shop-web\n" in text
    assert load_policy(policy).target("shop-web").conditions == ["[STATUS] < 500", "[RESPONSE_TIME] < 1000"]
    assert main(args) == 1 and "targets: shop-web already there" in capsys.readouterr().err
    assert main([*args[:5], "add", "Bad Name", "--url", "http://x", "--yes"]) == 1
    assert "not a service name" in capsys.readouterr().err
    assert main([*args[:5], "add", "api", "--prometheus", "http://127.0.0.1:9", "--yes"]) == 1
    assert "--prometheus needs --selector" in capsys.readouterr().err
