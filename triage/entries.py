"""History entries from subject rows, and subject rows as `Subject`s: the one place a write's
rows are built (labels, undos and rule propagation all append through `entries`), so every
entry has the same columns and the same ordering rule.

Ordering: `triaged_at` is the action's time, but strictly later than the subject's latest
entry (+1 ms when the clock has not moved past it), so the latest entry per subject is
always well defined for `triage_verdicts`' ReplacingMergeTree(triaged_at) and for undo.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from triage.fingerprint import Fingerprint
from triage.model import HistoryEntry, Subject, SubjectRef

STEP = timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


def fingerprint_of(row: Mapping[str, Any]) -> Fingerprint:
    """The fingerprint of a subject or history row (`subject_reason` is the event's reason)."""
    return Fingerprint(row["policy_id"], row["rule"], row["resource_kind"],
                       row["resource_name"], row["subject_reason"])


def after(now: datetime, latest: datetime | None) -> datetime:
    """`now`, or 1 ms after `latest` when that is not earlier (see the module docstring)."""
    if latest is None or latest <= _EPOCH:
        return now
    return max(now, latest + STEP)


def entries(rows: Iterable[Mapping[str, Any]], *, action_id: str, now: datetime,
            verdict: str, reason: str, expires_at: datetime | None, source: str,
            rule_id: str, analyst: str, undoes: str = "") -> list[dict[str, Any]]:
    """One history entry per subject row (`store.SUBJECT_COLUMNS`, with `cur_verdict` and
    `cur_triaged_at` when the row has them: the state the entry replaces)."""
    ids: dict[tuple, str] = {}
    out = []
    for row in rows:
        fingerprint = fingerprint_of(row)
        key = (fingerprint.policy_id, fingerprint.rule, fingerprint.resource_kind,
               fingerprint.resource_name, fingerprint.reason)
        if key not in ids:
            ids[key] = fingerprint.id
        out.append({
            "entry_id": new_id(), "action_id": action_id,
            "subject_kind": row["subject_kind"], "subject_id": row["subject_id"],
            "subject_time": row["subject_time"], "fingerprint": ids[key],
            "policy_id": row["policy_id"], "rule": row["rule"],
            "resource_kind": row["resource_kind"], "resource_name": row["resource_name"],
            "subject_reason": row["subject_reason"], "namespace": row["namespace"],
            "severity": row["severity"], "team": row["team"], "service": row["service"],
            "engine": row["engine"], "environment": row["environment"],
            "cluster": row["cluster"], "previous_verdict": row.get("cur_verdict") or "",
            "verdict": verdict, "reason": reason, "expires_at": expires_at, "source": source,
            "rule_id": rule_id, "analyst": analyst, "undoes": undoes,
            "triaged_at": after(now, row.get("cur_triaged_at")),
            "policy_version": row["policy_version"], "enforcement": row["enforcement"],
            "outcome": row["outcome"]})
    return out


def subject(row: Mapping[str, Any]) -> Subject:
    """A subject row with its state (`store.subjects`) as a `Subject`."""
    triaged = row.get("cur_triaged_at")
    return Subject(
        ref=SubjectRef(row["subject_kind"], row["subject_id"]), time=row["subject_time"],
        fingerprint=fingerprint_of(row), namespace=row["namespace"], severity=row["severity"],
        team=row["team"], service=row["service"], engine=row["engine"],
        environment=row["environment"], cluster=row["cluster"],
        verdict=row.get("cur_verdict") or "", current=bool(row.get("is_current")),
        source=row.get("cur_source") or "", rule_id=row.get("cur_rule_id") or "",
        analyst=row.get("cur_analyst") or "", expires_at=row.get("cur_expires_at"),
        triaged_at=triaged if triaged is not None and triaged > _EPOCH else None)


def history_entry(row: Mapping[str, Any]) -> HistoryEntry:
    """A `triage_history` row (`store.HISTORY_COLUMNS`) as a `HistoryEntry`."""
    return HistoryEntry(
        entry_id=row["entry_id"], action_id=row["action_id"],
        subject=SubjectRef(row["subject_kind"], row["subject_id"]),
        subject_time=row["subject_time"], fingerprint=fingerprint_of(row),
        previous_verdict=row["previous_verdict"], verdict=row["verdict"],
        reason=row["reason"], expires_at=row["expires_at"], source=row["source"],
        rule_id=row["rule_id"], analyst=row["analyst"], undoes=row["undoes"],
        triaged_at=row["triaged_at"])
