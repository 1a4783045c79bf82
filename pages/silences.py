"""Silences and maintenance windows: create them, see which are in force and which end soon,
expire one early; and the findings they (or a parent incident) keep from opening incidents."""

from zoneinfo import available_timezones

import streamlit as st

from app.operator import create_silence, expire_silence
from app.render import describe_when, matchers_text, span
from app.ui import actor, engine, error_boundary, may
from ledger import queries
from ledger.db import utcnow
from ledger.silences import EXPIRING_WITHIN, WEEKDAYS

REFRESH = "15s"
WHEN = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")
STATUS_BADGES = {"active": ":green-badge[active]", "expiring": ":orange-badge[:material/timer: expiring]",
                 "pending": ":blue-badge[pending]", "expired": ":gray-badge[expired]"}
ZONES = sorted(available_timezones())
MATCHERS_HELP = ("One per line: KEY=VALUE, KEY!=VALUE, KEY=~REGEX or KEY!~REGEX. A finding is covered when its "
                 "labels (rule, target, service, severity, ...) match every line.")
TIME_HELP = "ISO 8601, UTC unless it has an offset, e.g. 2026-03-28T22:00Z"

st.title("Silences")


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def render_silence_form() -> None:
    with st.form("silence-form"):
        matchers = st.text_area("Matchers", help=MATCHERS_HELP, placeholder="service=shop", key="silence-matchers")
        duration = st.text_input("Duration", value="2h", help="e.g. 30m, 2h, 1d", key="silence-duration")
        comment = st.text_input("Comment", placeholder="why", key="silence-comment")
        if st.form_submit_button("Create silence"):
            with error_boundary("Create silence"):
                silence = create_silence(engine(), kind="silence", matchers=lines(matchers), duration=duration,
                                         comment=comment, author=actor(), now=utcnow())
                st.toast(f"silence #{silence.id} created")


def render_maintenance_form() -> None:
    recurring = st.radio("Window", ["one-off", "recurring"], horizontal=True, key="maintenance-recurs") == "recurring"
    with st.form("maintenance-form"):
        matchers = st.text_area("Matchers", help=MATCHERS_HELP, placeholder="service=db", key="maintenance-matchers")
        window = recurrence_inputs() if recurring else {
            "starts": st.text_input("Starts", value="now", help=f"now, or {TIME_HELP}", key="maintenance-starts")}
        duration = st.text_input("Duration", value="2h", help="e.g. 30m, 2h (of each occurrence, if it recurs)",
                                 key="maintenance-duration")
        comment = st.text_input("Comment", placeholder="why", key="maintenance-comment")
        if st.form_submit_button("Create maintenance window"):
            with error_boundary("Create maintenance window"):
                silence = create_silence(engine(), kind="maintenance", matchers=lines(matchers), duration=duration,
                                         comment=comment, author=actor(), now=utcnow(), **window)
                st.toast(f"maintenance #{silence.id} created")


def recurrence_inputs() -> dict:
    columns = st.columns(3)
    every = columns[0].selectbox("Every", ["daily", "weekly"], key="maintenance-every")
    at = columns[1].text_input("At (local HH:MM)", value="02:00", key="maintenance-at")
    timezone = columns[2].selectbox("Time zone", ZONES, index=ZONES.index("UTC"), key="maintenance-timezone")
    days = st.multiselect("Days (of a weekly window)", WEEKDAYS, key="maintenance-days")
    until = st.text_input("Until", help=f"when the window ends for good; empty: never; {TIME_HELP}",
                          key="maintenance-until")
    return {"every": every, "at": at, "timezone": timezone, "days": days, "until": until.strip() or None}


def render_item(item: queries.SilenceItem, now) -> None:
    with st.container(border=True):
        st.markdown(f"{STATUS_BADGES[item.status]} **{item.kind} #{item.id}** · "
                    f"`{{{matchers_text(item.matchers)}}}` · {describe_when(item, now)}")
        expired = f" · expired by {item.expired_by}" if item.expired_by else ""
        st.caption(f"{item.author}, {item.created_at:%Y-%m-%d %H:%M:%S} UTC: {item.comment}{expired}")
        if item.status != "expired" and may("operator") and st.button("Expire", key=f"expire-{item.id}"):
            with error_boundary(f"Expire {item.kind} #{item.id}"):
                expire_silence(engine(), item.id, actor(), utcnow())
                st.toast(f"{item.kind} #{item.id} expired")
                st.rerun()


def render_items(items: list[queries.SilenceItem], now, none: str) -> None:
    if not items:
        st.info(none)
    for item in items:
        render_item(item, now)


def render_suppressed(rows: list[queries.SuppressedFinding]) -> None:
    if not rows:
        st.info("No finding is suppressed.")
        return
    st.dataframe(
        [{"suppressed by": f.suppressed_by, "since (UTC)": f.first_seen, "last seen (UTC)": f.last_seen,
          "firing": f.recovered_at is None, "target": f.target, "service": f.service, "severity": f.severity,
          "summary": f.summary, "incident": f"./?incident={f.incident_id}" if f.incident_id else None}
         for f in rows],
        hide_index=True, width="stretch",
        column_config={"since (UTC)": WHEN, "last seen (UTC)": WHEN,
                       "incident": st.column_config.LinkColumn(display_text=r"incident=(\d+)")},
    )


@st.fragment(run_every=REFRESH)
def render_silences() -> None:
    now = utcnow()
    show_expired = st.toggle("Show expired", key="show-expired")
    with error_boundary("Loading silences"):
        items = queries.list_silences(engine(), now, include_expired=show_expired)
        if expiring := [f"{i.kind} #{i.id}" for i in items if i.status == "expiring"]:
            st.warning(f"Ending within {span(EXPIRING_WITHIN.total_seconds())}: {', '.join(expiring)}",
                       icon=":material/timer:")
        st.subheader("Silences")
        render_items([i for i in items if i.kind == "silence"], now, "No silences.")
        st.subheader("Maintenance windows")
        render_items([i for i in items if i.kind == "maintenance"], now, "No maintenance windows.")
    st.subheader("Suppressed findings")
    with error_boundary("Loading suppressed findings"):
        render_suppressed(queries.suppressed_findings(engine()))


if may("operator"):
    new_silence, new_window = st.tabs(["New silence", "New maintenance window"])
    with new_silence:
        render_silence_form()
    with new_window:
        render_maintenance_form()
render_silences()
