"""The incident page's Review tab: the post-mortem draft (as ``workbench incidents postmortem``
writes it) and the review notebook (as ``workbench notebook incident`` writes it) to download, as
it is or run and exported to HTML."""

from __future__ import annotations

import re

import streamlit as st

from app import notebooks, settings
from app.ui import engine
from ledger.postmortem import postmortem
from policies.errors import WorkbenchError

HTML = "review-html"  # session state: the executed review of an incident, by id


def render_review(incident_id: int) -> None:
    text = postmortem(engine(), incident_id)
    buttons = st.container(horizontal=True)
    buttons.download_button("Post-mortem (.md)", text, file_name=f"incident-{incident_id}-postmortem.md",
                            mime="text/markdown", icon=":material/description:", key=f"postmortem-{incident_id}")
    try:
        notebook = notebooks.review_notebook(settings.resolve(), incident_id)
        buttons.download_button("Review notebook (.ipynb)", notebooks.as_text(notebook),
                                file_name=f"incident-{incident_id}-review.ipynb", mime="application/x-ipynb+json",
                                icon=":material/book:", key=f"notebook-{incident_id}")
        done = st.session_state.setdefault(HTML, {})
        if buttons.button("Run it for an HTML report", icon=":material/play_arrow:", key=f"run-review-{incident_id}"):
            with st.spinner("Running the review notebook (this takes a few seconds)…"):
                done[incident_id] = notebooks.html(notebooks.execute(notebook))
        if incident_id in done:
            buttons.download_button("Report (.html)", done[incident_id], file_name=f"incident-{incident_id}-review.html",
                                    mime="text/html", icon=":material/download:", key=f"html-{incident_id}")
    except WorkbenchError as exc:
        st.caption(str(exc))
    with st.container(border=True):
        st.markdown(re.sub(r"^(#+) ", r"###\1 ", text, flags=re.MULTILINE))  # headings below the page's own
