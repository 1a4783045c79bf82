"""`workbench samples import`: history for backtests, from a Prometheus range query or its saved
JSON answer, into the samples store."""

from __future__ import annotations

from datetime import timedelta

from app.cli.types import parse_since, read_import
from app.settings import Paths
from learning.imports import import_samples, samples_from_file, samples_from_prometheus
from ledger import db
from ledger.samples import SampleStore
from policies.errors import WorkbenchError, one_line
from policies.loader import load_policy
from policies.schema import PrometheusTarget, parse_duration

DEFAULT_NAME = "import"


def register(sub) -> None:
    p = sub.add_parser("samples", help="the samples store: import history for backtests")
    s_sub = p.add_subparsers(title="samples commands", metavar="COMMAND", required=True)
    imp = s_sub.add_parser("import", help="load a Prometheus range query's series into the samples store")
    imp.add_argument("--prometheus", metavar="URL", help="the Prometheus to ask (with --query and --since)")
    imp.add_argument("--query", metavar="Q", help="PromQL")
    imp.add_argument("--since", metavar="D", help="this long ago (7d, 24h) or an ISO 8601 time; to now")
    imp.add_argument("--step", metavar="D", default="1m", help="resolution (default 1m)")
    imp.add_argument("--file", metavar="F.json", help="a saved /api/v1/query_range answer, instead of asking")
    imp.add_argument("--name", metavar="N", help="label the samples as the prometheus target named N does (its "
                     f"service and metric when the policy has it); default {DEFAULT_NAME!r}")
    imp.set_defaults(handler=cmd_import)


def cmd_import(args, paths: Paths) -> int:
    if bool(args.file) == bool(args.prometheus):
        raise WorkbenchError("give --prometheus URL --query Q --since D, or --file F.json")
    name = args.name or DEFAULT_NAME
    if args.file:
        path, data = read_import(args.file)
        series = samples_from_file(data, one_line(str(path)))
    else:
        if not args.query or not args.since:
            raise WorkbenchError("--prometheus needs --query and --since")
        now = db.utcnow()
        try:
            step = parse_duration(args.step)
        except ValueError as exc:
            raise WorkbenchError(f"--step {args.step!r}: {exc}") from None
        if step < timedelta(seconds=1):
            raise WorkbenchError(f"--step {args.step!r}: at least 1s")
        series = samples_from_prometheus(args.prometheus, args.query, parse_since(args.since, now), now, step)
    target = next((t for t in load_policy(paths.policy_dir).targets
                   if t.name == name and isinstance(t, PrometheusTarget)), None)
    report = import_samples(SampleStore(paths.samples_dir), series, name, target.service if target else name,
                            target.metric if target else None)
    print(f"imported {report.written:,} samples of {report.series:,} series as target {name!r} "
          f"({report.samples - report.written:,} already in the store)")
    return 0
