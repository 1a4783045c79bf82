"""A real worker probing hostile targets beside a healthy one: every hostile run becomes a
failed observation with its reason, the healthy target keeps its schedule, and the worker's
memory stays bounded while a target streams a 2 GiB body at it."""

from __future__ import annotations

import pytest
from sqlmodel import select

from ledger.db import open_ledger, read_session, sqlite_url
from ledger.tables import Observation
from tests.hostile import (
    close_mid_response,
    endless_body,
    garbage,
    never_answer,
    one_byte_per_tick,
)
from tests.support import wait_until

pytestmark = pytest.mark.integration

HOSTILE = {
    "never-answers": (never_answer, "timed out after 1s"),
    "trickles": (one_byte_per_tick, "timed out after 1s"),
    "floods": (endless_body, None),  # read up to max_body_bytes, then the checks decide
    "cuts-off": (close_mid_response, "connection broken"),
    "talks-garbage": (garbage, "connection broken"),
}
MEMORY_CEILING_KB = 400_000  # the worker idles near 80 MB; a body read whole would be 2 GiB


def resident_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_hostile_targets_fail_cleanly_and_the_healthy_one_keeps_its_schedule(worker, raw_server, demo_target):
    w = worker(interval="1s")
    targets = [f"  - {{name: healthy, kind: http, service: shop, url: '{demo_target.url}', interval: 1s, "
               f"timeout: 1s, conditions: ['[STATUS] == 200']}}"]
    for name, (handler, _) in HOSTILE.items():
        url = raw_server(handler, read_request=True).url
        targets.append(f"  - {{name: {name}, kind: http, service: hostile, url: '{url}', interval: 1s, "
                       f"timeout: 1s, conditions: ['[STATUS] == 200', '[BODY] not-contains y']}}")
    (w.policy / "targets.yaml").write_text("targets:\n" + "\n".join(targets) + "\n")
    w.start()
    engine = open_ledger(sqlite_url(w.data))

    def observations() -> list[Observation]:
        with read_session(engine) as session:
            return session.exec(select(Observation)).all()

    peak = 0

    def enough_runs():
        nonlocal peak
        peak = max(peak, resident_kb(w.proc.pid))
        seen = observations()
        per_target = {name: sum(o.target == name for o in seen) for name in ("healthy", *HOSTILE)}
        return all(count >= 3 for count in per_target.values()) and per_target["healthy"] >= 8

    wait_until(enough_runs, "every target to be probed several times", attempts=600)
    seen = observations()
    assert all(o.ok for o in seen if o.target == "healthy")
    for name, (_, reason) in HOSTILE.items():
        runs = [o for o in seen if o.target == name]
        assert not any(o.ok for o in runs), name
        if reason:
            assert all(o.error.startswith(reason) for o in runs), (name, {o.error for o in runs})
    floods = [o for o in seen if o.target == "floods"]
    assert all(o.values["BODY_TRUNCATED"] and "[BODY] not-contains y -> got" in o.error for o in floods)
    assert peak < MEMORY_CEILING_KB, f"worker grew to {peak} kB"
    assert w.metric('workbench_cycle_errors_total') == 0
