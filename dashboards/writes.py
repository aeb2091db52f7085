"""How a page makes a write and tells the user: the one place the on-call silences and the
triage verdicts share.

    writes.confirmation()                  # first, on every run: the last write's message
    writes.read_only_note(user, "label", "read the queue but not label it")
    ...
    writes.attempt(lambda: do_the_write())  # -> its message, confirmed after a rerun

`attempt` runs the write (which itself calls `auth.require` before writing); only once it has
returned is its message kept and the page rerun, so what the user reads as confirmed is
stored, and the rerun shows the new state. A refusal (a permission, a missing reason, a
silence that does not end) is shown as an error and nothing is kept.
"""

from __future__ import annotations

from typing import Callable

from dashboards.auth import User, can, safe_text
from dashboards.roles import ACTIONS, ROLES

NOTICE = "policyscope_write_notice"  # the confirmation of the last write, shown on the rerun


def confirmation() -> None:
    """Show (once) the message of the write that led to this rerun."""
    import streamlit as st

    notice = st.session_state.pop(NOTICE, None)
    if notice:
        st.success(notice)  # the write returned before this rerun


def read_only_note(user: User, action: str, what: str) -> None:
    """Say, to a user whose role may not take `action`, that they may only `what`."""
    import streamlit as st

    if not can(user, action):
        roles = ", ".join(r for r in ROLES if r in ACTIONS[action])
        st.info(f"Your role ({user.role}) may {what}: that needs the role {roles}.")


def attempt(act: Callable[[], str]) -> None:
    """Run one write; its message is confirmed on the rerun, a refusal shown here."""
    import streamlit as st

    try:
        message = act()
    except (ValueError, LookupError, PermissionError) as refused:
        st.error(safe_text(refused))
        return
    st.session_state[NOTICE] = message
    st.rerun()
