"""The picture of one incident: its service's golden signals over the incident and the span before
it (the incident a band), each rule finding's window against its threshold (the latest while the
incident is open, the one that fired once it is resolved), and a link to the Trends page on the
same range."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

import streamlit as st

from app import settings
from app.charts import signal_figure
from app.evidence_ui import render_rule_evidence
from app.ui import engine, policy
from ledger import queries, trends
from ledger.rollups import Rollups, floor_time
from ledger.samples import SampleStore

TTL = 30  # seconds: about the pace at which per-minute rollups arrive
LEAD = (timedelta(minutes=15), timedelta(hours=6))  # the span shown before it: as long as the incident, within these
AFTER = timedelta(minutes=10)  # shown after a resolved incident


def window(opened_at: datetime, resolved_at: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """From before the incident (as long as it lasted, 15 min to 6 h) to its end (and a little after)
    or now."""
    end = resolved_at or now
    lead = min(max(end - opened_at, LEAD[0]), LEAD[1])
    return opened_at - lead, min(now, end + AFTER) if resolved_at else now


@st.cache_data(ttl=TTL, show_spinner=False)
def load(service: str, since: datetime, until: datetime) -> trends.Trends:
    rollups = Rollups(SampleStore(settings.resolve().samples_dir))
    label = f"{since:%H:%M}-{until:%H:%M}"
    return trends.read_window(rollups, engine(), policy().rules.services, service, since, until, label)


def trends_link(service: str, since: datetime, until: datetime) -> str:
    return "./trends?" + urlencode({"service": service, "from": f"{since:%Y-%m-%dT%H:%MZ}",
                                    "to": f"{until:%Y-%m-%dT%H:%MZ}"})


def render_picture(detail: queries.IncidentDetail, now: datetime) -> None:
    since, until = window(detail.opened_at, detail.resolved_at, now)
    minute = timedelta(minutes=1)  # whole minutes: one cache entry a minute, not one per refresh
    found = load(detail.service, floor_time(since, minute), floor_time(until, minute) + minute)
    with st.expander(f"The picture: {detail.service} from {since:%H:%M} to {until:%H:%M} UTC", expanded=True):
        st.markdown(f"[Open in Trends on this range]({trends_link(detail.service, since, until)}) · "
                    f"{found.resolution} rollups; the red band is this incident and others of {detail.service}")
        drawn = [(key, signal) for key, signal in found.signals.items() if not signal.current.is_empty()]
        if not drawn:
            st.caption(f"No samples of {detail.service} rolled up for this range yet (a minute rolls up about a "
                       "minute after it ends).")
        for row in range(0, len(drawn), 2):
            for column, (key, signal) in zip(st.columns(2), drawn[row:row + 2]):
                with column:
                    st.plotly_chart(signal_figure(signal, found, previous=False, height=260),
                                    key=f"picture-{detail.id}-{key}", width="stretch")
        shown = {}  # each rule finding's window: the latest while open, the one that fired once resolved
        for item in detail.evidence:
            if item.kind == "rule" and item.data.get("points"):
                if detail.resolved_at is None or item.finding_id not in shown:
                    shown[item.finding_id] = item
        for finding_id, item in shown.items():
            rule = next((f.rule for f in detail.findings if f.id == finding_id), "rule")
            st.markdown(f"**{rule.removeprefix('rule:')}** at {item.at:%H:%M:%S} UTC: `{item.summary}`")
            render_rule_evidence(item.data, key=f"picture-{item.id}")
