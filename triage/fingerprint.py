"""The fingerprint of a triage subject, defined once.

Two denies, warns or open violations are "the same finding" when they agree on five fields
of their event: the policy, its rule, the resource's kind and name, and the reason text
(`FIELDS`, the event columns `policy_id`, `rule`, `resource_kind`, `resource_name`, `reason`).
The queue groups subjects by these fields, a group label and a sticky rule select subjects by
them, and an exception proposal is made from them.

The fingerprint id is `sha256` of the five fields as a compact JSON array of strings (UTF-8,
no key order to get wrong, no separator a field could contain), its first 16 hex digits
(64 bits: collisions are negligible at any number of groups a store holds). It is stable: the
same five fields give the same id in every process and release, so ids stored in
`triage_history` and `triage_rules` stay meaningful. Changing the definition would orphan
them: do not.

SQL never computes the id: queries group and match on the five fields themselves (bound as
parameters), and Python names the result, so the definition lives here only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

FIELDS = ("policy_id", "rule", "resource_kind", "resource_name", "reason")
ID_LENGTH = 16  # hex digits


def fingerprint_id(policy_id: str, rule: str, resource_kind: str, resource_name: str,
                   reason: str) -> str:
    """The stable id of the five fields (see the module docstring).

    >>> fingerprint_id("k8s.require-non-root", "check-user", "Pod", "api-7f9", "runs as root")
    'a61c5617bbe391fd'
    """
    payload = json.dumps([policy_id, rule, resource_kind, resource_name, reason],
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:ID_LENGTH]


@dataclass(frozen=True)
class Fingerprint:
    """The five fields a subject is grouped by; `id` names them. Empty strings are values
    (an event without a rule has rule '')."""

    policy_id: str
    rule: str
    resource_kind: str
    resource_name: str
    reason: str

    def __post_init__(self) -> None:
        for name in FIELDS:
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"fingerprint field {name!r} must be a string, got "
                                f"{getattr(self, name)!r}")

    @property
    def id(self) -> str:
        return fingerprint_id(self.policy_id, self.rule, self.resource_kind,
                              self.resource_name, self.reason)

    def as_parameters(self, prefix: str = "fp_") -> dict[str, str]:
        """The fields as bound-parameter values, named `<prefix><field>`."""
        return {f"{prefix}{name}": getattr(self, name) for name in FIELDS}
