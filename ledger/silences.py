"""When a silence or maintenance window is in force, and whether it covers a finding's labels.

A one-off silence is in force from ``starts_at`` until ``ends_at`` (or until an operator
expires it). A recurring maintenance window is in force inside each occurrence: every day, or
on the given weekdays, from a local wall-clock time (in its own time zone, so "02:00
Europe/Berlin" stays 02:00 across daylight-saving changes) for a duration, and only between
``starts_at`` and ``ends_at``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.tables import Silence
from policies.selectors import matcher_from_dict

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EXPIRING_WITHIN = timedelta(minutes=15)


def recurrence(every: str, at: str, duration: timedelta, timezone: str, days: list[str] | None = None) -> dict:
    """A validated recurrence for a maintenance window; ValueError says what is wrong."""
    if every not in ("daily", "weekly"):
        raise ValueError(f"every must be daily or weekly, got {every!r}")
    try:
        time.fromisoformat(at)
    except ValueError:
        raise ValueError(f"at must be a local time HH:MM, got {at!r}") from None
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r} (use e.g. UTC or Europe/Berlin)") from None
    days = [d.lower()[:3] for d in (days or [])]
    if bad := [d for d in days if d not in WEEKDAYS]:
        raise ValueError(f"unknown weekday {bad[0]!r} (use {', '.join(WEEKDAYS)})")
    if every == "weekly" and not days:
        raise ValueError("a weekly window needs its days (e.g. sat,sun)")
    limit = timedelta(days=1 if every == "daily" else 7)
    if not timedelta(0) < duration <= limit:
        raise ValueError(f"a {every} window lasts more than 0 and at most {limit.days} day(s)")
    return {"every": every, "at": at, "days": days if every == "weekly" else [],
            "duration_seconds": duration.total_seconds(), "timezone": timezone}


def occurrence_at(silence: Silence, now: datetime) -> tuple[datetime, datetime] | None:
    """The span of the silence in force at ``now`` (start, end), or None."""
    if silence.expired_at is not None and silence.expired_at <= now:
        return None
    if now < silence.starts_at or (silence.ends_at is not None and now >= silence.ends_at):
        return None
    if not silence.recurrence:
        return silence.starts_at, silence.ends_at
    rule = silence.recurrence
    zone = ZoneInfo(rule["timezone"])
    duration = timedelta(seconds=rule["duration_seconds"])
    local = now.astimezone(zone)
    for back in range(duration.days + 2):
        day = local.date() - timedelta(days=back)
        if rule["every"] == "weekly" and WEEKDAYS[day.weekday()] not in rule["days"]:
            continue
        # In UTC, so that the duration is elapsed time even across a daylight-saving change
        start = datetime.combine(day, time.fromisoformat(rule["at"]), tzinfo=zone).astimezone(UTC)
        if start <= now < start + duration:
            return start, start + duration
    return None


def occurrences(silence: Silence, since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """The spans in which the silence is in force that overlap [since, until), clipped to it."""
    low = max(since, silence.starts_at)
    high = min([until, *(t for t in (silence.ends_at, silence.expired_at) if t is not None)])
    if low >= high:
        return []
    if not silence.recurrence:
        return [(low, high)]
    rule = silence.recurrence
    zone = ZoneInfo(rule["timezone"])
    duration = timedelta(seconds=rule["duration_seconds"])
    spans, day = [], (low - duration).astimezone(zone).date()
    while (start := datetime.combine(day, time.fromisoformat(rule["at"]), tzinfo=zone).astimezone(UTC)) < high:
        if (rule["every"] == "daily" or WEEKDAYS[day.weekday()] in rule["days"]) and start + duration > low:
            spans.append((max(start, low), min(start + duration, high)))
        day += timedelta(days=1)
    return spans


def in_force(silence: Silence, now: datetime) -> bool:
    return occurrence_at(silence, now) is not None


def covers(silence: Silence, labels: Mapping[str, str]) -> bool:
    return all(matcher_from_dict(m).matches(labels) for m in silence.matchers)


def expiring(silence: Silence, now: datetime, within: timedelta = EXPIRING_WITHIN) -> bool:
    """In force now and ending (for good, not just this occurrence) within ``within``."""
    end = silence.expired_at or silence.ends_at
    return in_force(silence, now) and end is not None and end - now <= within


def status(silence: Silence, now: datetime) -> str:
    """active | expiring | pending (starts later, or between occurrences) | expired"""
    end = silence.expired_at or silence.ends_at
    if end is not None and end <= now:
        return "expired"
    if not in_force(silence, now):
        return "pending"
    return "expiring" if expiring(silence, now) else "active"
