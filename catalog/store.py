"""Every ClickHouse read and write of the `catalog` package, one named function each.

Tables are named from the registry (`schemas.tables`); values are bound parameters
(`{name:Type}`) or inserted by column name; no statement is built from a value. Writes are
INSERTs only: `policy_catalog` is an append-only history of versions, one row each, its
policies as parallel arrays (migration 0017). Datetimes come out timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from clickhouse_connect.driver.client import Client

from catalog.model import Catalog, Control, Policy, Version
from schemas.tables import DECISION_ROLLUPS, POLICY_CATALOG, TIME_COLUMNS

# the array columns, one item per policy, in the order of `Policy`'s fields
ARRAY_COLUMNS = ("policy_id", "title", "owner", "category", "severity", "controls", "runbook",
                 "engine", "description")
VERSION_COLUMNS = ("loaded_at", "digest", "source", *ARRAY_COLUMNS)
_T = "DateTime64(3, 'UTC')"
_HOURS = DECISION_ROLLUPS.table("1h", per_value=True)
_MINUTES = DECISION_ROLLUPS.table("1m", per_value=True)
_HOUR, _MINUTE = TIME_COLUMNS["1h"], TIME_COLUMNS["1m"]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None \
        else value.astimezone(timezone.utc)


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} {value.isoformat()} has no timezone; give an aware datetime")
    return value.astimezone(timezone.utc)


def _version(row: Sequence[Any]) -> Version:
    loaded_at, digest, source, *arrays = row
    policies = []
    for pid, title, owner, category, severity, controls, runbook, engine, description \
            in zip(*arrays):
        policies.append(Policy(id=pid, title=title, owner=owner, category=category,
                               severity=severity,
                               controls=tuple(Control(f, c) for f, c in controls),
                               runbook=runbook, engine=engine, description=description))
    return Version(Catalog.of(policies), _utc(loaded_at), digest, source)


def latest(client: Client, at: datetime | None = None) -> Version | None:
    """The latest stored version, or with `at` the latest loaded at or before it (the
    catalog as it was then); None when there is none."""
    where, params = "", {}
    if at is not None:
        where, params = f"WHERE loaded_at <= {{at:{_T}}}", {"at": _aware("at", at)}
    rows = client.query(f"SELECT {', '.join(VERSION_COLUMNS)} FROM {POLICY_CATALOG} {where} "
                        "ORDER BY loaded_at DESC, digest DESC LIMIT 1",
                        parameters=params).result_rows
    return _version(rows[0]) if rows else None


def versions(client: Client) -> list[dict[str, Any]]:
    """Every stored version, newest first: loaded_at, digest, source, policies (how many)."""
    result = client.query(f"SELECT loaded_at, digest, source, length(policy_id) AS policies "
                          f"FROM {POLICY_CATALOG} ORDER BY loaded_at DESC, digest DESC")
    return [{"loaded_at": _utc(r[0]), "digest": r[1], "source": r[2], "policies": int(r[3])}
            for r in result.result_rows]


def insert_version(client: Client, catalog: Catalog, *, source: str, token: str,
                   loaded_at: datetime | None = None) -> None:
    """Append `catalog` as a version (`loaded_at` defaults to the server's clock). `token`
    deduplicates: a second insert with the same token is dropped by the table."""
    columns = list(VERSION_COLUMNS if loaded_at is not None else VERSION_COLUMNS[1:])
    arrays = [[p.id for p in catalog], [p.title for p in catalog], [p.owner for p in catalog],
              [p.category for p in catalog], [p.severity for p in catalog],
              [[(c.framework, c.control) for c in p.controls] for p in catalog],
              [p.runbook for p in catalog], [p.engine for p in catalog],
              [p.description for p in catalog]]
    row = [catalog.digest, source, *arrays]
    if loaded_at is not None:
        row.insert(0, _aware("loaded_at", loaded_at))
    client.insert(POLICY_CATALOG, [row], column_names=columns,
                  settings={"insert_deduplication_token": token})


def decision_counts(client: Client, start: datetime, end: datetime) -> dict[str, int]:
    """Policy id -> decisions in the minutes `[start, end)` touches (every minute bucket
    that starts before `end` and ends after `start`), from the per-value decision rollups:
    whole hours from the hour table, the edges from the minute table, so a month is read
    as ~720 hour rows per policy rather than 43,200 minutes."""
    start, end = _aware("start", start), _aware("end", end)
    first = start.replace(second=0, microsecond=0)
    hour_in = (first + timedelta(minutes=59)).replace(minute=0)  # first whole hour
    hour_out = end.replace(minute=0, second=0, microsecond=0)  # end of the last whole hour
    if hour_in >= hour_out:  # no whole hour inside: minutes only
        hour_in = hour_out = end
    params = {"dimension": "policy", "first": first, "end": end, "hour_in": hour_in,
              "hour_out": hour_out}
    sql = (f"SELECT dimension_value, sum(total) FROM ("
           f"SELECT dimension_value, total FROM {_HOURS} "
           f"WHERE dimension = {{dimension:String}} AND {_HOUR} >= {{hour_in:{_T}}} "
           f"AND {_HOUR} < {{hour_out:{_T}}} "
           f"UNION ALL SELECT dimension_value, total FROM {_MINUTES} "
           f"WHERE dimension = {{dimension:String}} AND ("
           f"({_MINUTE} >= {{first:{_T}}} AND {_MINUTE} < {{hour_in:{_T}}}) OR "
           f"({_MINUTE} >= {{hour_out:{_T}}} AND {_MINUTE} < {{end:{_T}}}))"
           f") WHERE dimension_value != '' GROUP BY dimension_value")
    return {r[0]: int(r[1]) for r in client.query(sql, parameters=params).result_rows}
