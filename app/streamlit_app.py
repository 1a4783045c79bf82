"""Entry point of the web app: `streamlit run app/streamlit_app.py` (or `workbench ui`)."""

import os
import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # pages import app, ledger and policies from the checkout
    sys.path.insert(0, str(ROOT))

from app import logs  # once sys.path has the tree
from app.login import render_signed_in
from app.ui import TITLE, actor, engine, policy, render_inbox

logs.configure(os.environ.get(logs.ENV_LOG_FORMAT, "text"))

# A local file: a material or emoji icon would have every page fetch its favicon from the internet.
st.set_page_config(page_title=TITLE, page_icon=ROOT / "app" / "static" / "favicon.png", layout="wide")
pages = [
    st.Page(ROOT / "pages" / "incidents.py", title="Incidents", icon=":material/emergency:", default=True),
    st.Page(ROOT / "pages" / "overview.py", title="Overview", icon=":material/monitor_heart:"),
    st.Page(ROOT / "pages" / "trends.py", title="Trends", icon=":material/show_chart:"),
    st.Page(ROOT / "pages" / "silences.py", title="Silences", icon=":material/notifications_off:"),
    st.Page(ROOT / "pages" / "routing.py", title="Routing", icon=":material/alt_route:"),
    st.Page(ROOT / "pages" / "approvals.py", title="Approvals", icon=":material/approval:"),
    st.Page(ROOT / "pages" / "rules.py", title="Rule suggestions", icon=":material/rule:"),
    st.Page(ROOT / "pages" / "notifications.py", title="Notifications", icon=":material/notifications:"),
]
# The pages, unlisted, before the login page too: else Streamlit forgets the page the address names
# (a link to Approvals, say) and the login leads to the default page instead.
st.navigation(pages, position="hidden")
identity = actor()  # with access: in the policy, nobody goes past the login page without logging in
navigation = st.navigation(pages)
with st.sidebar:
    if policy().settings.access is not None:
        render_signed_in(identity, engine())
    render_inbox()
navigation.run()
