"""Giving verdicts and taking them back: label one or more subjects, a fingerprint group, or
every subject a filter selects; undo an action; read the history and the current verdicts.

Every write checks the actor's role first (`access.require_labeller`: analyst, sre or admin,
else `TriagePermissionError` and nothing is written), then appends one history entry per
subject (`store.append_history`: INSERT only; the view keeps `triage_verdicts`, what M4
reads, the latest per subject). The call returns only after the insert has returned, so a
confirmed verdict is stored. Each call is one *action* with an `action_id`; `undo(action_id)`
appends, for each of its subjects still at that entry, a new entry restoring the state before
it (verdict, reason, expiry, source and rule), recorded as the undoing user's.

`now` (default: the server's clock) stamps the entries and decides which benign verdicts
have expired. A benign verdict's `expires_at` must be after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from triage import sticky
from triage import store
from triage.access import Actor, require_labeller
from triage.entries import entries, history_entry, new_id
from triage.fingerprint import Fingerprint
from triage.model import (
    HAND,
    NO_VERDICT,
    ActionResult,
    Filters,
    HistoryEntry,
    SubjectRef,
    Verdict,
    check_range,
)

MAX_BULK = 100_000  # subjects one action may label


def _check_expiry(verdict: Verdict, now: datetime) -> None:
    if verdict.expires_at is not None and verdict.expires_at <= now:
        raise ValueError(f"benign verdict expires at {verdict.expires_at.isoformat()}, which "
                         f"is not after now ({now.isoformat()}); give a later expiry or none")


def _write(client: Client, actor: Actor, rows: list[dict[str, Any]], verdict: Verdict,
           now: datetime) -> ActionResult:
    action = new_id()
    written = store.append_history(client, entries(
        rows, action_id=action, now=now, verdict=verdict.kind.value, reason=verdict.reason,
        expires_at=verdict.expires_at, source=HAND, rule_id="", analyst=actor.name))
    return ActionResult(action, written)


def _bounded(frame) -> list[dict[str, Any]]:
    if frame.height > MAX_BULK:
        raise ValueError(f"more than {MAX_BULK} subjects match; label at most {MAX_BULK} at "
                         "once (narrow the time range or the filters)")
    return list(frame.iter_rows(named=True))


def label(client: Client, actor: Actor, subjects: Sequence[SubjectRef], verdict: Verdict, *,
          start: datetime, end: datetime, now: datetime | None = None) -> ActionResult:
    """Give `verdict` to the named subjects (timed in [start, end), where they are looked
    up), whatever their current verdict. LookupError naming the missing ones, and nothing
    written, when some are not found."""
    require_labeller(actor, "label triage subjects")
    start, end = check_range(start, end)
    now = store.now_or_server(client, now)
    _check_expiry(verdict, now)
    wanted = list(dict.fromkeys(subjects))
    if not wanted:
        raise ValueError("no subjects to label")
    if len(wanted) > MAX_BULK:
        raise ValueError(f"{len(wanted)} subjects given; label at most {MAX_BULK} at once")
    ids = {kind: [r.id for r in wanted if r.kind == kind] for kind in ("decision", "violation")}
    rows = list(store.subjects(client, start, end, Filters(), now, ids=ids,
                               include_current=True, limit=len(wanted)).iter_rows(named=True))
    found = {(r["subject_kind"], r["subject_id"]) for r in rows}
    missing = [f"{r.kind}:{r.id}" for r in wanted if (r.kind, r.id) not in found]
    if missing:
        raise LookupError(f"no subject {', '.join(missing[:10])}"
                          f"{' and more' if len(missing) > 10 else ''} timed in "
                          f"[{start.isoformat()}, {end.isoformat()}); nothing was labelled")
    return _write(client, actor, rows, verdict, now)


def label_group(client: Client, actor: Actor, fingerprint: Fingerprint, verdict: Verdict, *,
                start: datetime, end: datetime, filters: Filters = Filters(),
                relabel: bool = False, sticky_rule: bool = False,
                now: datetime | None = None) -> ActionResult:
    """Give `verdict` to every subject of one fingerprint group timed in [start, end) that
    the filters select: those in the queue, or (`relabel`) those with a current verdict too.
    With `sticky_rule`, also make the verdict sticky for the fingerprint (`sticky.make_sticky`:
    its later subjects get it when the rules are applied); `rule_id` of the result names it."""
    require_labeller(actor, "label triage subjects")
    start, end = check_range(start, end)
    now = store.now_or_server(client, now)
    _check_expiry(verdict, now)
    rows = _bounded(store.subjects(client, start, end, filters, now, fingerprint=fingerprint,
                                   include_current=relabel, limit=MAX_BULK + 1))
    result = _write(client, actor, rows, verdict, now)
    if sticky_rule:
        rule = sticky.make_sticky(client, actor, fingerprint, verdict, now=now)
        result = ActionResult(result.action_id, result.labelled, rule_id=rule.rule_id)
    return result


def label_matching(client: Client, actor: Actor, verdict: Verdict, *, start: datetime,
                   end: datetime, filters: Filters = Filters(), relabel: bool = False,
                   now: datetime | None = None) -> ActionResult:
    """Bulk: give `verdict` to every subject timed in [start, end) that the filters select
    (in the queue, or with `relabel` also those with a current verdict), at most `MAX_BULK`
    (ValueError, nothing written, beyond)."""
    require_labeller(actor, "label triage subjects")
    start, end = check_range(start, end)
    now = store.now_or_server(client, now)
    _check_expiry(verdict, now)
    rows = _bounded(store.subjects(client, start, end, filters, now, include_current=relabel,
                                   limit=MAX_BULK + 1))
    return _write(client, actor, rows, verdict, now)


def undo(client: Client, actor: Actor, action_id: str, *, now: datetime | None = None
         ) -> ActionResult:
    """Undo one action: for each of its subjects whose latest entry is still the action's, a
    new entry restoring the state before it (no verdict, when it was the first); subjects
    labelled again since are left alone and counted as `skipped`. LookupError for an action
    id the history does not hold. The undo is itself an action (undo it to redo)."""
    require_labeller(actor, "undo triage verdicts")
    now = store.now_or_server(client, now)
    plan = store.undo_plan(client, action_id)
    if not plan:
        raise LookupError(f"no action {action_id!r} in the verdict history")
    undo_id = new_id()
    out = []
    for row in plan:
        if not row["still_latest"]:
            continue
        found = bool(row["prior_found"])
        restored = {"cur_verdict": row["verdict"], "cur_triaged_at": row["triaged_at"]}
        (entry,) = entries(
            [{**row, **restored}], action_id=undo_id, now=now,
            verdict=row["prior_verdict"] if found else NO_VERDICT,
            reason=row["prior_reason"] if found else "",
            expires_at=row["prior_expires_at"] if found else None,
            source=row["prior_source"] if found else HAND,
            rule_id=row["prior_rule_id"] if found else "", analyst=actor.name,
            undoes=action_id)
        out.append(entry)
    written = store.append_history(client, out)
    return ActionResult(undo_id, written, skipped=len(plan) - written)


def history(client: Client, *, subject: SubjectRef | None = None,
            action_id: str | None = None, start: datetime | None = None,
            end: datetime | None = None, limit: int = 100, offset: int = 0
            ) -> list[HistoryEntry]:
    """Verdict history entries, newest first: of one subject, of one action, and/or triaged
    in [start, end) (at least one of them)."""
    if start is not None or end is not None:
        if start is None or end is None:
            raise ValueError("give both start and end of the triaged_at range, or neither")
        start, end = check_range(start, end)
    rows = store.history(client, subject=None if subject is None else (subject.kind, subject.id),
                         action_id=action_id, start=start, end=end, limit=limit, offset=offset)
    return [history_entry(row) for row in rows]


def current_verdicts(client: Client, start: datetime, end: datetime,
                     filters: Filters = Filters(), *, verdict: str | None = None,
                     source: str | None = None, limit: int = 100, offset: int = 0,
                     now: datetime | None = None) -> list[dict[str, Any]]:
    """The current verdicts of subjects timed in [start, end), newest subject first, as rows
    of `store.VERDICT_COLUMNS` (`source` 'rule' with `rule_id` and the rule's analyst marks a
    propagated one); optionally of one verdict kind and one source."""
    start, end = check_range(start, end)
    return store.current_verdicts(client, start, end, filters, store.now_or_server(client, now),
                                  verdict=verdict, source=source, limit=limit, offset=offset)
