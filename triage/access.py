"""Who may do what in triage, checked here, inside the package (server side), before any
write: a dashboard hiding a button is a convenience, this is the rule.

Roles are the dashboard's (`ROLES`); labelling, undoing and managing sticky rules need one of
`LABELLING_ROLES`. Every write records the acting user's name (`Actor.name`).
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("viewer", "exec", "oncall", "analyst", "sre", "admin")
LABELLING_ROLES = ("analyst", "sre", "admin")
MAX_NAME = 200


class TriagePermissionError(PermissionError):
    """The acting user's role does not allow the action (nothing was written)."""


@dataclass(frozen=True)
class Actor:
    """The user acting: their name (recorded with every action) and role (one of `ROLES`)."""

    name: str
    role: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"an actor needs a non-empty name, got {self.name!r}")
        if len(self.name) > MAX_NAME:
            raise ValueError(f"actor name is {len(self.name)} characters; at most {MAX_NAME}")


def require_labeller(actor: Actor, action: str) -> None:
    """Raise TriagePermissionError unless `actor` may label (`action` names the refused act in
    the message, e.g. 'label triage subjects')."""
    if not isinstance(actor, Actor):
        raise TypeError(f"the acting user must be a triage.Actor, got {type(actor).__name__}")
    if actor.role not in LABELLING_ROLES:
        known = "" if actor.role in ROLES else f" (not a known role: {', '.join(ROLES)})"
        raise TriagePermissionError(
            f"user {actor.name!r} with role {actor.role!r}{known} may not {action}; that needs "
            f"one of the roles {', '.join(LABELLING_ROLES)}")
