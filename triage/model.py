"""The triage verdict model: what a subject is, what a verdict says, and the values the
package's functions take and return. Pure: no storage here (`triage.store` has it).

A *subject* is one thing an analyst can judge: a `deny` or `warn` decision
(`policy_decisions`, kind `decision`, id = its event_id, time = its event time) or an open
violation (`policy_events` of kind `policy.violation` whose latest status is `opened` or
`updated`; kind `violation`, id = its violation_id, time = its first `opened` event in the
range read). Subjects group by their `Fingerprint`.

A verdict is current for a subject when it is the latest entry of the subject's history, is
not "no verdict" ('', what undoing a first label leaves) and, for `benign`, has not expired.
A subject without a current verdict is in the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum

from triage.fingerprint import Fingerprint

SUBJECT_KINDS = ("decision", "violation")
NO_VERDICT = ""  # an entry restoring "no verdict" (undo of a subject's first label)
HAND, RULE = "hand", "rule"  # who gave a verdict: an analyst, or a sticky rule
MAX_REASON = 2000  # characters
MAX_RANGE = timedelta(days=400)  # the longest [start, end) a query reads (the raw tables' TTL)


def check_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) as UTC, checked: both timezone-aware, start before end, at most
    `MAX_RANGE` apart (every query of events is bounded by its range)."""
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    if not start < end:
        raise ValueError(f"the range [{start.isoformat()}, {end.isoformat()}) is empty; "
                         "start must be before end")
    if end - start > MAX_RANGE:
        raise ValueError(f"the range [{start.isoformat()}, {end.isoformat()}) spans "
                         f"{(end - start).days} days; at most {MAX_RANGE.days}")
    return start, end


class VerdictKind(StrEnum):
    TRUE_POSITIVE = "true_positive"  # the policy was right: a real problem
    FALSE_POSITIVE = "false_positive"  # the policy was wrong (a reason is required)
    BENIGN = "benign"  # right but expected / an accepted risk, optionally until a date


@dataclass(frozen=True)
class Verdict:
    """A verdict to give. `reason` is required for `false_positive`; `expires_at` only for
    `benign`: from then on the verdict no longer counts and the subject is back in the queue
    — an aware datetime (any timezone, kept as UTC), or a date, meaning the verdict holds
    through that day (UTC; it expires at the next midnight). Checked at construction
    (`ValueError` with the offending value)."""

    kind: VerdictKind
    reason: str = ""
    expires_at: datetime | date | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", VerdictKind(self.kind))
        except ValueError:
            raise ValueError(f"verdict {self.kind!r} is not one of "
                             f"{', '.join(v.value for v in VerdictKind)}") from None
        if not isinstance(self.reason, str):
            raise ValueError(f"a verdict's reason must be text, got {self.reason!r}")
        object.__setattr__(self, "reason", self.reason.strip())
        if len(self.reason) > MAX_REASON:
            raise ValueError(f"reason is {len(self.reason)} characters; at most {MAX_REASON}")
        if self.kind is VerdictKind.FALSE_POSITIVE and not self.reason:
            raise ValueError("a false_positive verdict needs a reason (why the policy was "
                             "wrong), got none")
        if isinstance(self.expires_at, date) and not isinstance(self.expires_at, datetime):
            object.__setattr__(self, "expires_at", datetime.combine(
                self.expires_at + timedelta(days=1), time(), timezone.utc))
        if self.expires_at is not None:
            if self.kind is not VerdictKind.BENIGN:
                raise ValueError(f"only a benign verdict may expire; {self.kind.value} was "
                                 f"given expires_at={self.expires_at.isoformat()}")
            if self.expires_at.tzinfo is None:
                raise ValueError(f"expires_at {self.expires_at.isoformat()} has no timezone; "
                                 "give an aware datetime (UTC)")
            object.__setattr__(self, "expires_at", self.expires_at.astimezone(timezone.utc))


@dataclass(frozen=True)
class SubjectRef:
    """One subject by kind (`SUBJECT_KINDS`) and id."""

    kind: str
    id: str

    def __post_init__(self) -> None:
        if self.kind not in SUBJECT_KINDS:
            raise ValueError(f"subject kind {self.kind!r} is not one of "
                             f"{', '.join(SUBJECT_KINDS)}")
        if not self.id:
            raise ValueError("a subject needs an id")


