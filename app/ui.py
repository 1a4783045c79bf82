"""Pieces every page shares: the cached ledger engine, who acts (and what they may), the error boundary
and the inbox badge."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy import Engine

from app import settings
from app.access import Identity
from app.login import current_identity
from ledger.notifications import inbox
from policies.errors import WorkbenchError
from policies.loader import Policy, load_policy

log = logging.getLogger("workbench.ui")
TITLE = "SRE Workbench"
POLICY_TTL = 15  # seconds
CONFIRMATION = "confirmation"  # session state: what the operator's last action did

STATE_COLOURS = {
    "observed": "red", "triaged": "orange", "escalated": "violet", "contained": "blue",
    "recovering": "green", "suppressed": "gray", "resolved": "gray",
}
SEVERITY_ICONS = {"critical": ":red[:material/error:]", "warning": ":orange[:material/warning:]", "info": ":blue[:material/info:]"}


@st.cache_resource
def engine() -> Engine:
    return settings.resolve().ledger()


@st.cache_resource(ttl=POLICY_TTL)
def policy() -> Policy:
    """The policy on disk, read again at most every POLICY_TTL seconds."""
    return load_policy(settings.resolve().policy_dir)


def actor() -> Identity:
    """Who acts from the web app: the logged-in identity when the policy has ``access:`` (else the
    login page, and the script stops), or the box's own user."""
    return current_identity(policy().settings.access, engine())


def may(role: str) -> bool:
    """Whether whoever is here holds ``role``: the pages show an action only to those who may take
    it (the operator actions check again)."""
    return actor().may(role)


@contextmanager
def error_boundary(what: str) -> Iterator[None]:
    """Show a failure as one readable line on the page instead of a traceback."""
    try:
        yield
    except WorkbenchError as exc:
        st.error(f"{what}: {exc}")
    except Exception as exc:  # the page stays up; the traceback goes to the log
        log.exception("%s failed", what)
        st.error(f"{what} failed: {type(exc).__name__}: {exc}")


def confirm(message: str) -> None:
    """Say what an action did, on the page the operator lands on after it (see render_confirmation)."""
    st.session_state[CONFIRMATION] = message


def render_confirmation() -> None:
    """The last action's confirmation, until the operator closes it or acts again."""
    message = st.session_state.get(CONFIRMATION)
    if message:
        with st.container(horizontal=True, vertical_alignment="center"):
            st.success(message, icon=":material/check_circle:")
            if st.button("", icon=":material/close:", key="confirmation-close", help="Dismiss"):
                del st.session_state[CONFIRMATION]
                st.rerun()


def state_badge(state: str) -> str:
    return f":{STATE_COLOURS.get(state, 'gray')}-badge[{state}]"


@st.fragment(run_every="5s")
def render_inbox() -> None:
    """The inbox badge in the sidebar, and its count in the browser tab's title: open incidents
    (how many nobody acknowledged), pending approvals, notifications that reached no channel."""
    try:
        box = inbox(engine())
    except Exception as exc:  # the sidebar stays up; the reason goes to the log
        log.warning("inbox counts unavailable: %s: %s", type(exc).__name__, exc)
        return
    st.set_page_config(page_title=f"({box.total}) {TITLE}" if box.total else TITLE)
    parts = [f":red-badge[{box.open_incidents} open]" if box.open_incidents else ":green-badge[no open incidents]"]
    if box.unacknowledged:
        parts.append(f":orange-badge[{box.unacknowledged} not acknowledged]")
    if box.pending_approvals:
        parts.append(f":violet-badge[{box.pending_approvals} to approve]")
    if box.undelivered:
        parts.append(f":red-badge[:material/notifications_off: {box.undelivered} undelivered]")
    st.markdown(" ".join(parts))
