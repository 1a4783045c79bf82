"""Trends: a service's golden signals (latency, traffic, errors, saturation) over a range, the
period before it dashed, its incidents, silences and maintenance windows as bands. The address
may name the service and a range of its own (``?service=shop&from=2026-03-01T09:00Z&to=...``, as the
incident page links here). Refreshes itself."""

from datetime import UTC, datetime

import polars as pl
import streamlit as st

from app import settings
from app.charts import signal_figure
from app.render import span
from app.ui import engine, error_boundary, policy
from ledger import trends
from ledger.db import utcnow
from ledger.rollups import Rollups
from ledger.samples import SampleStore

TTL = 30  # seconds a loaded range is reused: about the pace at which per-minute rollups arrive
REFRESH = "30s"
DEFAULT_RANGE = "1h"
WHEN = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")



@st.cache_data(ttl=TTL, show_spinner="Reading rollups…")
def load(service: str, range_key: str, since: datetime | None = None, until: datetime | None = None,
         location: str | None = None) -> trends.Trends:
    rollups = Rollups(SampleStore(settings.resolve().samples_dir))
    if since is not None and until is not None:
        return trends.read_window(rollups, engine(), policy().rules.services, service, since, until, range_key,
                                  location=location)
    return trends.read_trends(rollups, engine(), policy().rules.services, service, range_key, utcnow(),
                              location=location)


def linked_range() -> tuple[datetime, datetime] | None:
    """The range the address names (from and to, ISO 8601, UTC unless they say otherwise), if any."""
    given = st.query_params.get("from"), st.query_params.get("to")
    if not all(given):
        return None
    try:
        since, until = (datetime.fromisoformat(text.replace("Z", "+00:00")) for text in given)
    except ValueError:
        st.error(f"from={given[0]} to={given[1]}: use ISO 8601 times, e.g. 2026-03-01T09:00Z")
        return None
    since, until = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (since, until))
    if since >= until:
        st.error(f"from={given[0]} is not before to={given[1]}")
        return None
    return since.astimezone(UTC), min(until.astimezone(UTC), utcnow())


def render_signal(key: str, signal: trends.Signal, found: trends.Trends) -> None:
    if signal.current.is_empty():
        st.info(f"{signal.title}: no samples for {found.service} in the last {found.range}.")
        return
    st.plotly_chart(signal_figure(signal, found), key=f"trends-{key}", width="stretch")


def render_bands(found: trends.Trends) -> None:
    if not found.bands:
        st.caption(f"No incidents, silences or maintenance windows for {found.service} in the last {found.range}.")
        return
    st.dataframe(pl.DataFrame([b.model_dump() for b in found.bands]).rename({"start": "from (UTC)",
                                                                           "end": "to (UTC)"}),
                 hide_index=True, width="stretch", column_config={"from (UTC)": WHEN, "to (UTC)": WHEN})


@st.fragment(run_every=REFRESH)
def render_trends(service: str, range_key: str, linked: tuple[datetime, datetime] | None,
                  location: str | None) -> None:
    if range_key == LINKED and linked:
        found, where = load(service, span((linked[1] - linked[0]).total_seconds()), *linked, location), "this range"
    else:
        found, where = load(service, range_key, location=location), f"the last {range_key}"
    st.caption(f"{found.resolution} rollups · {found.since:%Y-%m-%d %H:%M} → {found.until:%Y-%m-%d %H:%M} UTC · "
               f"dashed: the {found.range} before")
    if found.empty:
        st.info(f"No samples for {service} in {where}: its probes have not run in this range, or their newest "
                "minute is not rolled up yet (about a minute after it ends).")
    else:
        for row in (("latency", "traffic"), ("errors", "saturation")):
            for column, key in zip(st.columns(2), row):
                with column:
                    render_signal(key, found.signals[key], found)
    render_bands(found)


LINKED = "linked"
EVERYWHERE = "every location"
st.title("Trends")
with error_boundary("Loading services"):
    names = trends.service_names(policy(), engine())
    if not names:
        st.info("No services yet: add targets to the policy (targets.yaml) and start the worker.")
    else:
        linked = linked_range()
        options = [LINKED, *trends.RANGES] if linked else list(trends.RANGES)
        wanted = st.query_params.get("service")
        controls = st.columns([2, 3])
        chosen = controls[0].selectbox("Service", names, key="trends_service",
                                       index=names.index(wanted) if wanted in names else 0)
        window = controls[1].radio(
            "Range", options, index=0 if linked else options.index(DEFAULT_RANGE), horizontal=True,
            key="trends_range", format_func=lambda key: f"{linked[0]:%m-%d %H:%M} → {linked[1]:%H:%M} UTC"
            if key == LINKED else key)
        places = sorted({place for t in policy().targets if t.service == chosen for place in t.locations})
        location = None
        if places:  # probed from several locations (a fleet): one location's series at a time, or all
            location = st.radio("Probed from", [EVERYWHERE, *places], horizontal=True, key="trends_location")
            location = None if location == EVERYWHERE else location
        with error_boundary(f"Loading trends of {chosen}"):
            render_trends(chosen, window, linked, location)
