"""The dashboards' one query module: every SQL the views run, with bound parameters.

Functions take a clickhouse-connect client and return pandas frames; the pages wrap them in
Streamlit caches. Windows are whole minutes back from now, bound as parameters.
"""

from __future__ import annotations

import pandas as pd
from clickhouse_connect.driver.client import Client

from core.storage import connect
from dashboards.config import DashboardSettings, current

WINDOWS = {"15 minutes": 15, "1 hour": 60, "6 hours": 360, "24 hours": 1440, "7 days": 10080}

_SINCE = "event_time >= now64(3) - toIntervalMinute({minutes:UInt32})"


def open_client(config: DashboardSettings | None = None) -> Client:
    config = config or current()
    client, _ = connect(config.storage.dsn, config.storage.database)
    return client


def _frame(client: Client, sql: str, minutes: int, columns: list[str]) -> pd.DataFrame:
    """Rows of `sql` as a frame with `columns` (named here: an empty result has no names)."""
    result = client.query(sql, parameters={"minutes": int(minutes)})
    return pd.DataFrame(result.result_rows, columns=columns)


def decision_totals(client: Client, minutes: int) -> dict[str, float | None]:
    """Totals for the headline numbers; rates are None when there are no decisions."""
    frame = _frame(client, f"""
        SELECT count() AS total,
               countIf(outcome = 'deny') AS denied,
               countIf(outcome = 'error') AS errors,
               quantileExactIf(0.95)(latency_seconds, latency_seconds IS NOT NULL) AS p95
        FROM policy_decisions WHERE {_SINCE}""", minutes, ["total", "denied", "errors", "p95"])
    row = frame.iloc[0]
    total = int(row["total"])
    return {"total": total,
            "deny_rate": row["denied"] / total if total else None,
            "error_rate": row["errors"] / total if total else None,
            "p95_latency_ms": float(row["p95"]) * 1000 if total and pd.notna(row["p95"]) else None}


def by_outcome(client: Client, minutes: int) -> pd.DataFrame:
    return _frame(client, f"""
        SELECT outcome, count() AS decisions FROM policy_decisions WHERE {_SINCE}
        GROUP BY outcome ORDER BY decisions DESC, outcome""", minutes, ["outcome", "decisions"])


def by_policy(client: Client, minutes: int, limit: int = 15) -> pd.DataFrame:
    return _frame(client, f"""
        SELECT policy_id, outcome, count() AS decisions FROM policy_decisions WHERE {_SINCE}
        AND policy_id IN (SELECT policy_id FROM policy_decisions WHERE {_SINCE}
                          GROUP BY policy_id ORDER BY count() DESC LIMIT {int(limit)})
        GROUP BY policy_id, outcome ORDER BY policy_id, outcome""", minutes,
                  ["policy_id", "outcome", "decisions"])


def by_team(client: Client, minutes: int) -> pd.DataFrame:
    return _frame(client, f"""
        SELECT if(team = '', '(none)', team) AS team, outcome, count() AS decisions
        FROM policy_decisions WHERE {_SINCE}
        GROUP BY team, outcome ORDER BY team, outcome""", minutes, ["team", "outcome", "decisions"])


def per_minute(client: Client, minutes: int) -> pd.DataFrame:
    return _frame(client, f"""
        SELECT toStartOfMinute(event_time) AS minute, outcome, count() AS decisions
        FROM policy_decisions WHERE {_SINCE}
        GROUP BY minute, outcome ORDER BY minute, outcome""", minutes,
                  ["minute", "outcome", "decisions"])


def other_events(client: Client, minutes: int) -> pd.DataFrame:
    return _frame(client, f"""
        SELECT event_kind, count() AS events FROM policy_events WHERE {_SINCE}
        GROUP BY event_kind ORDER BY events DESC, event_kind""", minutes, ["event_kind", "events"])


def recent_denies(client: Client, minutes: int, limit: int = 20) -> pd.DataFrame:
    return _frame(client, f"""
        SELECT event_time, team, service, policy_id, outcome, resource_kind, resource_name,
               reason
        FROM policy_decisions WHERE {_SINCE} AND outcome IN ('deny', 'error')
        ORDER BY event_time DESC LIMIT {int(limit)}""", minutes,
                  ["event_time", "team", "service", "policy_id", "outcome", "resource_kind",
                   "resource_name", "reason"])
