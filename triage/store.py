"""Every ClickHouse read and write of the `triage` package, one named function each.

The rule (tests/unit/test_triage_store.py holds it): no other module of `triage` holds SQL or
calls the client. Tables are named from the registry (`schemas.tables`, `schemas.events`);
values are bound parameters (`{name:Type}`) or inserted by column name; identifiers in SQL come
only from this module's constants, never from a value.

Writes are INSERTs only: `triage_history` and `triage_rules` are append-only histories, and
`triage_verdicts` (the latest entry per subject, what M4 reads) is filled from
`triage_history` by the materialized view of migration 0012, in the same insert. Nothing here
issues UPDATE, DELETE or ALTER.

Rows go in as mappings column -> value (`HISTORY_COLUMNS`, `RULE_COLUMNS`) and come out as
dicts (datetimes timezone-aware UTC) or Polars frames; the modules that own the objects build
them. Every read of subjects is bounded by a time range, their time in [start, end). Decision
subjects are read from `triage_subjects` (migration 0018: the deny and warn decisions, the
columns a subject has, copied at insert time), not from every decision; violation subjects
from `triage_violations` (migration 0020: each violation's first opening, its fields and its
latest status, kept at insert time), not from every violation event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import polars as pl
from clickhouse_connect.driver.client import Client

from schemas.events import SEVERITIES
from schemas.tables import (
    TRIAGE_HISTORY,
    TRIAGE_RULES,
    TRIAGE_SUBJECTS,
    TRIAGE_VERDICTS,
    TRIAGE_VIOLATIONS,
)
from triage.fingerprint import Fingerprint
from triage.model import Filters

Row = Mapping[str, Any]

HISTORY_COLUMNS = (
    "entry_id", "action_id", "subject_kind", "subject_id", "subject_time", "fingerprint",
    "policy_id", "rule", "resource_kind", "resource_name", "subject_reason", "namespace",
    "severity", "team", "service", "engine", "environment", "cluster", "previous_verdict",
    "verdict", "reason", "expires_at", "source", "rule_id", "analyst", "undoes", "triaged_at",
    "policy_version", "enforcement", "outcome")
RULE_COLUMNS = (
    "rule_id", "fingerprint", "policy_id", "rule", "resource_kind", "resource_name",
    "subject_reason", "verdict", "reason", "expires_at", "state", "created_by", "created_at",
    "changed_by", "changed_at")
VERDICT_COLUMNS = ("subject_kind", "subject_id", "subject_time", "fingerprint", "policy_id",
                   "verdict", "reason", "expires_at", "source", "rule_id", "analyst", "team",
                   "environment", "cluster", "triaged_at")
# a subject's event fields, in the order every subject query gives them (a violation has no
# policy_version, enforcement or outcome: '')
SUBJECT_COLUMNS = ("subject_kind", "subject_id", "subject_time", "policy_id", "rule",
                   "resource_kind", "resource_name", "subject_reason", "namespace", "severity",
                   "team", "service", "engine", "environment", "cluster", "policy_version",
                   "enforcement", "outcome")
# Filters field -> column of the subject queries and of triage_verdicts
_FILTER_COLUMNS = {"team": "team", "environment": "environment", "cluster": "cluster",
                   "policy": "policy_id", "kind": "subject_kind"}
_RANKS = list(reversed(SEVERITIES))  # info .. critical: a higher index is more severe
_T = "DateTime64(3, 'UTC')"
LIST_LIMIT = 20  # distinct engines / namespaces / teams listed per group
# the queue's grouping key is `fingerprint`: cityHash64(policy_id, rule, resource_kind,
# resource_name, reason), stored at insert time for decisions (triage_subjects, migration 0018)
# and violations (triage_violations, 0020, from their first opening); a collision of two of a
# range's groups (64 bits) would merge them.
# the same of a `Fingerprint.as_parameters()`
_HASH_OF_PARAMETERS = ("cityHash64({fp_policy_id:String}, {fp_rule:String}, "
                       "{fp_resource_kind:String}, {fp_resource_name:String}, {fp_reason:String})")
# the queue's page: the newest groups are looked for in the range's last 1/32nd, then in an
# 8 times longer tail, ... until the tail holds a page of groups or is the whole range
_TAIL_PARTS = 32
_TAIL_GROWTH = 8


def _utc(value):
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None \
            else value.astimezone(timezone.utc)
    return value


def _select(client: Client, sql: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    result = client.query(sql, parameters=parameters)
    return [{c: _utc(v) for c, v in zip(result.column_names, row)}
            for row in result.result_rows]


def _frame(client: Client, sql: str, parameters: dict[str, Any]) -> pl.DataFrame:
    frame = pl.from_arrow(client.query_arrow(sql, parameters=parameters))
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(  # categoricals (LowCardinality) as text, times as aware UTC
        [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t == pl.Categorical]
        + [pl.col(c).dt.replace_time_zone("UTC") if t.time_zone is None  # type: ignore
           else pl.col(c).dt.convert_time_zone("UTC")
           for c, t in frame.schema.items() if isinstance(t, pl.Datetime)])


def _insert(client: Client, table: str, columns: tuple[str, ...], rows: Iterable[Row]) -> int:
    values = [[row[c] for c in columns] for row in rows]
    if values:
        client.insert(table, values, column_names=list(columns))
    return len(values)


def server_now(client: Client) -> datetime:
    """The server's clock (milliseconds, UTC): the time entries are stamped with, so they
    order with ingest times (the batch's late-data probe compares them)."""
    text = str(client.command("SELECT now64(3, 'UTC')"))
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def now_or_server(client: Client, now: datetime | None) -> datetime:
    """`now` (timezone-aware, as UTC) when given, else the server's clock."""
    if now is None:
        return server_now(client)
    if now.tzinfo is None:
        raise ValueError(f"now {now.isoformat()} has no timezone; give an aware datetime")
    return now.astimezone(timezone.utc)


# -- subjects -----------------------------------------------------------------------------------

def _filter_sql(filters: Filters, params: dict[str, Any], prefix: str = "f_",
                columns: Mapping[str, str] = _FILTER_COLUMNS, skip: tuple[str, ...] = ()
                ) -> str:
    parts = []
    for name, column in columns.items():
        value = getattr(filters, name)
        if value is not None and name not in skip:
            params[prefix + name] = value
            parts.append(f" AND {column} = {{{prefix}{name}:String}}")
    return "".join(parts)


# a violation subject's fields, from its first 'opened' event: the subject columns in the order
# of `triage_violations.fields` (migration 0020)
_VIOLATION_FIELDS = ("policy_id", "rule", "resource_kind", "resource_name", "subject_reason",
                     "namespace", "severity", "team", "service", "engine", "environment",
                     "cluster")
_LEAN_COLUMNS = ("subject_kind", "subject_id", "subject_time", "fingerprint")
# what a queue group's newest subjects carry beyond the group's fingerprint fields
_NEWEST_FIELDS = ("subject_kind", "subject_id", "subject_time", "namespace", "severity", "team",
                  "service", "engine", "environment", "cluster", "cur_verdict", "cur_source",
                  "cur_rule_id", "cur_analyst", "cur_expires_at", "cur_triaged_at",
                  "is_current")


def _subjects_sql(params: dict[str, Any], filters: Filters, *,
                  fingerprint: Fingerprint | None = None,
                  ids: Mapping[str, Sequence[str]] | None = None,
                  since: datetime | None = None, hashes: Sequence[int] | None = None,
                  tail: bool = False, lean: bool = False) -> str:
    """The subjects with time in [start, end) as one query of `SUBJECT_COLUMNS`: deny / warn
    decisions (one row per event id) and open violations, filtered; with `ids` only those
    (kind -> ids), with `since` only those ingested (a violation: any of its events) since;
    with `tail` only those timed in [{tail_start}, end); with `hashes` only the fingerprints
    whose hash is one of them, and that hash as a last column, `fingerprint`. `lean` (one kind
    at a time): the `_LEAN_COLUMNS` only (what grouping by fingerprint needs) and each
    subject's `id_hash` after them (migrations 0019, 0020)."""
    if since is not None:
        params["since"] = since
    if hashes is not None:
        params["hashes"] = [int(h) for h in hashes]
    if fingerprint is not None:
        params.update(fingerprint.as_parameters())
    first = f"{{{'tail_start' if tail else 'start'}:{_T}}}"  # the first subject time wanted
    arms = [arm(params, filters, first, fingerprint, ids, since, hashes is not None, tail, lean)
            for kind, arm in (("decision", _decisions_arm), ("violation", _violations_arm))
            if filters.kind in (None, kind) and (ids is None or ids.get(kind))]
    if not arms:  # no kind selected: no rows, the same columns
        columns = _LEAN_COLUMNS if lean else SUBJECT_COLUMNS + (
            ("fingerprint",) if hashes is not None else ())
        arms.append("SELECT " + ", ".join(
            "toDateTime64(0, 3, 'UTC') AS subject_time" if c == "subject_time" else
            "toUInt64(0) AS fingerprint" if c == "fingerprint" else f"'' AS {c}"
            for c in columns) + " WHERE 0")
    return " UNION ALL ".join(f"({arm})" for arm in arms)  # no SELECT * layer: each costs analysis


_FINGERPRINT_FIELDS = ("AND policy_id = {fp_policy_id:String} AND rule = {fp_rule:String} "
                       "AND resource_kind = {fp_resource_kind:String} "
                       "AND resource_name = {fp_resource_name:String} ")


def _decisions_arm(params: dict[str, Any], filters: Filters, first: str,
                   fingerprint: Fingerprint | None, ids: Mapping[str, Sequence[str]] | None,
                   since: datetime | None, hashed: bool, tail: bool, lean: bool) -> str:
    extra = _filter_sql(filters, params, skip=("kind",))
    if ids is not None:
        params["decision_ids"] = list(ids["decision"])
        extra += " AND event_id IN {decision_ids:Array(String)}"
    if since is not None:
        extra += f" AND ingested_at >= {{since:{_T}}}"
    if fingerprint is not None:  # the stored hash first: one integer column to scan
        extra += (f" AND fingerprint = {_HASH_OF_PARAMETERS} " + _FINGERPRINT_FIELDS
                  + "AND reason = {fp_reason:String}")
    if hashed:
        extra += " AND fingerprint IN {hashes:Array(UInt64)}"
    # one row per event id: a few subjects asked for (by id or fingerprint) are read as
    # stored and their duplicates (the same decision inserted twice) dropped by LIMIT BY,
    # which reads only the matching rows; a whole range merges with FINAL, which is cheaper
    # than LIMIT BY over every row but reads every column of the range when filtered
    few = fingerprint is not None or hashed or ids is not None
    columns = "fingerprint, id_hash" if lean else (
        "policy_id, rule, resource_kind, resource_name, reason AS subject_reason, namespace, "
        "severity, team, service, engine, environment, cluster, policy_version, enforcement, "
        f"outcome{', fingerprint' * hashed}")
    return ("SELECT 'decision' AS subject_kind, event_id AS subject_id, "
            f"event_time AS subject_time, {columns} "
            f"FROM {TRIAGE_SUBJECTS}{'' if few else ' FINAL'} "
            f"WHERE event_time >= {first} AND event_time < {{end:{_T}}} "
            f"AND outcome IN ('deny', 'warn'){extra}{' LIMIT 1 BY event_id' * few}")


_NO_DECISION_FIELDS = ", '' AS policy_version, '' AS enforcement, '' AS outcome"


def _violations_arm(params: dict[str, Any], filters: Filters, first: str,
                    fingerprint: Fingerprint | None, ids: Mapping[str, Sequence[str]] | None,
                    since: datetime | None, hashed: bool, tail: bool, lean: bool) -> str:
    """A violation is a subject from its first 'opened' event (its time and fields) while its
    latest event is 'opened' or 'updated': that state per violation is kept by
    `triage_violations` (migration 0020), read here with FINAL -- its rows merged into one per
    violation as the read goes -- and then filtered by that merged state: first opened in
    [first, end), still open, and the fingerprints and ids asked for. A read of a few
    fingerprints or ids first picks the violations with a row opened in [first, end) that
    match (the row holding a violation's first opening has that opening's time and
    fingerprint as its own), so only theirs are merged. The fields are finalized only where
    they are shown or compared."""
    chosen = ""  # what a violation's opening row tells by itself
    if ids is not None:
        params["violation_ids"] = list(ids["violation"])
        chosen += " AND violation_id IN {violation_ids:Array(String)}"
    if fingerprint is not None:
        chosen += f" AND finalizeAggregation(fingerprint) = {_HASH_OF_PARAMETERS}"
    if hashed:
        chosen += " AND finalizeAggregation(fingerprint) IN {hashes:Array(UInt64)}"
    opened = f"opened_at >= {first} AND opened_at < {{end:{_T}}}"
    where = chosen and (f" AND id_hash IN (SELECT id_hash FROM {TRIAGE_VIOLATIONS} "
                        f"WHERE {opened}{chosen}){chosen}")
    if since is not None:
        where += f" AND ingested_at >= {{since:{_T}}}"
    outer = _filter_sql(filters, params, skip=("kind",))
    if fingerprint is not None:  # the hash (above), then the fields: a collision
        outer += " " + _FINGERPRINT_FIELDS + "AND subject_reason = {fp_reason:String}"
    fields = not lean or fingerprint is not None or any(
        getattr(filters, name) is not None for name in _FILTER_COLUMNS if name != "kind")
    columns = ", ".join(f"f.{i} AS {c}" for i, c in enumerate(_VIOLATION_FIELDS, 1))
    merged = (
        "SELECT violation_id AS subject_id, id_hash, opened_at AS opened, "
        "finalizeAggregation(fingerprint) AS fp"
        f"{', finalizeAggregation(fields) AS f' * fields} "
        f"FROM {TRIAGE_VIOLATIONS} FINAL WHERE {opened} "
        f"AND finalizeAggregation(status) IN ('opened', 'updated'){where}")
    subjects = (
        "SELECT 'violation' AS subject_kind, subject_id, assumeNotNull(opened) AS subject_time"
        f"{', ' + columns if fields else ''}"
        f"{_NO_DECISION_FIELDS * (not lean)}, fp AS fingerprint, id_hash FROM ({merged}) "
        f"WHERE 1 = 1{outer}")
    wanted = (*_LEAN_COLUMNS, "id_hash") if lean else SUBJECT_COLUMNS + (
        ("fingerprint",) if hashed else ())
    return f"SELECT {', '.join(wanted)} FROM ({subjects})"


def _queued_sql(params: dict[str, Any], filters: Filters, *, tail: bool = False) -> str:
    """The subjects of `_subjects_sql` without a current verdict at {now}, as its
    `_LEAN_COLUMNS`: what the queue's counts and its page read for every subject of a range
    (decisions from the narrow columns of `triage_subjects`). Each kind's subjects are
    checked against that kind's current verdicts by set membership, no join, by `id_hash`
    (cityHash64 of the subject id, stored: migrations 0019, 0020). With `tail` only the
    subjects timed in [{tail_start}, end)."""
    first = f"{{{'tail_start' if tail else 'start'}:{_T}}}"
    arms = []
    for kind in ("decision", "violation"):
        if filters.kind not in (None, kind):
            continue
        times = "" if kind == "violation" else (
            f" AND subject_time >= {first} AND subject_time < {{end:{_T}}}")
        subjects = _subjects_sql(params, replace(filters, kind=kind), tail=tail, lean=True)
        arms.append(f"SELECT {', '.join(_LEAN_COLUMNS)} FROM ({subjects}) "
                    "WHERE id_hash NOT IN (SELECT cityHash64(subject_id) FROM "
                    f"{TRIAGE_VERDICTS} FINAL WHERE subject_kind = '{kind}'"
                    f"{times} AND verdict != '' AND (expires_at IS NULL OR expires_at > "
                    f"{{now:{_T}}}))")
    return " UNION ALL ".join(arms) or _subjects_sql(params, filters, lean=True)  # no rows


def _with_state_sql(params: dict[str, Any], subjects: str) -> str:
    """`subjects` with their latest verdict (cur_*; '' / NULL / 1970 without one) and whether
    it is current at {now} (`is_current`) or a benign verdict expired by then (`is_expired`)."""
    return (
        f"SELECT s.*, v.verdict AS cur_verdict, v.source AS cur_source, "
        "v.rule_id AS cur_rule_id, v.analyst AS cur_analyst, v.expires_at AS cur_expires_at, "
        "v.triaged_at AS cur_triaged_at, v.entry_id AS cur_entry_id, "
        f"(v.verdict != '' AND (v.expires_at IS NULL OR v.expires_at > {{now:{_T}}})) "
        "AS is_current, (v.verdict = 'benign' AND v.expires_at IS NOT NULL "
        f"AND v.expires_at <= {{now:{_T}}}) AS is_expired "
        f"FROM ({subjects}) AS s LEFT JOIN (SELECT subject_kind, subject_id, verdict, source, "
        "rule_id, analyst, expires_at, triaged_at, entry_id "
        f"FROM {TRIAGE_VERDICTS} FINAL WHERE subject_kind = 'violation' OR "
        f"(subject_time >= {{start:{_T}}} AND subject_time < {{end:{_T}}})) AS v "
        "ON s.subject_kind = v.subject_kind AND s.subject_id = v.subject_id")


def queue_totals(client: Client, start: datetime, end: datetime, filters: Filters,
                 now: datetime) -> tuple[int, int]:
    """The queue of [start, end) at `now`: (the number of its groups, of its subjects).

    Subjects are counted exactly. Groups are distinct fingerprint hashes counted by
    uniqCombined64(20): a set of the hashes while it holds at most 2^15 (exact, as the
    grouping itself is: up to 64-bit collisions), a HyperLogLog of 2^20 registers beyond
    (standard error ~0.1 %). An exact count of ~600k distinct hashes held them all in a hash
    table, a third of the read (bench/RESULTS.md); a queue that large is filtered, not paged
    through, so it is shown as "about" (`model.EXACT_GROUPS`, below the switch)."""
    params: dict[str, Any] = {"start": start, "end": end, "now": now}
    (row,) = _select(client, "SELECT uniqCombined64(20)(fingerprint) AS groups, "
                             f"count() AS subjects FROM ({_queued_sql(params, filters)})",
                     params)
    return int(row["groups"]), int(row["subjects"])


def queue_groups(client: Client, start: datetime, end: datetime, filters: Filters,
                 now: datetime, limit: int, offset: int, subjects: int = 0
                 ) -> list[dict[str, Any]]:
    """Subjects in [start, end) without a current verdict at `now`, grouped by their
    fingerprint fields, newest group first: the page of `limit` groups from `offset`, each
    with its counts, newest and oldest subject, top severity, engines, namespaces and teams,
    and (`newest_subjects`) its `subjects` newest subjects as rows of `SUBJECT_COLUMNS` and
    their state, newest first (as `subjects()` orders them). Groups whose newest subjects tie
    are ordered by the fingerprint hash.

    Which groups: a group's newest subject is its newest in any tail [t, end) of the range
    that holds one of its subjects, and a group with none there is older than every group
    found there; so the page's groups are those of the shortest tail (`_TAIL_PARTS`,
    `_TAIL_GROWTH`) that holds `offset + limit` groups (or the whole range), read narrow.
    Then only those groups are read whole, over the whole range."""
    wanted = offset + limit
    params: dict[str, Any] = {"start": start, "end": end, "now": now, "wanted": wanted}
    newest = (f"SELECT fingerprint FROM ({_queued_sql(params, filters, tail=True)}) "
              "GROUP BY fingerprint ORDER BY max(subject_time) DESC, fingerprint "
              "LIMIT {wanted:UInt32}")
    tail = (end - start) / _TAIL_PARTS
    while True:
        params["tail_start"] = max(start, end - tail)
        page = [r["fingerprint"] for r in _select(client, newest, params)][offset:]
        if len(page) >= limit or params["tail_start"] == start:
            break
        tail *= _TAIL_GROWTH
    if not page:
        return []
    params = {"start": start, "end": end, "now": now, "ranks": _RANKS, "subjects": subjects}
    whole = _with_state_sql(params, _subjects_sql(params, filters, hashes=page))
    keys = "policy_id, rule, resource_kind, resource_name, subject_reason"
    # a group's newest subjects: the smallest by (-time in ms, kind, id)
    newest = (f"groupArraySorted({{subjects:UInt32}})((-toUnixTimestamp64Milli(subject_time), "
              f"{', '.join(_NEWEST_FIELDS)})) AS newest_rows, " if subjects else "")
    details = {r["fingerprint"]: r for r in _select(client, (
        f"SELECT fingerprint, {', '.join(f'any({k}) AS {k}' for k in keys.split(', '))}, "
        f"{newest}"
        "count() AS subjects, countIf(subject_kind = 'decision') AS decisions, "
        "countIf(subject_kind = 'violation') AS violations, countIf(is_expired) AS expired, "
        "max(subject_time) AS newest, min(subject_time) AS oldest, "
        "arrayElement({ranks:Array(String)}, "
        "toUInt64(max(indexOf({ranks:Array(String)}, severity)))) AS top_severity, "
        f"arraySort(groupUniqArray({LIST_LIMIT})(engine)) AS engines, "
        f"arraySort(groupUniqArray({LIST_LIMIT})(namespace)) AS namespaces, "
        f"arraySort(groupUniqArray({LIST_LIMIT})(team)) AS teams "
        f"FROM ({whole}) WHERE NOT is_current GROUP BY fingerprint"), params)}
    rows = [details[h] for h in page if h in details]
    for row in rows:
        fields = {k: row[k] for k in keys.split(", ")}
        row["newest_subjects"] = [
            {**fields, **dict(zip(_NEWEST_FIELDS, (_utc(v) for v in values[1:])))}
            for values in row.pop("newest_rows", ())]
    return rows


def subjects(client: Client, start: datetime, end: datetime, filters: Filters, now: datetime,
             *, fingerprint: Fingerprint | None = None,
             ids: Mapping[str, Sequence[str]] | None = None, include_current: bool = False,
             limit: int, offset: int = 0) -> pl.DataFrame:
    """Subjects in [start, end) (`SUBJECT_COLUMNS` and their state, see `_with_state_sql`),
    newest first, `limit` from `offset`: those of one fingerprint or with the given ids
    only, and without a current verdict unless `include_current`."""
    params: dict[str, Any] = {"start": start, "end": end, "now": now, "limit": limit,
                              "offset": offset}
    base = _with_state_sql(params, _subjects_sql(params, filters, fingerprint=fingerprint,
                                                 ids=ids))
    where = "" if include_current else " WHERE NOT is_current"
    return _frame(client, f"SELECT * FROM ({base}){where} ORDER BY subject_time DESC, "
                          "subject_kind, subject_id LIMIT {limit:UInt32} OFFSET {offset:UInt32}",
                  params)


# -- the verdict history ------------------------------------------------------------------------

def append_history(client: Client, entries: Iterable[Row]) -> int:
    """Append entries (by `HISTORY_COLUMNS`) to `triage_history`; the view copies each to
    `triage_verdicts`. Returns how many."""
    return _insert(client, TRIAGE_HISTORY, HISTORY_COLUMNS, entries)


def undo_plan(client: Client, action_id: str) -> list[dict[str, Any]]:
    """The entries of one action (`HISTORY_COLUMNS`), each with `still_latest` (it is its
    subject's latest entry) and the subject's state before it: `prior_found` (1 when an
    earlier entry exists), `prior_verdict`, `prior_reason`, `prior_expires_at`,
    `prior_source`, `prior_rule_id`."""
    cols = ", ".join(f"u.{c} AS {c}" for c in HISTORY_COLUMNS)
    action = f"SELECT * FROM {TRIAGE_HISTORY} WHERE action_id = {{action:String}}"
    sql = (
        f"SELECT {cols}, v.entry_id = u.entry_id AS still_latest, p.found AS prior_found, "
        "p.verdict AS prior_verdict, p.reason AS prior_reason, "
        "p.expires_at AS prior_expires_at, p.source AS prior_source, "
        f"p.rule_id AS prior_rule_id FROM ({action}) AS u "
        f"LEFT JOIN (SELECT subject_kind, subject_id, entry_id FROM {TRIAGE_VERDICTS} FINAL "
        f"WHERE (subject_kind, subject_id) IN (SELECT subject_kind, subject_id FROM ({action}))"
        ") AS v ON v.subject_kind = u.subject_kind AND v.subject_id = u.subject_id "
        "LEFT JOIN (SELECT h.subject_kind AS subject_kind, h.subject_id AS subject_id, "
        "toUInt8(1) AS found, argMax(h.verdict, h.triaged_at) AS verdict, "
        "argMax(h.reason, h.triaged_at) AS reason, "
        "argMax(h.expires_at, h.triaged_at) AS expires_at, "
        "argMax(h.source, h.triaged_at) AS source, argMax(h.rule_id, h.triaged_at) AS rule_id "
        f"FROM {TRIAGE_HISTORY} AS h INNER JOIN ({action}) AS a "
        "ON h.subject_kind = a.subject_kind AND h.subject_id = a.subject_id "
        "WHERE h.triaged_at < a.triaged_at GROUP BY h.subject_kind, h.subject_id) AS p "
        "ON p.subject_kind = u.subject_kind AND p.subject_id = u.subject_id "
        "ORDER BY u.subject_kind, u.subject_id")
    return _select(client, sql, {"action": action_id})


def history(client: Client, *, subject: tuple[str, str] | None = None,
            action_id: str | None = None, start: datetime | None = None,
            end: datetime | None = None, limit: int = 100, offset: int = 0
            ) -> list[dict[str, Any]]:
    """History entries (`HISTORY_COLUMNS`), newest first: of one subject (kind, id), of one
    action, and/or triaged in [start, end). At least one of the three must be given."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    where = []
    if subject is not None:
        params.update(kind=subject[0], id=subject[1])
        where.append("subject_kind = {kind:String} AND subject_id = {id:String}")
    if action_id is not None:
        params["action"] = action_id
        where.append("action_id = {action:String}")
    if start is not None and end is not None:
        params.update(start=start, end=end)
        where.append(f"triaged_at >= {{start:{_T}}} AND triaged_at < {{end:{_T}}}")
    if not where:
        raise ValueError("history needs a subject, an action id or a triaged_at range")
    return _select(client, f"SELECT {', '.join(HISTORY_COLUMNS)} FROM {TRIAGE_HISTORY} "
                           f"WHERE {' AND '.join(where)} ORDER BY triaged_at DESC, entry_id "
                           "LIMIT {limit:UInt32} OFFSET {offset:UInt32}", params)


def current_verdicts(client: Client, start: datetime, end: datetime, filters: Filters,
                     now: datetime, *, verdict: str | None = None, source: str | None = None,
                     limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """Current verdicts (`VERDICT_COLUMNS`) of subjects timed in [start, end), newest subject
    first: optionally of one verdict and one source (hand / rule)."""
    params: dict[str, Any] = {"start": start, "end": end, "now": now, "limit": limit,
                              "offset": offset}
    where = _filter_sql(filters, params)
    for name, value in (("verdict", verdict), ("source", source)):
        if value is not None:
            params[name] = value
            where += f" AND {name} = {{{name}:String}}"
    return _select(client, f"SELECT {', '.join(VERDICT_COLUMNS)} FROM {TRIAGE_VERDICTS} FINAL "
                           f"WHERE subject_time >= {{start:{_T}}} AND subject_time < {{end:{_T}}} "
                           f"AND verdict != '' AND (expires_at IS NULL OR expires_at > "
                           f"{{now:{_T}}}){where} ORDER BY subject_time DESC, subject_kind, "
                           "subject_id LIMIT {limit:UInt32} OFFSET {offset:UInt32}", params)


# -- sticky rules -------------------------------------------------------------------------------

def append_rule_states(client: Client, states: Iterable[Row]) -> int:
    """Append rule states (by `RULE_COLUMNS`) to `triage_rules`."""
    return _insert(client, TRIAGE_RULES, RULE_COLUMNS, states)


_LATEST_RULES = (f"SELECT {', '.join(RULE_COLUMNS)} FROM {TRIAGE_RULES} "
                 "ORDER BY rule_id, changed_at DESC LIMIT 1 BY rule_id")


def rules(client: Client) -> list[dict[str, Any]]:
    """Every rule's latest state (`RULE_COLUMNS`) and `applied`: the subjects whose current
    verdict it gave; oldest rule first."""
    return _select(client, f"SELECT r.*, ifNull(a.applied, 0) AS applied FROM ({_LATEST_RULES}) "
                           "AS r LEFT JOIN (SELECT rule_id, count() AS applied FROM "
                           f"{TRIAGE_VERDICTS} FINAL WHERE source = 'rule' AND verdict != '' "
                           "GROUP BY rule_id) AS a ON a.rule_id = r.rule_id "
                           "ORDER BY r.created_at, r.rule_id", {})


def rule_matches(client: Client, start: datetime, end: datetime, now: datetime,
                 since: datetime | None = None, rule_ids: Sequence[str] | None = None
                 ) -> pl.DataFrame:
    """Subjects in [start, end) (ingested since `since`, when given) matching an active,
    unexpired rule (of `rule_ids`, when given) that have no history entry at all: their
    `SUBJECT_COLUMNS` and the rule's `rule_id`, `rule_verdict`, `rule_reason`,
    `rule_expires_at`, `rule_created_by` (the oldest rule when several match)."""
    params: dict[str, Any] = {"start": start, "end": end, "now": now}
    chosen = ""
    if rule_ids is not None:
        params["rule_ids"] = list(rule_ids)
        chosen = " AND has({rule_ids:Array(String)}, rule_id)"
    subjects_sql = _subjects_sql(params, Filters(), since=since)
    keys = ("policy_id", "rule", "resource_kind", "resource_name", "subject_reason")
    on = " AND ".join(f"s.{k} = r.{k}" for k in keys)
    sql = (
        f"SELECT s.*, r.rule_id AS rule_id, r.verdict AS rule_verdict, r.reason AS rule_reason, "
        "r.expires_at AS rule_expires_at, r.created_by AS rule_created_by "
        f"FROM ({subjects_sql}) AS s INNER JOIN (SELECT * FROM ({_LATEST_RULES}) "
        f"WHERE state = 'active' AND (expires_at IS NULL OR expires_at > {{now:{_T}}}){chosen}"
        f") AS r ON {on} WHERE (s.subject_kind, s.subject_id) NOT IN (SELECT subject_kind, "
        f"subject_id FROM {TRIAGE_HISTORY} WHERE subject_kind = 'violation' OR "
        f"subject_time >= {{start:{_T}}}) ORDER BY s.subject_kind, s.subject_id, r.created_at, "
        "r.rule_id LIMIT 1 BY s.subject_kind, s.subject_id")
    return _frame(client, sql, params)


# -- what the verdicts add up to ----------------------------------------------------------------

def false_positive_groups(client: Client, start: datetime, end: datetime, filters: Filters,
                          limit: int) -> list[dict[str, Any]]:
    """Subjects in [start, end) whose current verdict is `false_positive`, grouped by their
    fingerprint fields, largest group first: `subjects`, `propagated` (given by a rule),
    `newest`, and the distinct `engines`, `namespaces`, `clusters`, `environments`, `teams`,
    `analysts` and verdict `reasons` (up to 10) among them."""
    params: dict[str, Any] = {"start": start, "end": end, "limit": limit}
    where = _filter_sql(filters, params)
    keys = "policy_id, rule, resource_kind, resource_name, subject_reason"
    return _select(client, (
        f"SELECT {keys}, count() AS subjects, countIf(source = 'rule') AS propagated, "
        "max(subject_time) AS newest, arraySort(groupUniqArray(engine)) AS engines, "
        "arraySort(groupUniqArray(namespace)) AS namespaces, "
        "arraySort(groupUniqArray(cluster)) AS clusters, "
        "arraySort(groupUniqArray(environment)) AS environments, "
        "arraySort(groupUniqArray(team)) AS teams, "
        "arraySort(groupUniqArray(analyst)) AS analysts, "
        "arraySort(groupUniqArray(10)(reason)) AS reasons "
        f"FROM {TRIAGE_HISTORY} WHERE subject_time >= {{start:{_T}}} "
        f"AND subject_time < {{end:{_T}}} AND entry_id IN (SELECT entry_id FROM "
        f"{TRIAGE_VERDICTS} FINAL WHERE verdict = 'false_positive' AND entry_id != '' "
        f"AND subject_time >= {{start:{_T}}} AND subject_time < {{end:{_T}}}{where}) "
        f"GROUP BY {keys} ORDER BY subjects DESC, {keys} LIMIT {{limit:UInt32}}"), params)


def verdicts_by_policy_day(client: Client, start: datetime, end: datetime, filters: Filters,
                           now: datetime) -> pl.DataFrame:
    """Current verdicts of subjects timed in [start, end) per policy and UTC day of the
    subject's time: day, policy, false_positives, triaged, propagated_false_positives,
    propagated (given by a rule); days without verdicts are absent."""
    params: dict[str, Any] = {"start": start, "end": end, "now": now}
    where = _filter_sql(filters, params)
    return _frame(client, (
        "SELECT toDate(subject_time) AS day, policy_id AS policy, "
        "countIf(verdict = 'false_positive') AS false_positives, count() AS triaged, "
        "countIf(verdict = 'false_positive' AND source = 'rule') AS propagated_false_positives,"
        f" countIf(source = 'rule') AS propagated FROM {TRIAGE_VERDICTS} FINAL "
        f"WHERE subject_time >= {{start:{_T}}} AND subject_time < {{end:{_T}}} "
        f"AND verdict != '' AND (expires_at IS NULL OR expires_at > {{now:{_T}}}){where} "
        "GROUP BY day, policy ORDER BY policy, day"), params)
