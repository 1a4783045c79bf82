"""Rule suggestions: the detector rules the workbench learned from history, each with where it
came from, its backtest beside the rule it would add to or replace (figures and a chart of the
series, the threshold, both rules' episodes and the incidents), the rule as YAML against the
current one; accept or reject with a reason, or backtest both again over another range. Then
the decisions made, and the learned rules with their revisions."""

import difflib
from datetime import datetime, timedelta

import plotly.graph_objects as go
import polars as pl
import streamlit as st
import yaml

from app import settings
from app.operator import accept_suggestion, reject_suggestion
from app.render import moment
from app.ui import actor, engine, error_boundary, may
from detectors.cycle import load_windows
from learning.backtests import backtest_rule
from learning.suggestions import RULE, as_written, revisions, summary
from ledger.db import read_session, utcnow
from ledger.lifecycle import SuggestionStatus
from ledger.queries import incidents_in_window
from ledger.repo import rules as rule_repo
from ledger.samples import SampleStore
from policies.loader import load_policy
from policies.schema import format_duration

WHEN = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")
BUCKET = "5m"  # the chart shows the highest value of each bucket
COLOURS = {"suggested": "#2ca02c", "current": "#7f7f7f", "incident": "#d62728"}

st.title("Rule suggestions")


def percent(value) -> str:
    return "–" if value is None else f"{value:.0%}"


def figures(backtests: dict) -> None:
    rows = []
    for side in ("current", "suggested"):
        b = backtests.get(side)
        if b:
            lead = b.get("lead_time_seconds")
            rows.append({"rule": side, "episodes": b["episodes"], "a day": b["fires_per_day"],
                         "recall": percent(b["recall"]), "precision": percent(b["precision"]),
                         "caught": ", ".join(f"#{i}" for i in b["caught"]) or "–",
                         "missed": ", ".join(f"#{i}" for i in b["missed"]) or "–",
                         "median lead": "–" if lead is None else f"{lead:+.0f} s",
                         "in alert": percent(b["time_in_alert_ratio"])})
    st.dataframe(rows, hide_index=True, width="stretch")


