"""The overview: every service the workbench watches with one status colour, and each of its
targets and rules with its state, last result and uptime over 24 hours and 30 days; with a fleet,
its workers."""

from __future__ import annotations

import streamlit as st

from app import settings
from app.render import relative
from app.ui import engine, policy
from ledger import db, overview, queries
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


@st.cache_data(ttl=TTL, show_spinner=False)
def load_workers() -> list[queries.FleetWorkerItem]:
    fleet = policy().settings.fleet
    return [] if fleet is None else queries.fleet_workers(engine(), db.utcnow(), fleet.dead_after)


def render_overview() -> None:
    workers = load_workers()
    silent = [w.name for w in workers if w.silent]
    if silent:
        several = len(silent) > 1
        st.error(f"{len(silent)} worker{'s' if several else ''} of the fleet silent: {', '.join(silent)}; "
                 f"{'their' if several else 'its'} buckets go to the others (Workers, below)", icon=":material/error:")
    render_services()
    if workers:
        render_workers(workers)


def render_workers(workers: list[queries.FleetWorkerItem]) -> None:
    """The fleet's workers: where, whether alive, what they hold and how fast they go."""
    now = db.utcnow()
    st.subheader("Workers")
    digests = {w.policy_digest for w in workers if not w.stopped_at and not w.silent}
    if len(digests) > 1:
        st.warning("The live workers run different policy files (see the policy column).", icon=":material/warning:")
    st.dataframe(
        [{"state": "stopped" if w.stopped_at else "silent" if w.silent else "live", "name": w.name,
          "location": w.location, "host": w.host, "heartbeat": relative(w.heartbeat_at, now), "house": w.house,
          "buckets": w.buckets, "targets": w.targets, "probes/s": w.probes_per_second,
          "lag p99 (s)": w.lag_p99_seconds, "policy": w.policy_digest} for w in workers],
        hide_index=True, width="stretch")


def render_services() -> None:
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
