"""Login to the web app, when the policy has ``access:``: the form of local accounts (password, then
the TOTP code of an account that has one), single sign-on by Streamlit's ``st.login``, the refusal
of an identity the policy does not let in, logout, and logins that expire. A local login lasts
beyond the tab: a cookie holds its token (the ledger its hash), so a reload or a link opened in
another tab needs no new login; it is checked against the ledger again every RECHECK, so a logout,
a removed account or a changed role takes effect within seconds. Without ``access:`` the app serves
loopback only and whoever reaches it is the box's own user."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta

import streamlit as st

from app import access, settings
from app.access import AccessDenied, CodeRequired, Identity, LoginRefused
from app.render import span
from ledger import db
from policies.schema import AccessSettings

SESSION = "identity"  # session state: the logged-in Identity
PENDING = "login-pending"  # session state: the account whose password was right, until its TOTP code
NOTICE = "login-notice"  # session state: why the login page is shown again (expired, logged out)
TOKEN = "login-token"  # session state: the token of this browser's local login (its cookie's value)
SEND_COOKIE = "login-cookie"  # session state: the cookie value to give the browser at the next run ("" ends it)
CHECKED = "login-checked"  # session state: when the local login was last checked against the ledger
COOKIE = "workbench_session"
RECHECK = timedelta(seconds=15)
CODE_WITHIN = timedelta(minutes=5)  # after the right password, how long the code may take
LOGIN_WIDTH = 480  # pixels


def current_identity(access_settings: AccessSettings | None, engine, now: datetime | None = None) -> Identity:
    """Who is at this browser. With ``access:`` and nobody logged in, the login page is shown and the
    script stops here."""
    if access_settings is None:
        return access.box_identity()
    now = now or db.utcnow()
    _send_cookie(access_settings)
    identity: Identity | None = st.session_state.get(SESSION)
    token = st.session_state.get(TOKEN)
    if identity is not None and token and now - st.session_state.get(CHECKED, now) >= RECHECK:
        identity = _from_ledger(engine, token, now)
    # to_dict(): the cookies the browser sent, and no others (AppTest's stand-in answers any name)
    if identity is None and (token := st.context.cookies.to_dict().get(COOKIE)):
        identity = _from_ledger(engine, token, now)
    if identity is None and access_settings.oidc is not None and st.user.get("is_logged_in"):
        identity = _single_sign_on(access_settings, engine, now)
    if identity is not None and now - identity.authenticated_at > access_settings.session_ttl:
        end_session(engine, identity, now, "Your login expired: log in again.")
        identity = None
    if identity is None:
        render_login(access_settings, engine, now)
        st.stop()
    return identity


def _from_ledger(engine, token: str, now: datetime) -> Identity | None:
    """The local login the token belongs to, while it lasts; forgotten (and its cookie too) when not."""
    identity = access.session_identity(engine, token, now)
    if identity is None:
        if st.session_state.pop(SESSION, None) is not None:
            st.session_state[NOTICE] = "Your login ended (expired, logged out elsewhere, or the account changed): log in again."
        for key in (TOKEN, CHECKED):
            st.session_state.pop(key, None)
        st.session_state[SEND_COOKIE] = ""
        return None
    st.session_state.update({SESSION: identity, TOKEN: token, CHECKED: now})
    return identity


def _send_cookie(access_settings: AccessSettings) -> None:
    """Give the browser the login's cookie (or end it), once, by a script in the page: Streamlit
    has no way to set a cookie from Python."""
    value = st.session_state.pop(SEND_COOKIE, None)
    if value is None:
        return
    age = int(access_settings.session_ttl.total_seconds()) if value else 0
    secure = "; Secure" if str(st.context.url or "").startswith("https:") else ""
    st.html(f"<script>document.cookie = {json.dumps(f'{COOKIE}={value}; Path=/; Max-Age={age}; SameSite=Strict{secure}')};"
            "</script>", unsafe_allow_javascript=True)


def _single_sign_on(access_settings: AccessSettings, engine, now: datetime) -> Identity | None:
    claims = st.user.to_dict()
    try:
        identity = access.oidc_identity(access_settings.oidc, claims, now)
    except AccessDenied as exc:
        st.title("Not allowed")
        st.error(str(exc))
        if st.button("Log out", key="logout-refused"):
            st.logout()
        else:  # logged once, not again as they log out
            access.record_single_sign_on(engine, str(claims.get("email") or claims.get("sub") or ""), now, str(exc))
        st.stop()
    access.record_single_sign_on(engine, identity.name, now)
    st.session_state[SESSION] = identity
    return identity


def render_login(access_settings: AccessSettings, engine, now: datetime) -> None:
    with st.container(width=LOGIN_WIDTH):  # a form of two fields, not a page-wide band
        st.title("Log in")
        if notice := st.session_state.pop(NOTICE, None):
            st.info(notice)
        if access_settings.oidc is not None:
            if st.button(access_settings.oidc.label, type="primary", icon=":material/login:"):
                st.login()
        if access_settings.local_accounts:
            _password_form(access_settings, engine, now)


def _password_form(access_settings: AccessSettings, engine, now: datetime) -> None:
    name, verified_at = st.session_state.get(PENDING) or (None, None)
    if verified_at is not None and now - verified_at > CODE_WITHIN:  # start again from the password
        del st.session_state[PENDING]
        name = None
    with st.form("login", clear_on_submit=True):
        if name is None:
            name = st.text_input("Name", key="login-name")
            password, code = st.text_input("Password", type="password", key="login-password"), None
        else:
            st.markdown(f"**{name}**: the password is right.")
            password, code = None, st.text_input("Code from your authenticator app", max_chars=8, key="login-code")
        if not st.form_submit_button("Log in", type="primary"):
            return
    try:
        identity = access.log_in(engine, access_settings, settings.resolve().data_dir, name, password, code, now)
    except CodeRequired as exc:
        st.session_state[PENDING] = (name, now)
        st.session_state[NOTICE] = str(exc)
        st.rerun()
    except LoginRefused as exc:
        st.session_state.pop(PENDING, None)
        st.error(str(exc))
        return
    st.session_state.pop(PENDING, None)
    token = access.open_session(engine, identity, access_settings, now)
    st.session_state.update({SESSION: identity, TOKEN: token, CHECKED: now, SEND_COOKIE: token})
    st.rerun()


def end_session(engine, identity: Identity, now: datetime, notice: str) -> None:
    access.record_logout(engine, identity, now, st.session_state.get(TOKEN))
    st.session_state.clear()  # nothing of this login (an open dialog, an approval waiting for its step-up) is left
    st.session_state.update({NOTICE: notice, SEND_COOKIE: ""})  # to whoever logs in next at this browser
    if identity.via == "single sign-on":
        st.logout()


def render_signed_in(identity: Identity, engine) -> None:
    """The sidebar's line: who is logged in and as what, and the way out."""
    st.caption(f":material/person: **{identity.name}** · {identity.role}")
    if st.button("Log out", key="logout", icon=":material/logout:"):
        end_session(engine, identity, db.utcnow(), "You logged out.")
        if identity.via == "single sign-on":
            st.stop()  # st.logout() is sending the browser to the provider: a rerun would drop that redirect
        st.rerun()


