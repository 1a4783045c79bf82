"""``workbench workers list``: the fleet's workers (settings.yaml ``fleet:``), from the ledger."""

from __future__ import annotations

from app.cli.output import add_format, print_rows
from app.settings import Paths
from ledger import queries
from ledger.db import utcnow
from policies.loader import load_policy
from policies.schema import FleetSettings


def register(sub) -> None:
    p = sub.add_parser("workers", help="the fleet's workers: location, host, heartbeat, buckets, probes/s, lag")
    workers = p.add_subparsers(title="worker commands", metavar="COMMAND", required=True)
    ls = workers.add_parser("list", help="every worker that joined the fleet: live, silent (no heartbeat for "
                                         "fleet.dead_after) or stopped")
    add_format(ls)
    ls.set_defaults(handler=cmd_list)


def cmd_list(args, paths: Paths) -> int:
    fleet = load_policy(paths.policy_dir).settings.fleet or FleetSettings()
    now = utcnow()
    rows = queries.fleet_workers(paths.ledger(), now, fleet.dead_after)
    print_rows(rows, args.format, lambda rows: "\n".join(
        [f"{'NAME':<20} {'LOCATION':<10} {'HOST':<16} {'STATE':<7} {'HEARTBEAT':>9} {'HOUSE':<5} {'BUCKETS':>7} "
         f"{'TARGETS':>7} {'PROBES/S':>8} {'LAG P99':>8}  POLICY"]
        + [f"{r.name:<20} {r.location:<10} {r.host:<16} {_state(r):<7} "
           f"{f'{(now - r.heartbeat_at).total_seconds():.0f}s ago':>9} {'yes' if r.house else '':<5} "
           f"{r.buckets:>7} {r.targets:>7} {r.probes_per_second:>8.1f} {f'{r.lag_p99_seconds:.2f}s':>8}  "
           f"{r.policy_digest}" for r in rows]
        + ([] if rows else ["(no workers: fleet: in settings.yaml and a PostgreSQL ledger, docs/fleet.md)"])))
    return 0


def _state(row: queries.FleetWorkerItem) -> str:
    return "stopped" if row.stopped_at else "silent" if row.silent else "live"
