"""The overview: every service the workbench watches with one status colour, and each of its
targets and rules with its state, last result and uptime over 24 hours and 30 days."""

from __future__ import annotations

import streamlit as st

from app import settings
from app.render import relative
from app.ui import engine, policy
from ledger import db, overview
from ledger.rollups import Rollups
from ledger.samples import SampleStore

TTL = 15  # seconds
STATUS_BADGES = {"down": ":red-badge[:material/error: down]", "degraded": ":orange-badge[:material/warning: degraded]",
                 "ok": ":green-badge[:material/check_circle: ok]", "unknown": ":gray-badge[:material/help: no data]"}
WHEN = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")
UPTIME = st.column_config.NumberColumn(format="percent")


@st.cache_data(ttl=TTL, show_spinner=False)
def load() -> list[overview.ServiceHealth]:
    rollups = Rollups(SampleStore(settings.resolve().samples_dir))
    return overview.overview(engine(), rollups, policy(), db.utcnow())


def render_overview() -> None:
    services = load()
    if not services:
        st.info("Nothing is watched yet: add targets (targets.yaml) or rules (rules.yaml) to the policy and start "
                "the worker.")
        return
    counts = {status: sum(1 for s in services if s.status == status) for status in STATUS_BADGES}
    st.markdown("**What is watched** · " + " ".join(f"{STATUS_BADGES[s]} {n}" for s, n in counts.items() if n))
    now = db.utcnow()
    for service in services:
        incidents = " ".join(f"[#{i}](./?incident={i})" for i in service.open_incidents)
        title = f"{STATUS_BADGES[service.status]} **{service.service}** · {len(service.members)} watched" + (
            f" · open: {incidents}" if incidents else "")
        with st.container(border=True):
            st.markdown(title)
            st.dataframe(
                [{"status": m.status, "kind": m.kind, "name": m.name, "last result": m.last_result,
                  "when": relative(m.last_at, now) if m.last_at else "", "uptime 24h": m.uptime_24h,
                  "uptime 30d": m.uptime_30d} for m in service.members],
                hide_index=True, width="stretch", column_config={"uptime 24h": UPTIME, "uptime 30d": UPTIME})
