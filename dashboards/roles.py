"""Who sees which dashboard page and who may take which action: the roles, checked on the
server side (`require` before every write), never only by hiding a button.

| page (id)   | viewer | exec | oncall | analyst | sre | admin |
| ----------- | :----: | :--: | :----: | :-----: | :-: | :---: |
| `executive` |   x    |  x   |        |    x    |     |   x   |
| `oncall`    |        |      |   x    |         |  x  |   x   |
| `triage`    |        |      |        |    x    |     |   x   |
| `tuning`    |        |      |        |         |  x  |   x   |
| `debug`     |        |      |   x    |    x    |  x  |   x   |
| `slos`      |   x    |  x   |   x    |         |  x  |   x   |
| `live`      |   x    |      |   x    |         |  x  |   x   |

| action    | what it covers                              | who may             |
| --------- | ------------------------------------------- | ------------------- |
| `label`   | a triage verdict, a sticky rule, an undo    | analyst, sre, admin |
| `silence` | adding or expiring a silence                | oncall, sre, admin  |

Why: leadership (`exec`) reads the headline numbers and SLOs; `viewer` is a read-only seat
with the live feed too; on-call works alerts, SLOs, the live feed and the decision log;
analysts triage, search the decision log and see the executive summary their labels feed;
SREs tune policies and share on-call's pages. Nobody but `admin` sees every page.

Pure (no Streamlit): the CLI, the stores' callers and the tests use it as it is.
`dashboards.auth` re-exports all of it next to the login.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

ROLES = ("viewer", "exec", "oncall", "analyst", "sre", "admin")

# Page id -> the roles that see it; `visible_pages` keeps this order.
PAGES: dict[str, frozenset[str]] = {
    "executive": frozenset({"viewer", "exec", "analyst", "admin"}),
    "oncall": frozenset({"oncall", "sre", "admin"}),
    "triage": frozenset({"analyst", "sre", "admin"}),  # sre may label: it sees the queue
    "tuning": frozenset({"sre", "admin"}),
    "debug": frozenset({"oncall", "analyst", "sre", "admin"}),
    "slos": frozenset({"viewer", "exec", "oncall", "sre", "admin"}),
    "live": frozenset({"viewer", "oncall", "sre", "admin"}),
}

# Action -> the roles that may take it (every write of the dashboards is one of these).
ACTIONS: dict[str, frozenset[str]] = {
    "label": frozenset({"analyst", "sre", "admin"}),
    "silence": frozenset({"oncall", "sre", "admin"}),
}


def check_role(role: str) -> str:
    """`role` if it is one of ROLES; else ValueError naming it and the roles."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


@dataclass(frozen=True)
class User:
    """Someone using the dashboards: `name` is what every action they take is recorded
    with (a local user's name, an OIDC identity's email, `local` on loopback)."""

    name: str
    role: str

    def __post_init__(self) -> None:
        check_role(self.role)  # a User with a made-up role would fail open somewhere
        if not self.name:
            raise ValueError("a user needs a name: every action is recorded with it")


def visible_pages(user: User) -> list[str]:
    """The ids of the pages `user` sees, in PAGES order."""
    return [page for page, roles in PAGES.items() if user.role in roles]


def can(user: User, action: str) -> bool:
    """Whether `user`'s role may take `action` (a key of ACTIONS; any other is a
    ValueError, so a misspelt action fails loudly instead of refusing everyone)."""
    try:
        allowed = ACTIONS[action]
    except KeyError:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}") from None
    return user.role in allowed


def require(user: User, action: str) -> None:
    """Raise PermissionError unless `user` may take `action`: call it on the server side
    right before the write, whatever the page showed."""
    if can(user, action):
        return
    log.warning("refused %s to user %r (role %s)", action, user.name, user.role)
    raise PermissionError(
        f"user {user.name!r} (role {user.role}) may not {action}: that needs one of the "
        f"roles {', '.join(r for r in ROLES if r in ACTIONS[action])}")