@dataclass(frozen=True)
class Filters:
    """Which subjects, besides the time range: each field None (any) or the exact value of
    the event column (`policy` is `policy_id`; `kind` a subject kind)."""

    team: str | None = None
    environment: str | None = None
    cluster: str | None = None
    policy: str | None = None
    kind: str | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in SUBJECT_KINDS:
            raise ValueError(f"subject kind {self.kind!r} is not one of "
                             f"{', '.join(SUBJECT_KINDS)}")


@dataclass(frozen=True)
class QueueGroup:
    """Subjects without a current verdict that share a fingerprint: how many (of each kind),
    the newest and oldest subject time, the highest severity ('' when none reported), and up
    to 20 distinct engines, namespaces and teams among them. `expired` counts those back in
    the queue because their benign verdict expired. Empty values (an event without a
    namespace) are left out of the lists. `newest_subjects`: the group's newest subjects,
    newest first, when the queue was read with them (`queue_groups(..., subjects=N)`)."""

    fingerprint: Fingerprint
    subjects: int
    decisions: int
    violations: int
    newest: datetime
    oldest: datetime
    severity: str
    engines: tuple[str, ...]
    namespaces: tuple[str, ...]
    teams: tuple[str, ...]
    expired: int
    newest_subjects: tuple[Subject, ...] = ()

    @property
    def id(self) -> str:
        return self.fingerprint.id

    @property
    def reason(self) -> str:
        """The group's reason (part of the fingerprint, so every subject has this one)."""
        return self.fingerprint.reason


# The queue's number of groups is exact up to this many (`store.queue_totals`), an estimate
# within a few tenths of a percent beyond, where the page says "about".
EXACT_GROUPS = 32_000


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue, newest group first: `total_groups` and `total_subjects` count
    every group of the selection, not only this page's (`total_subjects` exactly,
    `total_groups` exactly up to `EXACT_GROUPS`: `groups_estimated`)."""

    groups: tuple[QueueGroup, ...]
    total_groups: int
    total_subjects: int
    offset: int
    limit: int

    @property
    def groups_estimated(self) -> bool:
        return self.total_groups > EXACT_GROUPS


@dataclass(frozen=True)
class Subject:
    """One subject with its event's fields and its latest verdict (`verdict` '' when it has
    none; `current` False when that is none, or a benign verdict that expired)."""

    ref: SubjectRef
    time: datetime
    fingerprint: Fingerprint
    namespace: str
    severity: str
    team: str
    service: str
    engine: str
    environment: str
    cluster: str
    verdict: str
    current: bool
    source: str
    rule_id: str
    analyst: str
    expires_at: datetime | None
    triaged_at: datetime | None


@dataclass(frozen=True)
class HistoryEntry:
    """One entry of the verdict history: `previous_verdict` -> `verdict` for one subject,
    given by `analyst` (for a rule: the analyst who made the rule) at `triaged_at`, by hand
    or by the sticky rule `rule_id`; `undoes` names the action an undo reverted."""

    entry_id: str
    action_id: str
    subject: SubjectRef
    subject_time: datetime
    fingerprint: Fingerprint
    previous_verdict: str
    verdict: str
    reason: str
    expires_at: datetime | None
    source: str
    rule_id: str
    analyst: str
    undoes: str
    triaged_at: datetime


@dataclass(frozen=True)
class ActionResult:
    """What one labelling call, undo or rule run wrote: its `action_id` (what `undo` takes),
    how many subjects got an entry, how many were left alone (`skipped`: an undo's subjects
    changed since), and the sticky rule made, if any."""

    action_id: str
    labelled: int
    skipped: int = 0
    rule_id: str | None = None


@dataclass(frozen=True)
class Rule:
    """A sticky rule: subjects of `fingerprint` without any verdict history get `verdict`,
    recorded as given by `created_by`'s rule. `state` is `active` or `disabled`; an active
    rule whose verdict expired no longer applies. `applied` counts the subjects whose current
    verdict it gave."""

    rule_id: str
    fingerprint: Fingerprint
    verdict: Verdict
    state: str
    created_by: str
    created_at: datetime
    changed_by: str
    changed_at: datetime
    applied: int = 0

    def applies(self, now: datetime) -> bool:
        expires = self.verdict.expires_at
        return self.state == ACTIVE and (expires is None or expires > now)


ACTIVE, DISABLED = "active", "disabled"
