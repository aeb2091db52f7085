"""The triage queue: subjects in a time range without a current verdict, grouped by
fingerprint (one click can label a group), and the subjects of one group.

Reads only; anyone may read. `now` (default: the server's clock) decides which benign
verdicts have expired: their subjects are back in the queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from clickhouse_connect.driver.client import Client

from triage import store
from triage.entries import subject
from triage.fingerprint import Fingerprint
from triage.model import Filters, QueueGroup, QueuePage, Subject, SubjectRef, check_range

DEFAULT_PAGE = 50
MAX_PAGE = 500


def _page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"page size {limit} is out of range; expected 1 to {MAX_PAGE}")
    if offset < 0:
        raise ValueError(f"offset {offset} is negative")


def queue(client: Client, start: datetime, end: datetime, filters: Filters = Filters(), *,
          limit: int = DEFAULT_PAGE, offset: int = 0, subjects: int = 0,
          now: datetime | None = None) -> QueuePage:
    """One page of the queue over subjects timed in [start, end): groups of subjects without a
    current verdict by fingerprint, newest group first, `limit` groups from `offset`, and the
    queue's totals (`queue_groups` and `queue_totals` in one; a page that wants them at once
    reads the two apart)."""
    now = store.now_or_server(client, now)
    groups = queue_groups(client, start, end, filters, limit=limit, offset=offset,
                          subjects=subjects, now=now)
    total_groups, total_subjects = queue_totals(client, start, end, filters, now=now)
    return QueuePage(groups, total_groups, total_subjects, offset, limit)


def queue_groups(client: Client, start: datetime, end: datetime, filters: Filters = Filters(),
                 *, limit: int = DEFAULT_PAGE, offset: int = 0, subjects: int = 0,
                 now: datetime | None = None) -> tuple[QueueGroup, ...]:
    """`limit` groups of the queue of [start, end) from `offset`, newest group first, each
    with its `subjects` newest subjects (`QueueGroup.newest_subjects`, as `group_subjects`
    gives them) when asked for."""
    start, end = check_range(start, end)
    _page(limit, offset)
    if not 0 <= subjects <= MAX_PAGE:
        raise ValueError(f"subjects {subjects} is out of range; expected 0 to {MAX_PAGE}")
    rows = store.queue_groups(client, start, end, filters, store.now_or_server(client, now),
                              limit, offset, subjects)
    return tuple(QueueGroup(
        fingerprint=Fingerprint(r["policy_id"], r["rule"], r["resource_kind"],
                                r["resource_name"], r["subject_reason"]),
        subjects=int(r["subjects"]), decisions=int(r["decisions"]),
        violations=int(r["violations"]), newest=r["newest"], oldest=r["oldest"],
        severity=r["top_severity"], engines=tuple(v for v in r["engines"] if v),
        namespaces=tuple(v for v in r["namespaces"] if v),
        teams=tuple(v for v in r["teams"] if v), expired=int(r["expired"]),
        newest_subjects=tuple(subject(row) for row in r["newest_subjects"])) for r in rows)


def queue_totals(client: Client, start: datetime, end: datetime, filters: Filters = Filters(),
                 *, now: datetime | None = None) -> tuple[int, int]:
    """The queue of [start, end): (its number of groups, of subjects)."""
    start, end = check_range(start, end)
    return store.queue_totals(client, start, end, filters, store.now_or_server(client, now))


def group_subjects(client: Client, fingerprint: Fingerprint, start: datetime, end: datetime,
                   filters: Filters = Filters(), *, include_current: bool = False,
                   limit: int = DEFAULT_PAGE, offset: int = 0, now: datetime | None = None
                   ) -> list[Subject]:
    """The subjects of one fingerprint timed in [start, end), newest first: those in the
    queue, or all of them with `include_current`."""
    start, end = check_range(start, end)
    _page(limit, offset)
    frame = store.subjects(client, start, end, filters, store.now_or_server(client, now),
                           fingerprint=fingerprint, include_current=include_current,
                           limit=limit, offset=offset)
    return [subject(row) for row in frame.iter_rows(named=True)]


def find_subjects(client: Client, refs: Sequence[SubjectRef], start: datetime, end: datetime,
                  *, now: datetime | None = None) -> list[Subject]:
    """The subjects `refs` names, looked up among those timed in [start, end) (found or not:
    the result may be shorter), with their latest verdict."""
    start, end = check_range(start, end)
    if not refs:
        return []
    ids = {kind: [r.id for r in refs if r.kind == kind] for kind in ("decision", "violation")}
    frame = store.subjects(client, start, end, Filters(), store.now_or_server(client, now), ids=ids,
                           include_current=True, limit=len(refs))
    return [subject(row) for row in frame.iter_rows(named=True)]
