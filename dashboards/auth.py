"""Login for the dashboards, and the roles every page and write path checks.

Every page (or the router, once per run) starts with

    user = auth.current_user()
    if user is None:
        auth.login_form()          # renders the login and stops the run until logged in
    ...                            # st.navigation over auth.visible_pages(user)
    auth.require(user, "label")    # right before a write, on the server side, always
    with st.sidebar:
        auth.logout_button()

How users log in follows the `dashboard` config section (checked by `serve.check_login` at
start-up):
- nothing configured, bound to loopback: no login, everyone is `User("local", "admin")`;
- `dashboard_users_file`: a name and password form, checked against the file's argon2 hash
  (constant-time verify; as slow for an unknown name); each failure is logged without the
  password, and waits FAILURE_DELAY x failures (at most MAX_DELAY) seconds; MAX_FAILURES in
  one session lock its form for LOCKOUT seconds. The session holds the user's name only: the
  file is read again on every run, so `users remove` / `users set-role` apply at once;
- `dashboard_oidc`: a single sign-on button (Streamlit's st.login, its [auth] secrets); the
  identity is the email (unless the provider says it is unverified, then `sub`), its role the
  users file's entry for it, else `dashboard_oidc_role`, else it is refused;
- beyond loopback with `dashboard_allow_unauthenticated`: no login, `User("anonymous",
  "admin")` (something in front authenticates). With nothing at all, `serve` refuses to
  start, and a script run anyway shows only an error.

Strings from events (reasons, resource names, actors) are shown as text: st.text,
st.dataframe, st.code as they are; anything that renders Markdown (st.markdown, st.write of a
str, st.error / st.info, st.metric and st.expander labels) gets `safe_text(s)`, and no page
passes unsafe_allow_html with them.

The roles, pages and actions live in `dashboards.roles` (no Streamlit) and are re-exported
here; Streamlit is imported inside the functions that need a script run.
"""

from __future__ import annotations

import logging
import math
import re
import time
from pathlib import Path

from collector.auth import is_loopback
from dashboards import config as dashboard_config
from dashboards.config import DashboardConfig
from dashboards.roles import ACTIONS, PAGES, ROLES, User, can, require, visible_pages
from dashboards.users import UsersFile

__all__ = ["ACTIONS", "PAGES", "ROLES", "User", "can", "current_user", "login_form",
           "logout_button", "code_span", "page_user", "require", "safe_text",
           "visible_pages"]

log = logging.getLogger(__name__)

LOCAL = User("local", "admin")
ANONYMOUS = User("anonymous", "admin")

SESSION_USER = "policyscope_user"  # the logged-in local user's name
SESSION_FAILURES = "policyscope_login_failures"
SESSION_LOCKED_UNTIL = "policyscope_login_locked_until"  # time.monotonic() seconds

FAILURE_DELAY = 1.0  # seconds waited after a failed login, times the session's failures
MAX_DELAY = 5.0
MAX_FAILURES = 5
LOCKOUT = 60.0  # seconds the form stays locked after MAX_FAILURES

_sleep = time.sleep  # the wait after a failed login (a test replaces it)
_files: dict[Path, UsersFile] = {}


def current_user() -> User | None:
    """The user of this script run; None = not logged in (call `login_form`)."""
    import streamlit as st

    settings = _settings()
    if settings.dashboard_oidc:
        return _oidc_user(settings, st.user)
    if settings.dashboard_users_file is not None:
        name = st.session_state.get(SESSION_USER)
        if name is None:
            return None
        account = _users(settings.dashboard_users_file).get(name)
        if account is None or account.password_hash is None:  # removed since the login
            log.info("dashboard user %r is no longer in the users file: logged out", name)
            del st.session_state[SESSION_USER]
            return None
        return User(account.name, account.role)
    if is_loopback(settings.dashboard_host):
        return LOCAL
    if settings.dashboard_allow_unauthenticated:
        return ANONYMOUS
    return None  # beyond loopback with no login configured: login_form says so


def page_user(page: str) -> User:
    """The user of this run, if their role sees `page` (a PAGES id): the first call of every
    page, so a page is never drawn for someone who may not see it, however the run reached it
    (the navigation lists only a role's pages; this holds even without it). Not logged in: the
    login form; a role without the page: an error. Both stop the run."""
    import streamlit as st

    if page not in PAGES:
        raise ValueError(f"unknown page {page!r}; known: {', '.join(PAGES)}")
    user = current_user()
    if user is None:
        login_form()  # stops the run
    if page not in visible_pages(user):
        log.warning("refused page %s to user %r (role %s)", page, user.name, user.role)
        st.error(f"Your role ({user.role}) does not see this page.")
        st.stop()
    return user


def login_form() -> None:
    """Render the login this config asks for, then stop the run (`st.stop`); a successful
    local login reruns the script with the user in the session."""
    import streamlit as st

    settings = _settings()
    st.title("PolicyScope")
    if settings.dashboard_oidc:
        _oidc_form(settings)
    elif settings.dashboard_users_file is not None:
        _password_form(settings.dashboard_users_file)
    else:
        st.error(f"This dashboard listens on {safe_text(settings.dashboard_host)} with no "
                 "login configured, so it shows nothing. Set dashboard_users_file or "
                 "dashboard_oidc, or bind it to 127.0.0.1.")
    st.stop()


