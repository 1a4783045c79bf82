"""The shipped policy (policies/) on simulated faults, in simulated time: the probe cycle and the
detection cycle run as the worker runs them, each on its own interval, over a real ledger and
samples store. One cause, one incident; nothing fires after the fault is gone; no relapse."""

from datetime import UTC, datetime, timedelta

from detectors.cycle import run_rules
from ledger import queries
from ledger.samples import SampleStore
from policies.loader import load_policy
from probes.context import observe
from probes.cycle import probe_samples, record
from tests.support import ROOT

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class Simulation:
    """Probe runs of one target at its interval and detection cycles at the evaluation interval,
    in time order, from T0; ``measure(at)`` gives a probe run's duration (ms) and values."""

    def __init__(self, engine, store: SampleStore, policy, target: str):
        self.engine, self.store, self.policy = engine, store, policy
        self.target = policy.target(target)
        self.next_probe = self.next_rules = T0

    def run_until(self, until: datetime, measure) -> None:
        every = self.policy.rules.noise.evaluation_interval
        while min(self.next_probe, self.next_rules) < until:
            if self.next_probe <= self.next_rules:
                at = self.next_probe
                duration, values, status = measure(at)
                result = observe(self.target, at, duration, values, status=status)
                record(self.engine, self.target, result, now=lambda at=at: at)
                self.store.append(probe_samples(self.target, result))
                self.store.flush()
                self.next_probe += self.target.interval
            else:
                run_rules(self.engine, self.store, self.policy, self.next_rules)
                self.next_rules += every


def test_the_demo_latency_fault_opens_one_incident_that_resolves_when_it_is_off_without_relapse(engine, tmp_path):
    policy = load_policy(ROOT / "policies")
    demo = Simulation(engine, SampleStore(tmp_path / "samples"), policy, "demo-web")
    slow = lambda at: (1503.0, {"STATUS": 200, "RESPONSE_TIME": 1503.0}, 200)  # noqa: E731 - 1.5 s answers
    fast = lambda at: (2.4, {"STATUS": 200, "RESPONSE_TIME": 2.4}, 200)  # noqa: E731
    demo.run_until(T0 + timedelta(minutes=2), fast)
    demo.run_until(T0 + timedelta(minutes=4), slow)
    off = T0 + timedelta(minutes=4)
    demo.run_until(off + timedelta(minutes=5), fast)

    [incident] = queries.list_incidents(engine)
    detail = queries.incident_detail(engine, incident.id)

    assert detail.state == "resolved"
    assert sorted(f.rule for f in detail.findings) == ["probe:http", "rule:demo-errors", "rule:demo-latency"]
    assert [f.rule for f in detail.findings if f.first_seen >= off] == [], "nothing fires once the fault is off"
    assert not [t for t in detail.timeline if t.message == "signal failed again while recovering"]
    # resolved within 45 s of simulated time: the probe's 3 good runs, the rules' windows
    # emptying of slow runs, and their keep_firing_for
    assert detail.resolved_at - off <= timedelta(seconds=45), detail.resolved_at - off


def test_the_default_host_saturation_rule_folds_into_the_host_probes_incident(engine, tmp_path):
    """One cause, one incident: the host target fails on CPU for minutes, and the host-saturation
    rule, firing on the same CPU, joins that incident instead of opening another."""
    policy = load_policy(ROOT / "policies")
    host = Simulation(engine, SampleStore(tmp_path / "samples"), policy, "localhost")
    host.run_until(T0 + timedelta(minutes=8), lambda at: (250.0, {"CPU": 99.0, "MEMORY": 40.0, "DISK": 50.0}, None))

    [incident] = queries.list_incidents(engine)
    assert incident.correlation_key == "host/localhost"
    assert sorted(f.rule for f in queries.incident_detail(engine, incident.id).findings) == [
        "probe:host", "rule:host-saturation"]
