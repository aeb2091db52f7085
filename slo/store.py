"""The alert evaluator's storage: every read and write of ClickHouse the `slo` package makes,
one named function each (its SLI inputs aside: those it reads through `metrics.read`).

The rule (a unit test holds it: tests/unit/test_slo_store.py): no other module of `slo` holds
SQL or calls the client. Tables are named from the registry (`schemas.tables`), values are
bound as parameters (`{name:Type}` placeholders) or inserted by column name; no statement is
built from a value.

Rows go in and out as plain mappings, column -> value, with the columns of this module
(`ALERT_COLUMNS`, ...); datetimes come out timezone-aware UTC and map values as dicts. The
modules that own the objects build them (`lifecycle.AlertState`, `silences.Silence`, whose
fields are the columns), so this module imports nothing else of `slo`.

`alerts` and `silences` keep the latest row per id and `budget_policy_events` one row per
action taken (ReplacingMergeTree): they are read with FINAL, and a row changes by inserting it
again. `alert_events` and `notification_dead_letters` are append-only histories, and so is
`slo_standings`, whose readers take the latest run (`computed_at`) of each SLO and minute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from clickhouse_connect.driver.client import Client

from schemas.tables import (
    ALERT_EVENTS,
    ALERTS,
    BUDGET_POLICY_EVENTS,
    NOTIFICATION_DEAD_LETTERS,
    SILENCES,
    SLO_STANDINGS,
)

Row = Mapping[str, Any]

ALERT_COLUMNS = ("alert_id", "slo", "severity", "dimensions", "state", "pending_since",
                 "fired_at", "resolved_at", "long_window", "short_window", "factor",
                 "burn_long", "burn_short", "budget_remaining", "time_to_exhaustion_s",
                 "silenced", "updated_at")
ALERT_EVENT_COLUMNS = ("alert_id", "slo", "severity", "state", "at", "team", "service",
                       "dimensions")
SILENCE_COLUMNS = ("silence_id", "matchers", "starts_at", "ends_at", "comment", "created_by")
BUDGET_ACTION_COLUMNS = ("slo", "dimensions", "threshold", "action", "owner", "budget_consumed",
                         "period_start", "at")
STANDING_COLUMNS = ("slo", "definition", "at", "computed_at", "position", "dimensions",
                    "objective", "period", "good", "total", "budget_remaining",
                    "time_to_exhaustion_s", "pair_severity", "pair_long_window",
                    "pair_short_window", "pair_factor", "pair_burn_long", "pair_burn_short",
                    "pair_firing")
DEAD_LETTER_COLUMNS = ("notifier", "slo", "severity", "alert_ids", "error", "attempts",
                       "payload")

_MAPS = frozenset({"dimensions", "matchers"})  # Map columns, read back as dicts


def _value(column: str, value):
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc)  # DateTime64(3, 'UTC'): naive UTC by default
    if column in _MAPS:
        return dict(value)
    return value


def _select(client: Client, sql: str, columns: tuple[str, ...],
            parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rows = client.query(sql, parameters=parameters).result_rows
    return [{c: _value(c, v) for c, v in zip(columns, row)} for row in rows]


def _insert(client: Client, table: str, columns: tuple[str, ...], rows: Iterable[Row]) -> None:
    values = [[row[c] for c in columns] for row in rows]
    if values:
        client.insert(table, values, column_names=list(columns))


# -- alerts and their history -------------------------------------------------------------------

def load_alert_states(client: Client) -> list[dict[str, Any]]:
    """Every alert's latest state (`alerts`, one row per alert id), by `ALERT_COLUMNS`."""
    return _select(client, f"SELECT {', '.join(ALERT_COLUMNS)} FROM {ALERTS} FINAL",
                   ALERT_COLUMNS)


def record_alerts(client: Client, states: Iterable[Row], events: Iterable[Row]) -> None:
    """Store new alert states (`alerts`, by `ALERT_COLUMNS`: each replaces its alert's row) and
    lifecycle transitions (`alert_events`, by `ALERT_EVENT_COLUMNS`); either may be empty."""
    _insert(client, ALERTS, ALERT_COLUMNS, states)
    _insert(client, ALERT_EVENTS, ALERT_EVENT_COLUMNS, events)


# -- silences made from the CLI -----------------------------------------------------------------

