"""`workbench notebook`: the incident review notebook with its parameters filled in (run and
exported to HTML on request), and JupyterLab on the notebooks folder."""

from __future__ import annotations

from pathlib import Path

from app import notebooks
from app.cli.types import positive_integer, writing
from app.settings import Paths
from ledger import queries


def register(sub) -> None:
    p = sub.add_parser("notebook", help="review notebooks: write one for an incident, or open JupyterLab")
    nb_sub = p.add_subparsers(title="notebook commands", metavar="COMMAND", required=True)
    inc = nb_sub.add_parser("incident", help="write the review notebook of one incident, its parameters filled in")
    inc.add_argument("id", type=positive_integer)
    inc.add_argument("--output", metavar="PATH", help="where to write it (default: incident-ID-review.ipynb here)")
    inc.add_argument("--execute", action="store_true",
                     help="also run it: writes PATH.executed.ipynb and PATH.html beside it")
    inc.set_defaults(handler=cmd_incident)
    lab = nb_sub.add_parser("open", help="start JupyterLab on 127.0.0.1 on the notebooks folder (notebook extra)")
    lab.add_argument("--port", type=positive_integer, default=notebooks.LAB_PORT)
    lab.set_defaults(handler=cmd_open)


def cmd_incident(args, paths: Paths) -> int:
    queries.incident_detail(paths.ledger(), args.id, observations=0)  # no such incident: say so before writing
    output = Path(args.output or f"incident-{args.id}-review.ipynb")
    with writing(output):
        for path in notebooks.write_review(paths, args.id, output, run=args.execute):
            print(f"wrote {path}")
    return 0


def cmd_open(args, paths: Paths) -> int:
    print(f"JupyterLab on http://127.0.0.1:{args.port}/lab (Ctrl-C stops it)", flush=True)
    notebooks.open_lab(paths, args.port)
    return 0