@st.cache_data(ttl=60, show_spinner="Reading the series…")
def series_frame(rule_json: dict, start: datetime, end: datetime) -> pl.DataFrame:
    """The rule's series over the range, the highest value of each BUCKET."""
    rule = RULE.validate_python(rule_json)
    window, _ = load_windows(SampleStore(settings.resolve().samples_dir), [rule], end, since=start)
    ts, values = window.values([s for selector in rule.selectors().values() for s in window.select(selector)],
                               start, end)
    frame = pl.DataFrame({"ts": pl.Series(ts, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")), "value": values})
    return frame.sort("ts").group_by_dynamic("ts", every=BUCKET).agg(pl.col("value").max())


def chart(suggestion, incidents: list) -> go.Figure:
    suggested = suggestion.backtest["suggested"]
    start, end = (datetime.fromisoformat(suggested[k]) for k in ("from", "to"))
    frame = series_frame(suggestion.rule, start, end)
    fig = go.Figure(go.Scatter(x=frame["ts"].to_list(), y=frame["value"].to_list(), mode="lines", name="series",
                               line={"width": 1}))
    bound = suggestion.rule.get("above", suggestion.rule.get("threshold"))
    if isinstance(bound, (int, float)):
        fig.add_hline(y=bound, line={"dash": "dash", "color": COLOURS["suggested"]},
                      annotation_text=f"suggested {bound:g}")
    lanes = [("suggested", suggested)] + ([("current", suggestion.backtest["current"])]
                                          if suggestion.backtest.get("current") else [])
    for lane, (side, backtest) in enumerate(lanes):
        for first, last in backtest.get("spans", []):
            fig.add_vrect(x0=first, x1=last or end, y0=0.9 - 0.08 * lane, y1=0.96 - 0.08 * lane, line={"width": 0},
                          fillcolor=COLOURS[side], opacity=0.8)
    for incident in incidents:
        fig.add_vrect(x0=incident.opened_at, x1=incident.resolved_at or end, fillcolor=COLOURS["incident"],
                      opacity=0.12, line={"width": 1, "color": COLOURS["incident"]},
                      annotation_text=f"#{incident.id}", annotation_position="top left")
    fig.update_layout(height=300, margin={"t": 30, "b": 10}, showlegend=False,
                      title={"text": "series (max per 5 min), episodes: suggested (green) and current (grey), "
                                     "incidents (red)", "font": {"size": 13}})
    return fig


def rule_diff(suggestion, policy) -> str:
    current = next((r for r in policy.rules.resolved if r.name == suggestion.replaces), None)
    before = yaml.safe_dump([as_written(current)]) if current else ""  # keys sorted: the diff shows changes only
    after = yaml.safe_dump([suggestion.rule])
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                        suggestion.replaces or "(no rule)", suggestion.name)) or after


def backtest_again(suggestion, policy, days: int) -> None:
    end = utcnow()
    start = end - timedelta(days=days)
    store = SampleStore(settings.resolve().samples_dir)
    again = {"suggested": summary(backtest_rule(engine(), store, policy, RULE.validate_python(suggestion.rule),
                                                start, end))}
    current = next((r for r in policy.rules.resolved if r.name == suggestion.replaces), None)
    if current is not None:
        again["current"] = summary(backtest_rule(engine(), store, policy, current, start, end))
    st.markdown(f"**Backtest over the last {days} days**")
    figures(again)


def render_suggestion(suggestion, policy, now) -> None:
    with st.container(border=True):
        badge = ":green-badge[new rule]" if suggestion.kind == "new" else ":orange-badge[tuned]"
        replaces = f" to succeed `{suggestion.replaces}`" if suggestion.replaces else ""
        st.markdown(f"{badge} **#{suggestion.id} `{suggestion.name}`**{replaces} · service `{suggestion.service}`")
        st.caption(f"Learned {moment(suggestion.created_at, now)}: {suggestion.why}")
        provenance = suggestion.provenance
        links = ", ".join(f"[#{i}](./?incident={i})" for i in provenance.get("incidents", [])) or "none"
        st.markdown(f"From incidents {links} and the series `{'`, `'.join(provenance.get('series', []))}`")
        figures(suggestion.backtest)
        suggested = suggestion.backtest["suggested"]
        incidents = incidents_in_window(engine(), datetime.fromisoformat(suggested["from"]),
                                        datetime.fromisoformat(suggested["to"]), service=suggestion.service)
        st.plotly_chart(chart(suggestion, incidents), width="stretch", key=f"chart-{suggestion.id}")
        st.code(rule_diff(suggestion, policy), language="diff")
        days = st.selectbox("Backtest again over the last", [1, 7, 14, 30], index=1, key=f"days-{suggestion.id}",
                            format_func=lambda d: f"{d} day{'s' if d > 1 else ''}")
        if st.button("Backtest again", key=f"again-{suggestion.id}"):
            with error_boundary(f"Backtest of suggestion #{suggestion.id}"):
                backtest_again(suggestion, policy, days)
        if not may("operator"):
            return
        with st.form(f"decide-{suggestion.id}"):
            reason = st.text_input(f"Reason for #{suggestion.id}", key=f"reason-{suggestion.id}",
                                   placeholder="why (kept with the decision)")
            yes, no = st.columns(2)
            verb = ("accept" if yes.form_submit_button("Accept", type="primary")
                    else "reject" if no.form_submit_button("Reject") else None)
        if verb:
            with error_boundary(f"{verb.title()} suggestion #{suggestion.id}"):
                decide(suggestion.id, verb, reason)


def decide(suggestion_id: int, verb: str, reason: str) -> None:
    if not reason.strip():
        st.error("Say why: the reason is kept with the decision.")
        return
    if verb == "accept":
        revision = accept_suggestion(engine(), settings.resolve().policy_dir, suggestion_id, actor=actor(),
                                     reason=reason, now=utcnow())
        st.toast(f"Suggestion #{suggestion_id} accepted: revision {revision} in learned-rules.yaml; the worker "
                 "evaluates it after its next policy reload")
    else:
        reject_suggestion(engine(), suggestion_id, actor=actor(), reason=reason, now=utcnow())
        st.toast(f"Suggestion #{suggestion_id} rejected")
    st.rerun()


def render_learned(policy) -> None:
    if not policy.learned:
        st.info("No learned rule is in force yet.")
        return
    for name in sorted(policy.learned):
        with st.expander(f"`{name}`"):
            st.dataframe([{"revision": r.revision, "at (UTC)": r.at, "by": r.actor, "reason": r.reason,
                           "in force": r.rule is not None} for r in revisions(engine(), name)],
                         hide_index=True, width="stretch", column_config={"at (UTC)": WHEN})
            st.caption(f"Roll back from the command line: `workbench rules rollback {name} REVISION --reason ...`")


def render_page() -> None:
    now = utcnow()
    with error_boundary("Loading rule suggestions"):
        policy = load_policy(settings.resolve().policy_dir)
        with read_session(engine()) as session:
            rows = rule_repo.suggestions(session)
        pending = [s for s in rows if s.status == SuggestionStatus.PENDING]
        st.subheader(f"To review ({len(pending)})")
        if not pending:
            st.info("No suggestion is waiting for review. The worker learns every "
                    f"{format_duration(policy.rules.learning.interval)}; `workbench rules suggest` learns now.")
        for suggestion in pending:
            render_suggestion(suggestion, policy, now)
        st.subheader("Decided")
        decided = [s for s in rows if s.status != SuggestionStatus.PENDING]
        if decided:
            st.dataframe([{"id": s.id, "status": s.status, "rule": s.name, "by": s.decided_by,
                           "decided (UTC)": s.decided_at, "reason": s.reason} for s in decided],
                         hide_index=True, width="stretch", column_config={"decided (UTC)": WHEN})
        else:
            st.caption("None yet.")
        st.subheader("Learned rules in force")
        render_learned(policy)


render_page()
