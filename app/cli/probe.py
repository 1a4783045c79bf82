"""`workbench probe run --once`: every probe once, recorded, then the detectors; for cron, and with
--exit-status for wrappers that want to know whether any probe failed."""

from __future__ import annotations

import asyncio

from app.settings import Paths
from ledger.samples import SampleStore
from policies.errors import WorkbenchError
from policies.loader import load_policy


def register(sub) -> None:
    p = sub.add_parser("probe", help="probe runs outside the worker (cron)")
    probe_sub = p.add_subparsers(title="probe commands", metavar="COMMAND", required=True)
    r = probe_sub.add_parser("run", help="run every probe once, record it and evaluate detectors")
    r.add_argument("--once", action="store_true", required=True, help="run once and exit (for cron)")
    r.add_argument("--target", metavar="NAME", help="only this target")
    r.add_argument("--exit-status", action="store_true",
                   help="exit with status 1 when any probe failed (default: 0 whatever the probes found)")
    r.set_defaults(handler=cmd_probe_run)


def cmd_probe_run(args, paths: Paths) -> int:
    from detectors.cycle import run_rules  # the probe kinds' clients: only for this command
    from probes.context import ProbeClient, ProbeContext
    from probes.cycle import run_target

    policy = load_policy(paths.policy_dir)
    targets = [t for t in policy.targets if t.enabled]
    if args.target:
        targets = [t for t in policy.targets if t.name == args.target]
        if not targets:
            raise WorkbenchError(f"no target named {args.target!r} in {paths.policy_dir}")
    engine = paths.ledger()
    store = SampleStore(paths.samples_dir)

    async def run_all():
        ctx = ProbeContext(ProbeClient(policy.settings.max_connections),
                           max_body_bytes=policy.settings.max_body_bytes, engine=engine)
        try:
            return await asyncio.gather(*(run_target(engine, t, ctx, store) for t in targets))
        finally:
            await ctx.aclose()

    outcomes = asyncio.run(run_all())
    store.flush()
    for target, outcome in zip(targets, outcomes):
        obs = outcome.observation
        print(f"{target.name:<24} {'ok' if obs.ok else 'FAIL':<4} {obs.duration_ms:8.1f} ms  "
              f"{outcome.signal.value}{': ' + obs.error if obs.error else ''}")
    detected = run_rules(engine, store, policy)
    changed = {k: v for k, v in detected.signals.items() if k not in ("none", "still_firing")}
    print(f"rules: {detected.rules} evaluated over {detected.samples:,} samples"
          f"{', ' + ', '.join(f'{n} {k}' for k, n in changed.items()) if changed else ''}"
          f"{f', {detected.released} suppressed findings released' if detected.released else ''}")
    failed = any(not outcome.observation.ok for outcome in outcomes)
    return 1 if args.exit_status and failed else 0
