"""Notifications: the in-app inbox (what could not be delivered, waiting to be read), each
channel's delivery health, every notification with its attempts (what went where, what failed
and why), the answers channels brought back, and time to acknowledge and resolve. Refreshes itself."""

from datetime import timedelta

import streamlit as st

from app.operator import mark_read
from app.render import moment, span
from app.ui import actor, engine, error_boundary, may
from ledger import notifications
from ledger.db import utcnow
from ledger.lifecycle import DeliveryStatus

REFRESH = "5s"
WHEN = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")
HEALTH_SINCE = timedelta(days=1)
RESPONSE_SINCE = timedelta(days=7)
STATUS_BADGES = {"sent": ":green-badge[sent]", "pending": ":blue-badge[pending]", "fallback": ":orange-badge[fallback]",
                 "failed": ":red-badge[failed]"}

st.title("Notifications")


def render_summary(now) -> None:
    box = notifications.inbox(engine())
    times = notifications.response_times(engine(), now - RESPONSE_SINCE)
    columns = st.columns(5)
    columns[0].metric("Open incidents", box.open_incidents, help="unresolved, in any state")
    columns[1].metric("Not acknowledged", box.unacknowledged, help="open incidents nobody has taken yet")
    columns[2].metric("Undelivered", box.undelivered, help="notifications that failed on every channel, unread")
    columns[3].metric("MTTA, 7 days", span(times.mtta_seconds) if times.mtta_seconds is not None else "–",
                      help=f"mean time to acknowledge, {times.acknowledged} of {times.incidents} incidents")
    columns[4].metric("MTTR, 7 days", span(times.mttr_seconds) if times.mttr_seconds is not None else "–",
                      help=f"mean time to resolve, {times.resolved} of {times.incidents} incidents")


def render_undelivered(now) -> None:
    rows = [n for n in notifications.list_notifications(engine(), statuses=[DeliveryStatus.FAILED], unread=True)
            if n.category != "test"]
    if not rows:
        st.success("Every notification reached a channel (or waits for its next attempt).")
        return
    st.markdown(f"**{len(rows)} notification(s) reached no channel**: they are here instead.")
    for item in rows[:20]:
        incident = f" · [incident #{item.incident_id}](./?incident={item.incident_id})" if item.incident_id else ""
        st.markdown(f"{STATUS_BADGES['failed']} **#{item.id}** `{item.title}` to **{item.channel}**{incident} · "
                    f"{moment(item.at, now)}  \n:red[{item.error}]")
    if may("operator") and st.button("Mark all read", key="mark-read"):
        with error_boundary("Mark read"):
            mark_read(engine(), [n.id for n in rows], actor=actor(), now=utcnow())
            st.rerun()


def render_health(now) -> None:
    health = notifications.channel_health(engine(), now - HEALTH_SINCE)
    if not health:
        st.caption("Nothing sent in the last day. Channels and routes are declared in channels.yaml "
                   "(docs/notifications.md); `workbench channels test NAME` sends a test.")
        return
    st.dataframe([{"channel": h.channel, "sent": h.sent, "failed": h.failed, "pending": h.pending,
                   "last sent (UTC)": h.last_sent_at, "last error": h.last_error or "",
                   "last error at (UTC)": h.last_error_at} for h in health],
                 hide_index=True, width="stretch",
                 column_config={"last sent (UTC)": WHEN, "last error at (UTC)": WHEN})


def render_outbox() -> None:
    left, right = st.columns(2)
    statuses = left.multiselect("Status", list(DeliveryStatus), key="filter_notification_status")
    channel = right.text_input("Channel", key="filter_notification_channel")
    rows = notifications.list_notifications(engine(), statuses=statuses, channel=channel.strip() or None)
    if not rows:
        st.caption("No notifications match these filters.")
        return
    st.dataframe([{"id": r.id, "at (UTC)": r.at, "channel": r.channel, "category": r.category, "status": r.status,
                   "attempts": r.attempts, "incident": r.incident_id, "title": r.title, "error": r.error or "",
                   "cut short": r.interrupted} for r in rows],
                 hide_index=True, width="stretch", column_config={"at (UTC)": WHEN})
    chosen = st.selectbox("Attempts of", [r.id for r in rows], key="notification_select",
                          format_func=lambda i: f"#{i} {next(r.title for r in rows if r.id == i)}")
    st.dataframe([a.model_dump() for a in notifications.delivery_attempts(engine(), chosen)], hide_index=True,
                 width="stretch", column_config={"started_at": WHEN, "finished_at": WHEN})


def render_answers() -> None:
    rows = notifications.channel_answers(engine())
    if not rows:
        st.caption("No answers from channels yet: Approve, Reject and Acknowledge buttons in Slack and Telegram "
                   "come back here, taken or refused.")
        return
    st.dataframe([r.model_dump() for r in rows], hide_index=True, width="stretch", column_config={"at": WHEN})


@st.fragment(run_every=REFRESH)
def render_page() -> None:
    now = utcnow()
    with error_boundary("Loading the inbox"):
        render_summary(now)
        st.subheader("Inbox")
        render_undelivered(now)
    st.subheader("Channels, last day")
    with error_boundary("Loading channel health"):
        render_health(now)
    st.subheader("Outbox")
    with error_boundary("Loading notifications"):
        render_outbox()
    st.subheader("Answers from channels")
    with error_boundary("Loading answers"):
        render_answers()


render_page()
