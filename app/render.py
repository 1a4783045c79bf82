"""Plain-text renderings shared by the CLI."""

from __future__ import annotations


def incident_table(rows) -> str:
    header = f"{'ID':>5}  {'STATE':<11} {'SEV':<8} {'SERVICE':<12} {'FINDINGS':>8}  {'UPDATED (UTC)':<19}  TITLE"
    lines = [header]
    for r in rows:
        lines.append(f"{r.id:>5}  {r.state:<11} {r.severity:<8} {r.service:<12} {r.finding_count:>8}  "
                     f"{r.updated_at:%Y-%m-%d %H:%M:%S}  {r.title}")
    if not rows:
        lines.append("(no incidents)")
    return "\n".join(lines)
