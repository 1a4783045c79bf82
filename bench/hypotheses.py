#!/usr/bin/env python3
"""How often the hypotheses put the true cause first: the labelled case set of
tests/hypotheses/cases (each an incident's evidence, written into a real ledger and samples store
the way the worker writes it, and its true cause), drafted by the shipped hypothesis rules; with
``--ollama``, refined by that model through the routing policy too.

    .venv/bin/python bench/hypotheses.py [--ollama http://127.0.0.1:11434 --model qwen2.5:3b]

Prints each case's true cause and where the draft (and the refinement) ranked it, then top-1 and
top-3 accuracy. Everything is written under one temporary folder, removed on exit.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypotheses.refine import hypotheses_view, incident_draft, request, run_refinement  # noqa: E402
from ledger.db import open_ledger, sqlite_url  # noqa: E402
from ledger.samples import SampleStore  # noqa: E402
from policies.loader import load_policy  # noqa: E402
from tests.hypotheses.seed import NOW, load_case, seed  # noqa: E402

CASES = ROOT / "tests" / "hypotheses" / "cases"


def policy_dir(folder: Path, ollama: str | None, model: str | None) -> Path:
    """The shipped hypothesis rules; with a model, a route to it for the hypothesis task."""
    folder.mkdir()
    shutil.copy(ROOT / "policies" / "hypotheses.yaml", folder)
    if ollama:
        (folder / "routing.yaml").write_text(yaml.safe_dump({
            "providers": {"bench": {"host": ollama, "model": model, "privacy": "local", "timeout": "120s"}},
            "routes": {"hypothesis": {"chain": ["bench"], "max_attempts": 2}}}))
    return folder


def rank(ids: list[str], cause: str) -> int | None:
    return ids.index(cause) + 1 if cause in ids else None


def run_case(case_dir: Path, work: Path, ollama: str | None, model: str | None) -> tuple[str, int | None, int | None]:
    case, expected = load_case(case_dir)
    engine = open_ledger(sqlite_url(work / "data"))
    try:
        store = SampleStore(work / "samples", now=lambda: NOW)
        incident_id = seed(case, engine, store)
        policy = load_policy(policy_dir(work / "policy", ollama, model))
        _, draft = incident_draft(engine, store, policy, incident_id, NOW)
        drafted = rank([h.id for h in draft.hypotheses], expected["cause"])
        refined = None
        if ollama:
            run = run_refinement(engine, store, policy, request(engine, incident_id, "bench", NOW), [],
                                 now=lambda: NOW)
            view = hypotheses_view(engine, store, policy, incident_id, NOW)
            if view.refinement is not None:
                refined = rank([h.id for h in view.refinement.hypotheses], expected["cause"])
            else:
                print(f"  {case_dir.name}: refinement failed: {run.reason}")
        return expected["cause"], drafted, refined
    finally:
        engine.dispose()


def accuracy(ranks: list[int | None], within: int) -> str:
    hits = sum(1 for r in ranks if r is not None and r <= within)
    return f"{hits}/{len(ranks)} ({hits / len(ranks):.0%})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ollama", help="an Ollama server to refine with (default: the draft only)")
    parser.add_argument("--model", default="qwen2.5:3b", help="the model on it")
    args = parser.parse_args()
    cases = sorted(p for p in CASES.iterdir() if (p / "evidence.yaml").exists())
    drafts, refinements = [], []
    print(f"{len(cases)} cases from {CASES.relative_to(ROOT)}; rank of the true cause (- : not proposed)")
    width = max(len(p.name) for p in cases)
    print(f"  {'case':<{width}} {'true cause':<22} {'draft':>5}" + (f" {'model':>5}" if args.ollama else ""))
    with tempfile.TemporaryDirectory(prefix="bench-hypotheses-") as tmp:
        for n, case_dir in enumerate(cases):
            work = Path(tmp) / str(n)
            work.mkdir()
            cause, drafted, refined = run_case(case_dir, work, args.ollama, args.model)
            drafts.append(drafted)
            refinements.append(refined)
            shown = f"  {case_dir.name:<{width}} {cause:<22} {drafted or '-':>5}"
            print(shown + (f" {refined or '-':>5}" if args.ollama else ""))
    print(f"\n  draft: top-1 {accuracy(drafts, 1)}, top-3 {accuracy(drafts, 3)}")
    if args.ollama:
        print(f"  model ({args.model}): top-1 {accuracy(refinements, 1)}, top-3 {accuracy(refinements, 3)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