def confirm_again(access_settings: AccessSettings, engine, identity: Identity, key: str) -> Identity | None:
    """A step-up: the password (and code) again, or a fresh single sign-on; return the identity with
    its login renewed once it is confirmed."""
    if identity.via == "single sign-on":
        st.warning("Sign in again to approve this: your sign-in is older than the policy allows for a disruptive "
                   "action.")
        if st.button("Sign in again", key=f"{key}-sso"):
            end_session(engine, identity, db.utcnow(), "Sign in again to approve the disruptive action.")
        return None
    with st.form(f"{key}-step-up"):
        st.markdown(f"**Confirm it is you, {identity.name}**: approving a disruptive action takes a login younger "
                    f"than {span(access_settings.step_up_after.total_seconds())}.")
        password = st.text_input("Password", type="password", key=f"{key}-password")
        code = st.text_input("Code from your authenticator app (if you have one)", max_chars=8, key=f"{key}-code")
        if not st.form_submit_button("Confirm", type="primary"):
            return None
    try:
        renewed = access.log_in(engine, access_settings, settings.resolve().data_dir, identity.name, password,
                                code or None, db.utcnow())
    except LoginRefused as exc:
        st.error(str(exc))
        return None
    renewed = dataclasses.replace(identity, role=renewed.role, authenticated_at=renewed.authenticated_at)
    access.renew_session(engine, st.session_state.get(TOKEN), renewed)
    st.session_state[SESSION] = renewed
    return renewed
