"""Routing: every LLM call's routing decision against the declared policy (routing.yaml) over
time, by task and provider; where the provider used differed from the route and why; token
budget use; privacy-gate refusals; a decision in detail with its incident. Decisions another
system logged (JSON Lines) are imported here and compared with the same policy."""

import plotly.express as px
import polars as pl
import streamlit as st

from app.operator import import_routing_decisions
from app.ui import actor, engine, error_boundary, may, policy
from hypotheses import divergence
from ledger import queries
from ledger.db import utcnow
from policies.schema import parse_duration

TTL = 10
REFRESH = "30s"
RANGES = {"1h": "5m", "24h": "1h", "7d": "1d", "30d": "1d"}  # range -> bucket of the time chart
WHEN = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")



@st.cache_data(ttl=TTL, show_spinner=False)
def load(range_key: str) -> list[queries.DecisionItem]:
    return queries.routing_decisions(engine(), since=utcnow() - parse_duration(range_key))


def render_charts(found: divergence.Divergence) -> None:
    left, right = st.columns(2)
    with left:
        st.plotly_chart(titled(px.bar(found.over_time.to_pandas(), x="bucket", y="decisions", color="actual",
                                      labels={"bucket": "", "actual": "provider used"}),
                               "Decisions over time, by provider used"),
                        key="routing-over-time", width="stretch")
        st.plotly_chart(titled(px.bar(found.reasons.to_pandas(), x="reason", y="decisions"),
                               "Why the provider used differed from the route"),
                        key="routing-reasons", width="stretch")
    with right:
        st.plotly_chart(titled(px.density_heatmap(found.route_vs_actual.to_pandas(), x="actual", y="expected",
                                                  z="decisions", text_auto=True),
                               "Route's first provider vs provider used"),
                        key="routing-route-vs-actual", width="stretch")
        days = found.budget.with_columns(pl.col("day").cast(pl.String)).to_pandas()  # whole days, not hours
        budget = titled(px.bar(days, x="day", y="tokens", color="task", labels={"day": "UTC day"}),
                        "Tokens per UTC day, and each task's budget")
        budget.update_xaxes(type="category")
        for task, limit in {row["task"]: row["budget"] for row in found.budget.iter_rows(named=True)
                            if row["budget"]}.items():
            budget.add_hline(y=limit, line_dash="dash", annotation_text=f"{task} budget")
        st.plotly_chart(budget, key="routing-budget", width="stretch")


def titled(figure, title: str):
    """A chart's title with room for it: Streamlit's theme leaves a long one clipped otherwise."""
    return figure.update_layout(title={"text": title, "x": 0, "xanchor": "left"}, height=320,
                                margin={"l": 10, "r": 10, "t": 50, "b": 10})


def render_table(found: divergence.Divergence) -> None:
    st.dataframe(found.decisions.select("id", "at", "source", "task", "incident_id", "expected", "actual", "reason",
                                        "latency_ms", "tokens", "cost").to_pandas(),
                 hide_index=True, width="stretch", column_config={"at": WHEN})


def render_detail(decision_id: int) -> None:
    d = queries.routing_decision(engine(), decision_id)
    st.markdown(f"**Decision #{d.id}** · {d.at:%Y-%m-%d %H:%M:%S} UTC · task `{d.task}` · {d.source}"
                + (f" ({d.origin})" if d.origin else "") + (f" · request `{d.request_id}`" if d.request_id else ""))
    st.markdown(f"Route {' › '.join(f'`{p}`' for p in d.route) or '(none declared)'} · expected `{d.expected or '-'}`"
                f" · declared `{d.declared or '-'}` · used `{d.actual or 'none'}` · reason **{d.reason}**")
    if d.detail:
        st.caption(d.detail)
    if d.attempts:
        st.dataframe(d.attempts, hide_index=True, width="stretch")
    if d.incident_id is not None:
        st.page_link("../pages/incidents.py", label=f"Incident #{d.incident_id}", icon=":material/emergency:",
                     query_params={"incident": str(d.incident_id)})


def render_import() -> None:
    with st.expander("Import decisions another system logged (JSON Lines)"):
        st.caption("One object per line: `ts` (ISO 8601), `task`, `actual`; optionally `declared`, `request_id`, "
                   "`tokens`, `latency_ms`. Each is compared with this policy; a file imported twice adds nothing.")
        upload = st.file_uploader("Decisions file", type=["jsonl", "json", "txt", "log"], key="routing_upload")
        if upload is not None and st.button("Import", key="routing_import"):
            with error_boundary(f"Importing {upload.name}"):
                report = import_routing_decisions(engine(), upload.getvalue(), upload.name, policy().routing,
                                                  actor=actor())
                load.clear()
                st.success(f"{upload.name}: imported {report.imported} decision(s); {report.already_imported} "
                           f"already imported, {len(report.invalid)} invalid line(s)")
                if report.invalid:
                    st.warning("\n".join(f"- line {n}: {reason}" for n, reason in report.invalid))


st.title("Routing")
st.caption("Every LLM call follows the routing policy (routing.yaml): its route, its gates, and the provider "
           "that actually served it.")
if may("operator"):
    render_import()


@st.fragment(run_every=REFRESH)
def render_decisions() -> None:
    controls = st.columns([3, 2, 2, 2, 2])
    range_key = controls[0].radio("Range", list(RANGES), index=1, horizontal=True, key="routing_range")
    with error_boundary("Loading routing decisions"):
        decisions = load(range_key)
        tasks = controls[1].multiselect("Task", sorted({d.task for d in decisions}), key="routing_task")
        providers = controls[2].multiselect("Provider used", sorted({d.actual or divergence.NONE for d in decisions}),
                                            key="routing_provider")
        sources = controls[3].multiselect("Source", ["workbench", "import"], key="routing_source")
        divergent_only = controls[4].toggle("Divergent only", key="routing_divergent")
        chosen = divergence.select(decisions, tasks=tasks, providers=providers, sources=sources,
                                   divergent_only=divergent_only)
        if not chosen:
            st.info(f"No routing decisions in the last {range_key} match these filters.")
            return
        found = divergence.summarize(chosen, policy().routing, RANGES[range_key])
        numbers = st.columns(5)
        numbers[0].metric("Decisions", len(chosen))
        numbers[1].metric("Diverged from the route", f"{found.divergent_share:.0%}",
                          help="served by another provider than the route's first, for a reason of routing "
                               "(failover, a gate, the budget, a task or provider outside the policy)")
        numbers[2].metric("Unserved", found.unserved,
                          help="the route was followed and no provider answered (a model that is down): a failure, "
                               "not a divergence")
        numbers[3].metric("Tokens", f"{int(found.decisions['tokens'].sum()):,}")
        numbers[4].metric("Privacy-gate refusals", found.privacy_refusals)
        render_charts(found)
        render_table(found)
        ids = [d.id for d in chosen]
        wanted = st.query_params.get("decision")
        index = ids.index(int(wanted)) if wanted and wanted.isdigit() and int(wanted) in ids else 0
        labels = {d.id: f"#{d.id} · {d.task} · {d.actual or 'none'} · {d.reason}" for d in chosen}
        picked = st.selectbox("Decision", ids, index=index, format_func=labels.get, key="routing_decision")
        st.query_params["decision"] = str(picked)
        render_detail(picked)


render_decisions()
