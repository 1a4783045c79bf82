"""Overview: every service watched, with one status colour each, and each target and rule with its
state, last result and uptime over 24 hours and 30 days. Refreshes itself."""

import streamlit as st

from app.overview_ui import render_overview
from app.ui import error_boundary

st.title("Overview")


@st.fragment(run_every="10s")
def refreshed() -> None:
    with error_boundary("Loading the overview"):
        render_overview()


refreshed()
