"""Silences and maintenance windows: when one is in force and what status it has (one-off,
daily across midnight, weekly days, a local time across Europe/Berlin's daylight-saving changes
of 2026), which labels it covers; and, through the repository on SQLite and PostgreSQL, that a
covered finding is kept and marked, then released into an incident when the cover ends while
it still fires."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from ledger import queries
from ledger.db import read_session, write_session
from ledger.repo import incidents, silences
from ledger.silences import covers, in_force, recurrence, status
from ledger.tables import Finding, Silence
from policies.selectors import parse_matcher

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # a Sunday
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def at(text: str) -> datetime:
    """A moment in UTC: at("2026-03-29 01:30")."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def silence(starts_at: datetime = T0, ends_at: datetime | None = T0 + 2 * HOUR, *, rule: dict | None = None,
            expired_at: datetime | None = None, matchers: list[str] = ("service=shop",)) -> Silence:
    return Silence(matchers=[parse_matcher(m).as_dict() for m in matchers], starts_at=starts_at, ends_at=ends_at,
                   recurrence=rule, expired_at=expired_at, author="alice", comment="test", created_at=starts_at)


ONE_OFF = silence()
EXPIRED_EARLY = silence(expired_at=T0 + 30 * MINUTE)
LATER = silence(T0 + 24 * HOUR, T0 + 26 * HOUR)
NIGHTLY = silence(ends_at=None, rule=recurrence("daily", "22:00", 4 * HOUR, "UTC"))
WEEKEND = silence(ends_at=None, rule=recurrence("weekly", "23:00", 2 * HOUR, "UTC", ["sat", "sun"]))
BERLIN_2AM = silence(ends_at=None, rule=recurrence("daily", "02:00", 2 * HOUR, "Europe/Berlin"))
BERLIN_1AM = silence(ends_at=None, rule=recurrence("daily", "01:00", 2 * HOUR, "Europe/Berlin"))
NOON_UNTIL = silence(ends_at=at("2026-03-02 13:00"), rule=recurrence("daily", "12:00", 2 * HOUR, "UTC"))
NIGHTLY_LATER = silence(at("2026-03-10 00:00"), None, rule=recurrence("daily", "22:00", 4 * HOUR, "UTC"))


STATUS_CASES = [
    ("one-off, before it starts", ONE_OFF, T0 - MINUTE, "pending"),
    ("one-off, at its start", ONE_OFF, T0, "active"),
    ("one-off, more than 15 min to go", ONE_OFF, T0 + 100 * MINUTE, "active"),
    ("one-off, 10 min to go", ONE_OFF, T0 + 110 * MINUTE, "expiring"),
    ("one-off, at its end", ONE_OFF, T0 + 2 * HOUR, "expired"),
    ("expired early, before the expiry", EXPIRED_EARLY, T0 + 10 * MINUTE, "active"),
    ("expired early, at the expiry", EXPIRED_EARLY, T0 + 30 * MINUTE, "expired"),
    ("expired early, before its planned end", EXPIRED_EARLY, T0 + HOUR, "expired"),
    ("starts tomorrow", LATER, T0, "pending"),
    ("daily 22:00 4h, just before", NIGHTLY, at("2026-03-01 21:59"), "pending"),
    ("daily 22:00 4h, before midnight", NIGHTLY, at("2026-03-01 23:30"), "active"),
    ("daily 22:00 4h, after midnight", NIGHTLY, at("2026-03-02 01:30"), "active"),
    ("daily 22:00 4h, at the occurrence's end", NIGHTLY, at("2026-03-02 02:00"), "pending"),
    ("daily, before its first day", NIGHTLY_LATER, at("2026-03-01 23:30"), "pending"),
    ("daily, from its first day", NIGHTLY_LATER, at("2026-03-10 23:30"), "active"),
    ("weekly sat+sun, saturday", WEEKEND, at("2026-03-07 23:30"), "active"),
    ("weekly sat+sun, saturday's past midnight", WEEKEND, at("2026-03-08 00:30"), "active"),
    ("weekly sat+sun, sunday's past midnight", WEEKEND, at("2026-03-09 00:30"), "active"),
    ("weekly sat+sun, monday", WEEKEND, at("2026-03-09 23:30"), "pending"),
    ("weekly sat+sun, friday", WEEKEND, at("2026-03-06 23:30"), "pending"),
    ("berlin 02:00, winter time (01:30 UTC = 02:30 CET)", BERLIN_2AM, at("2026-03-28 01:30"), "active"),
    ("berlin 02:00, winter time (02:30 UTC = 03:30 CET)", BERLIN_2AM, at("2026-03-28 02:30"), "active"),
    ("berlin 02:00, summer time (00:30 UTC = 02:30 CEST)", BERLIN_2AM, at("2026-03-30 00:30"), "active"),
    ("berlin 02:00, summer time (02:30 UTC = 04:30 CEST)", BERLIN_2AM, at("2026-03-30 02:30"), "pending"),
    ("berlin 02:00, summer time again (02:30 UTC = 04:30 CEST)", BERLIN_2AM, at("2026-10-24 02:30"), "pending"),
    ("berlin 02:00, winter time again (01:30 UTC = 02:30 CET)", BERLIN_2AM, at("2026-10-26 01:30"), "active"),
    ("berlin 01:00 2h, spring forward: 2 elapsed hours", BERLIN_1AM, at("2026-03-29 01:30"), "active"),
    ("berlin 01:00 2h, spring forward: over after 2h", BERLIN_1AM, at("2026-03-29 02:00"), "pending"),
    ("berlin 01:00 2h, fall back: the first 02:30", BERLIN_1AM, at("2026-10-25 00:30"), "active"),
    ("berlin 01:00 2h, fall back: the second 02:30", BERLIN_1AM, at("2026-10-25 01:30"), "pending"),
    ("recurring with an end, occurrence ends soon", NOON_UNTIL, at("2026-03-01 13:50"), "active"),
    ("recurring with an end, 30 min to its end", NOON_UNTIL, at("2026-03-02 12:30"), "active"),
    ("recurring with an end, 10 min to its end", NOON_UNTIL, at("2026-03-02 12:50"), "expiring"),
    ("recurring with an end, at its end", NOON_UNTIL, at("2026-03-02 13:00"), "expired"),
]


