"""Trends: a service's golden signals (latency, traffic, errors, saturation) over a range, the
period before it dashed, its incidents, silences and maintenance windows as bands."""

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from app import settings
from app.ui import engine, error_boundary
from ledger import trends
from ledger.db import utcnow
from ledger.rollups import Rollups
from ledger.samples import SampleStore
from policies.loader import Policy, load_policy

TTL = 30  # seconds a loaded range is reused: about the pace at which per-minute rollups arrive
HOVER = {"ms": ".1f", "runs/min": ".1f", "req/s": ".2f", "ratio": ".2%", "%": ".1f"}
BAND_COLOURS = {"incident": "#d62728", "silence": "#7f7f7f", "maintenance": "#1f77b4"}
WHEN = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")


@st.cache_resource(ttl=TTL)
def policy() -> Policy:
    return load_policy(settings.resolve().policy_dir)


@st.cache_data(ttl=TTL, show_spinner="Reading rollups…")
def load(service: str, range_key: str) -> trends.Trends:
    rollups = Rollups(SampleStore(settings.resolve().samples_dir))
    return trends.read_trends(rollups, engine(), policy().rules.services, service, range_key, utcnow())


def figure(signal: trends.Signal, found: trends.Trends) -> go.Figure:
    fig = go.Figure()
    number = HOVER.get(signal.unit, ".3g")
    unit = "" if signal.unit in ("ratio", "") else f" {signal.unit}"
    for (series, period), part in sorted(signal.frame.partition_by("series", "period", as_dict=True).items()):
        previous = period == "previous"
        fig.add_trace(go.Scatter(
            x=part["ts"].to_list(), y=part["value"].to_list(), mode="lines",
            name=f"{series}, previous {found.range}" if previous else series,
            line={"dash": "dash", "width": 1} if previous else {"width": 2},
            customdata=[f"{at:%Y-%m-%d %H:%M}" for at in part["at"]],
            hovertemplate=f"{series}: %{{y:{number}}}{unit}<br>%{{customdata}} UTC<extra></extra>"))
    for band in found.bands:  # outlined, so that a short band still shows on a long range; labelled upright
        colour = BAND_COLOURS.get(band.kind, "#7f7f7f")
        fig.add_vrect(x0=band.start, x1=band.end, fillcolor=colour, opacity=0.15, line={"width": 1, "color": colour},
                      annotation_text=band.label, annotation_position="top left", annotation_textangle=-90,
                      annotation_font_size=10)
    fig.update_layout(title={"text": signal.title, "subtitle": {"text": signal.note}}, height=320,
                      margin={"l": 10, "r": 10, "t": 60, "b": 10}, xaxis_range=[found.since, found.until],
                      yaxis_title=signal.unit or None,
                      yaxis_tickformat=".0%" if signal.unit == "ratio" else None,
                      legend={"orientation": "h", "y": -0.15}, hovermode="x unified")
    return fig


def render_signal(key: str, signal: trends.Signal, found: trends.Trends) -> None:
    if signal.current.is_empty():
        st.info(f"{signal.title}: no samples for {found.service} in the last {found.range}.")
        return
    st.plotly_chart(figure(signal, found), key=f"trends-{key}", width="stretch")


def render_bands(found: trends.Trends) -> None:
    if not found.bands:
        st.caption(f"No incidents, silences or maintenance windows for {found.service} in the last {found.range}.")
        return
    st.dataframe(pl.DataFrame([b.model_dump() for b in found.bands]).rename({"start": "from (UTC)",
                                                                           "end": "to (UTC)"}),
                 hide_index=True, width="stretch", column_config={"from (UTC)": WHEN, "to (UTC)": WHEN})


def render_trends(service: str, range_key: str) -> None:
    found = load(service, range_key)
    st.caption(f"{found.resolution} rollups · {found.since:%Y-%m-%d %H:%M} → {found.until:%Y-%m-%d %H:%M} UTC · "
               f"dashed: the {found.range} before")
    if found.empty:
        st.info(f"No samples for {service} in the last {range_key}: its probes have not run in this range, or "
                "their newest minute is not rolled up yet (about a minute after it ends).")
    else:
        for row in (("latency", "traffic"), ("errors", "saturation")):
            for column, key in zip(st.columns(2), row):
                with column:
                    render_signal(key, found.signals[key], found)
    render_bands(found)


st.title("Trends")
with error_boundary("Loading services"):
    names = trends.service_names(policy(), engine())
    if not names:
        st.info("No services yet: add targets to the policy (targets.yaml) and start the worker.")
    else:
        controls = st.columns([2, 3])
        chosen = controls[0].selectbox("Service", names, key="trends_service")
        window = controls[1].radio("Range", list(trends.RANGES), index=2, horizontal=True, key="trends_range")
        with error_boundary(f"Loading trends of {chosen}"):
            render_trends(chosen, window)
