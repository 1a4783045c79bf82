"""Plain-text renderings shared by the CLI and the pages."""

from __future__ import annotations

from datetime import datetime

from ledger.queries import SilenceItem
from ledger.tables import Silence
from policies.selectors import matcher_from_dict


def incident_table(rows) -> str:
    header = f"{'ID':>5}  {'STATE':<11} {'SEV':<8} {'SERVICE':<12} {'FINDINGS':>8}  {'UPDATED (UTC)':<19}  TITLE"
    lines = [header]
    for r in rows:
        lines.append(f"{r.id:>5}  {r.state:<11} {r.severity:<8} {r.service:<12} {r.finding_count:>8}  "
                     f"{r.updated_at:%Y-%m-%d %H:%M:%S}  {r.title}")
    if not rows:
        lines.append("(no incidents)")
    return "\n".join(lines)


def channel_table(rows) -> str:
    lines = [f"{'NAME':<16} {'KIND':<9} {'SENT':>5} {'FAILED':>6}  {'ROUTES':<24} DESTINATION"]
    for r in rows:
        lines.append(f"{r.name:<16} {r.kind:<9} {r.sent:>5} {r.failed:>6}  {', '.join(r.routes) or '-':<24} "
                     f"{r.destination}" + (f"\n{'':<16} last error: {r.last_error}" if r.last_error else ""))
    if not rows:
        lines.append("(no channels: notifications reach the in-app inbox only; see docs/notifications.md)")
    return "\n".join(lines)


def notification_table(rows) -> str:
    lines = [f"{'ID':>5}  {'AT (UTC)':<19}  {'CHANNEL':<14} {'CATEGORY':<10} {'STATUS':<8} {'TRIES':>5} "
             f"{'INCIDENT':>8}  TITLE / ERROR"]
    for r in rows:
        incident = f"#{r.incident_id}" if r.incident_id else "-"
        lines.append(f"{r.id:>5}  {r.at:%Y-%m-%d %H:%M:%S}  {r.channel:<14} {r.category:<10} {r.status:<8} "
                     f"{r.attempts:>5} {incident:>8}  {r.title}")
        if r.error:
            lines.append(f"{'':>7}error: {r.error}")
        if r.interrupted:
            lines.append(f"{'':>7}{r.interrupted} attempt(s) cut short by a stop: it may have been delivered twice")
    if not rows:
        lines.append("(no notifications)")
    return "\n".join(lines)


def silence_table(rows: list[SilenceItem], now: datetime) -> str:
    return aligned(["ID", "KIND", "STATUS", "MATCHERS", "WHEN", "AUTHOR: COMMENT"],
                   [[r.id, r.kind, r.status, f"{{{matchers_text(r.matchers)}}}", describe_when(r, now),
                     f"{r.author}: {r.comment}"] for r in rows], empty="(no silences)")


def finding_table(rows) -> str:
    """An incident's findings: what fired, how often, whether it still fires (and why it is kept silent)."""
    return aligned(["ID", "SEV", "RULE", "TARGET", "FIRST SEEN (UTC)", "SEEN", "NOW", "SUMMARY"],
                   [[r.id, r.severity, r.rule, r.target, f"{r.first_seen:%Y-%m-%d %H:%M:%S}", r.occurrences,
                     ("recovered" if r.recovered_at else "firing") + (f" ({r.suppressed_by})" if r.suppressed_by else ""),
                     r.summary] for r in rows], empty="(no findings)")


def aligned(header: list[str], rows: list[list], empty: str) -> str:
    """Columns as wide as their widest cell (numbers to the right), two spaces apart; the last one free."""
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    numeric = [all(isinstance(row[i], int) for row in rows) and bool(rows) for i in range(len(header))]
    lines = ["  ".join([c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
                       + [row[-1]]) for row in cells]
    return "\n".join(lines + ([] if rows else [empty]))


def matchers_text(matchers: list[dict]) -> str:
    return ", ".join(str(matcher_from_dict(m)) for m in matchers)


def schedule(rule: dict) -> str:
    """A recurrence in words: weekly on sat, sun at 02:00 Europe/Berlin for 4h."""
    days = f" on {', '.join(rule['days'])}" if rule["days"] else ""
    return f"{rule['every']}{days} at {rule['at']} {rule['timezone']} for {span(rule['duration_seconds'])}"


def describe_when(silence: Silence | SilenceItem, now: datetime) -> str:
    """When it is in force, in UTC and relative to ``now``: its schedule if it recurs, its start
    if that is to come, and its end."""
    end = silence.expired_at or silence.ends_at
    parts = [schedule(silence.recurrence)] if silence.recurrence else []
    if silence.starts_at > now:
        parts.append(f"from {moment(silence.starts_at, now)}")
    parts.append(f"until {moment(end, now)}" if end else "no end")
    return ", ".join(parts)


def moment(when: datetime, now: datetime) -> str:
    """Absolute and relative: 2026-03-01 14:00:00 UTC (in 2h)."""
    return f"{when:%Y-%m-%d %H:%M:%S} UTC ({relative(when, now)})"


def relative(when: datetime, now: datetime) -> str:
    """``when`` seen from ``now``: in 1h 50m, 12m ago, now."""
    seconds = (when - now).total_seconds()
    if abs(seconds) < 60:
        return "now"
    return f"in {span(seconds)}" if seconds > 0 else f"{span(-seconds)} ago"


def span(seconds: float) -> str:
    """The two largest units of a duration: 1d 2h, 2h 5m, 45m, 30s."""
    minutes = round(seconds / 60)
    if not minutes:
        return f"{round(seconds)}s"
    parts = [(minutes // 1440, "d"), (minutes // 60 % 24, "h"), (minutes % 60, "m")]
    return " ".join([f"{n}{unit}" for n, unit in parts if n][:2])
