"""Plotly figures the pages share: a golden signal over a range with its bands (Trends, the
incident's picture) and a rule's window of values against its threshold (rule evidence)."""

from __future__ import annotations

from datetime import datetime

import plotly.graph_objects as go

from ledger import trends

HOVER = {"ms": ".1f", "runs/min": ".1f", "req/s": ".2f", "ratio": ".2%", "%": ".1f"}
BAND_COLOURS = {"incident": "#d62728", "silence": "#7f7f7f", "maintenance": "#1f77b4"}


def signal_figure(signal: trends.Signal, found: trends.Trends, previous: bool = True,
                  height: int = 320) -> go.Figure:
    """One golden signal over ``found``'s range; dashed, the span before it shifted onto this one
    (when ``previous``); its incidents, silences and maintenance windows as bands."""
    fig = go.Figure()
    number = HOVER.get(signal.unit, ".3g")
    unit = "" if signal.unit in ("ratio", "") else f" {signal.unit}"
    for (series, period), part in sorted(signal.frame.partition_by("series", "period", as_dict=True).items()):
        earlier = period == "previous"
        if earlier and not previous:
            continue
        fig.add_trace(go.Scatter(
            x=part["ts"].to_list(), y=part["value"].to_list(), mode="lines",
            name=f"{series}, previous {found.range}" if earlier else series,
            line={"dash": "dash", "width": 1} if earlier else {"width": 2},
            customdata=[f"{at:%Y-%m-%d %H:%M}" for at in part["at"]],
            hovertemplate=f"{series}: %{{y:{number}}}{unit}<br>%{{customdata}} UTC<extra></extra>"))
    for band in found.bands:  # outlined, so that a short band still shows on a long range; labelled upright
        colour = BAND_COLOURS.get(band.kind, "#7f7f7f")
        fig.add_vrect(x0=band.start, x1=band.end, fillcolor=colour, opacity=0.15, line={"width": 1, "color": colour},
                      annotation_text=band.label, annotation_position="top left", annotation_textangle=-90,
                      annotation_font_size=10)
    fig.update_layout(title={"text": signal.title, "subtitle": {"text": signal.note}}, height=height,
                      margin={"l": 10, "r": 10, "t": 60, "b": 10}, xaxis_range=[found.since, found.until],
                      yaxis_title=signal.unit or None,
                      yaxis_tickformat=".0%" if signal.unit == "ratio" else None,
                      legend={"orientation": "h", "y": -0.15}, hovermode="x unified")
    return fig


def rule_figure(evidence: dict, height: int = 220) -> go.Figure | None:
    """The values a rule saw in its window (the latest ones it kept) against its threshold; None
    when the evidence holds no points."""
    points = evidence.get("points") or []
    if not points:
        return None
    times = [datetime.fromisoformat(at) for at, _ in points]
    fig = go.Figure(go.Scatter(x=times, y=[value for _, value in points], mode="lines+markers", name="value",
                               marker={"size": 4}, hovertemplate="%{y:.4g}<br>%{x|%H:%M:%S} UTC<extra></extra>"))
    if evidence.get("threshold") is not None:
        fig.add_hline(y=evidence["threshold"], line={"color": "#d62728", "dash": "dash", "width": 1},
                      annotation_text=f"threshold {evidence.get('op', '')} {evidence['threshold']:.4g}",
                      annotation_position="top left")
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10}, showlegend=False,
                      xaxis_tickformat="%H:%M:%S")
    return fig