@pytest.mark.parametrize("window, moment, expected", [case[1:] for case in STATUS_CASES],
                         ids=[case[0] for case in STATUS_CASES])
def test_in_force_and_status(window, moment, expected):
    assert (status(window, moment), in_force(window, moment)) == (expected, expected in ("active", "expiring"))


LABELS = {"rule": "http", "target": "web-1", "service": "shop", "severity": "critical"}


@pytest.mark.parametrize("matchers, expected", [
    (["service=shop"], True),
    (["service=db"], False),
    (["service=shop", "severity!=critical"], False),
    (["service=shop", "severity!=info"], True),
    (["target=~web-.*"], True),
    (["target=~web"], False),  # a regex matches the whole value
    (["target!~db-.*"], True),
    (["team="], True),  # a missing label matches as the empty string
    (["team!="], False),
])
def test_covers(matchers, expected):
    assert covers(silence(matchers=matchers), LABELS) is expected


@pytest.mark.parametrize("args, message", [
    (("hourly", "02:00", HOUR, "UTC"), "every must be daily or weekly"),
    (("daily", "2am", HOUR, "UTC"), "at must be a local time HH:MM"),
    (("daily", "02:00", HOUR, "Europe/Berln"), "unknown time zone 'Europe/Berln'"),
    (("weekly", "02:00", HOUR, "UTC", ["sat", "holiday"]), "unknown weekday 'hol'"),
    (("weekly", "02:00", HOUR, "UTC"), "a weekly window needs its days"),
    (("daily", "02:00", 25 * HOUR, "UTC"), "a daily window lasts more than 0 and at most 1 day(s)"),
])
def test_recurrence_refuses_what_it_cannot_schedule(args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        recurrence(*args)


# --- through the repository ---------------------------------------------------------------
def spec(target: str = "web-1", service: str = "shop") -> incidents.FindingSpec:
    return incidents.FindingSpec(rule="http", target=target, service=service, severity="critical",
                            summary=f"{target} failing: 503", correlation_key=f"{service}/{target}")


def add_silence(engine, now: datetime, **window) -> int:
    with write_session(engine) as session:
        return silences.add_silence(session, author="alice", comment="deploy", now=now, **window).id


def open_finding(engine, finding: incidents.FindingSpec, now: datetime) -> Finding:
    with write_session(engine) as session:
        return incidents.open_finding(session, finding, [], now)


def release(engine, now: datetime) -> int:
    with write_session(engine) as session:
        return incidents.release_suppressed(session, now)


def finding(engine, finding_id: int) -> Finding:
    with read_session(engine) as session:
        return session.get(Finding, finding_id)


def test_a_silenced_finding_is_kept_marked_and_released_when_the_silence_expires(engine):
    silence_id = add_silence(engine, T0, matchers=[{"label": "service", "op": "=", "value": "shop"}],
                             starts_at=T0, ends_at=T0 + 2 * HOUR)
    shop = open_finding(engine, spec(), T0 + 5 * MINUTE)
    db = open_finding(engine, spec("db-1", "db"), T0 + 5 * MINUTE)

    assert (shop.suppressed_by, shop.incident_id) == (f"silence #{silence_id}", None)
    assert db.suppressed_by is None
    assert [i.service for i in queries.list_incidents(engine)] == ["db"]
    [listed] = queries.suppressed_findings(engine)
    assert (listed.id, listed.suppressed_by, listed.first_seen, listed.incident_id) == (
        shop.id, f"silence #{silence_id}", T0 + 5 * MINUTE, None)

    assert release(engine, T0 + 30 * MINUTE) == 0
    with write_session(engine) as session:
        silences.expire_silence(session, silence_id, "alice", T0 + 40 * MINUTE)
    assert release(engine, T0 + 41 * MINUTE) == 1

    released = finding(engine, shop.id)
    assert released.suppressed_by is None and released.incident_id is not None
    detail = queries.incident_detail(engine, released.incident_id)
    assert (detail.service, detail.state, detail.finding_count) == ("shop", "observed", 1)
    assert f"still firing after silence #{silence_id} ended" in detail.timeline[-1].message
    assert queries.suppressed_findings(engine) == []


def test_a_maintenance_window_suppresses_inside_its_occurrence_only(engine):
    window = add_silence(engine, T0, kind="maintenance", matchers=[{"label": "service", "op": "=", "value": "shop"}],
                         starts_at=T0, ends_at=None, recurrence=recurrence("daily", "02:00", 2 * HOUR, "Europe/Berlin"))
    inside = open_finding(engine, spec("web-1"), at("2026-03-02 01:30"))  # 02:30 CET, in 02:00-04:00
    assert (inside.suppressed_by, inside.incident_id) == (f"maintenance #{window}", None)
    assert release(engine, at("2026-03-02 02:59")) == 0
    assert release(engine, at("2026-03-02 03:00")) == 1  # 04:00 CET: the occurrence is over
    assert finding(engine, inside.id).suppressed_by is None

    outside = open_finding(engine, spec("web-2"), at("2026-03-02 03:30"))
    assert outside.suppressed_by is None and outside.incident_id is not None
    assert {i.correlation_key for i in queries.list_incidents(engine)} == {"shop/web-1", "shop/web-2"}