def active_silences(client: Client, at: datetime) -> list[dict[str, Any]]:
    """The silences of the table not yet ended at `at` (some may start later), by
    `SILENCE_COLUMNS`."""
    return _select(client, f"SELECT {', '.join(SILENCE_COLUMNS)} FROM {SILENCES} FINAL "
                           "WHERE ends_at > {at:DateTime64(3, 'UTC')}",
                   SILENCE_COLUMNS, {"at": at})


def add_silence(client: Client, silence: Row) -> None:
    """Store a silence (by `SILENCE_COLUMNS`)."""
    _insert(client, SILENCES, SILENCE_COLUMNS, [silence])


def expire_silence(client: Client, silence: Row, at: datetime) -> None:
    """End a stored silence at `at`: its row again, with `ends_at` = `at` (the latest row of
    an id wins; the earlier one stays for the audit trail)."""
    _insert(client, SILENCES, SILENCE_COLUMNS, [{**silence, "ends_at": at}])


# -- error-budget policy actions ----------------------------------------------------------------

def budget_actions(client: Client) -> list[dict[str, Any]]:
    """Every error-budget policy action taken (`budget_policy_events`, one row per SLO,
    dimension values, threshold, action and period), oldest first, by
    `BUDGET_ACTION_COLUMNS`."""
    return _select(client, f"SELECT {', '.join(BUDGET_ACTION_COLUMNS)} "
                           f"FROM {BUDGET_POLICY_EVENTS} FINAL ORDER BY at",
                   BUDGET_ACTION_COLUMNS)


def record_budget_actions(client: Client, actions: Iterable[Row]) -> None:
    """Store error-budget policy actions taken (by `BUDGET_ACTION_COLUMNS`)."""
    _insert(client, BUDGET_POLICY_EVENTS, BUDGET_ACTION_COLUMNS, actions)


# -- the standing of every SLO at each evaluation -----------------------------------------------

def record_standings(client: Client, standings: Iterable[Row]) -> None:
    """Store the standings of one evaluation run (`slo_standings`, by `STANDING_COLUMNS`)."""
    _insert(client, SLO_STANDINGS, STANDING_COLUMNS, standings)


def stored_standings(client: Client, definitions: list[str], points: list[datetime],
                     within_seconds: int) -> list[dict[str, Any]]:
    """The stored standings of the SLOs whose digest is one of `definitions`: for each of
    `points`, the latest run (`computed_at`) of the latest minute in (point - `within_seconds`,
    point] that holds one, by `STANDING_COLUMNS`, ordered by definition, minute, run and
    position (a minute that is the latest of several points comes back once). A wide
    `within_seconds` (a day) reads one run per point, not every minute in it."""
    if not definitions or not points:
        return []
    bounds = ("definition IN {definitions:Array(String)} "
              "AND at > {low:DateTime('UTC')} AND at <= {high:DateTime('UTC')}")
    # each point's run, (definition, at, computed_at); the rows of those runs are read by IN,
    # not joined: a join, and the DISTINCT it needed when points share a run, cost more
    # (bench/RESULTS.md)
    runs = (f"SELECT definition, max((at, computed_at)) AS run FROM {SLO_STANDINGS} "
            f"WHERE {bounds} GROUP BY definition") if len(points) == 1 else (
            f"SELECT definition, max((at, computed_at)) AS run FROM {SLO_STANDINGS} "
            f"ARRAY JOIN {{points:Array(DateTime('UTC'))}} AS p WHERE {bounds} AND at <= p "
            "AND at > p - {within:UInt32} GROUP BY definition, p")
    return _select(client, f"SELECT {', '.join(STANDING_COLUMNS)} FROM {SLO_STANDINGS} "
                           f"WHERE {bounds} AND (definition, at, computed_at) IN ("
                           f"SELECT definition, run.1, run.2 FROM ({runs})) "
                           "ORDER BY definition, at, computed_at, position",
                   STANDING_COLUMNS,
                   {"definitions": definitions, "points": points,
                    "low": min(points) - timedelta(seconds=within_seconds),
                    "high": max(points), "within": within_seconds})


# -- notifications that could not be delivered --------------------------------------------------

def record_dead_letter(client: Client, letter: Row) -> None:
    """Store a notification given up on (by `DEAD_LETTER_COLUMNS`; `at` is the insert time)."""
    _insert(client, NOTIFICATION_DEAD_LETTERS, DEAD_LETTER_COLUMNS, [letter])