def logout_button() -> None:
    """A log-out button with who is logged in (nothing when there is no login)."""
    import streamlit as st

    settings = _settings()
    if not (settings.dashboard_oidc or settings.dashboard_users_file is not None):
        return
    user = current_user()
    if user is None:
        return
    st.caption(f"Logged in as {safe_text(user.name)} ({user.role})")
    if st.button("Log out", key="policyscope-logout"):
        log.info("dashboard logout: %r", user.name)
        st.session_state.clear()  # the user, and whatever the pages kept for them
        if settings.dashboard_oidc:
            st.logout()  # clears st.user and its cookie, then reloads the app
        else:
            st.rerun()


_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def safe_text(text: object) -> str:
    """`text` with every ASCII punctuation character backslash-escaped (CommonMark's escape,
    which Markdown renders as the character itself), for strings from events inside calls
    that render Markdown: no link, image, emphasis, heading or HTML can come of it."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", str(text))


def code_span(text: object) -> str:
    """`text` as a Markdown code span (shown verbatim, as code): fenced by more backticks
    than any run inside it, so nothing in it can close the span early. Escapes are not
    undone inside a code span, so this, not `safe_text`, is for paths and names in code."""
    text = str(text).replace("\n", " ")
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    return f"{fence} {text} {fence}" if text.startswith("`") or text.endswith("`") or runs \
        else f"{fence}{text}{fence}"


# -- the local users file --------------------------------------------------------------------

def _password_form(path: Path) -> None:
    import streamlit as st

    locked = st.session_state.get(SESSION_LOCKED_UNTIL, 0.0) - time.monotonic()
    if locked > 0:
        st.error(f"Too many failed logins: try again in {math.ceil(locked)} s.")
        return
    with st.form("policyscope-login", clear_on_submit=True):
        name = st.text_input("User name", max_chars=128, key="policyscope-login-name")
        password = st.text_input("Password", type="password", max_chars=1024,
                                 key="policyscope-login-password")
        submitted = st.form_submit_button("Log in")
    if not submitted:
        return
    users = _users(path)
    name = name.strip()
    user = users.verify(name, password) if name and password else None
    if user is not None:
        st.session_state.pop(SESSION_FAILURES, None)
        st.session_state[SESSION_USER] = user.name
        log.info("dashboard login: %r (role %s)", user.name, user.role)
        st.rerun()
    failures = st.session_state.get(SESSION_FAILURES, 0) + 1
    st.session_state[SESSION_FAILURES] = failures
    # A name the file does not hold may be a password typed into the wrong box: not logged.
    who = repr(name) if users.get(name) is not None else "an unknown user name"
    log.warning("failed dashboard login for %s (failure %d in this session)", who, failures)
    _sleep(min(FAILURE_DELAY * failures, MAX_DELAY))
    if failures >= MAX_FAILURES:
        st.session_state[SESSION_LOCKED_UNTIL] = time.monotonic() + LOCKOUT
        log.warning("dashboard login locked for %.0f s in this session after %d failures",
                    LOCKOUT, failures)
    st.error("Wrong user name or password.")


# -- OIDC (st.login) -------------------------------------------------------------------------

def _oidc_identity(info) -> str | None:
    email = info.get("email")
    if email and info.get("email_verified") is not False:
        return str(email)
    sub = info.get("sub")
    return str(sub) if sub else None


def _oidc_user(settings: DashboardConfig, info) -> User | None:
    if not info.get("is_logged_in", False):
        return None
    identity = _oidc_identity(info)
    if identity is None:
        return None
    path = settings.dashboard_users_file
    account = _users(path).get(identity) if path is not None else None
    role = account.role if account is not None else settings.dashboard_oidc_role
    return User(identity, role) if role is not None else None


def _oidc_form(settings: DashboardConfig) -> None:
    import streamlit as st

    if st.user.get("is_logged_in", False):  # the provider knows them; this dashboard not
        identity = _oidc_identity(st.user) or "this account"
        log.warning("OIDC identity %r refused: not in the users file and no "
                    "dashboard_oidc_role", identity)
        st.error(f"{safe_text(identity)} may not use this dashboard: ask an admin to add "
                 "you (`policyscope users add NAME --role ROLE --oidc`).")
        if st.button("Log out", key="policyscope-logout"):
            st.logout()
        return
    if st.button("Log in with single sign-on", key="policyscope-login-oidc"):
        st.login(settings.dashboard_oidc_provider)


def _settings() -> DashboardConfig:
    return dashboard_config.current().dashboard


def _users(path: Path) -> UsersFile:
    """One UsersFile per path (its hasher, and so the dummy hash, made once)."""
    if path not in _files:
        _files[path] = UsersFile(path)
    return _files[path]
