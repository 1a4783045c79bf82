"""One piece of an incident's evidence on a page: a probe's checks with their actual values, an
alert's labels and annotations, or a rule's query, window, reduction, threshold and value with
the window's values drawn against the threshold."""

from __future__ import annotations

import streamlit as st

from app.charts import rule_figure
from ledger.queries import EvidenceItem


def render_evidence_item(item: EvidenceItem, key: str) -> None:
    st.markdown(f"**{item.at:%Y-%m-%d %H:%M:%S} UTC** · `{item.summary}`")
    for check in item.checks:
        icon = ":green[✔]" if check["ok"] else ":red[✘]"
        st.markdown(f"{icon} `{check['text']}`")
    if item.kind == "alert":
        labels = ", ".join(f'{k}="{v}"' for k, v in sorted(item.data.get("labels", {}).items()))
        st.markdown(f"labels `{{{labels}}}`")
        for name, text in sorted(item.data.get("annotations", {}).items()):
            st.caption(f"{name}: {text}")
    if item.kind == "rule" and "query" in item.data:
        render_rule_evidence(item.data, key)


def render_rule_evidence(data: dict, key: str) -> None:
    query = data["query"]
    text = query if isinstance(query, str) else ", ".join(f"{name}: {q}" for name, q in query.items())
    st.code(text, language=None)
    value = "none" if data.get("value") is None else f"{data['value']:.4g}"
    threshold = "none" if data.get("threshold") is None else f"{data.get('op', '')} {data['threshold']:.4g}"
    inputs = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in (data.get("inputs") or {}).items())
    st.markdown(f"window **{data.get('window', '?')}** · reduction **{data.get('reduce', '?')}** · "
                f"threshold **{threshold}** · value **{value}**" + (f" · {inputs}" if inputs else ""))
    figure = rule_figure(data)
    if figure is not None:
        st.plotly_chart(figure, key=f"rule-points-{key}", width="stretch")
