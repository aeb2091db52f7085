"""The dashboards' one query module: every SQL the views run, with bound parameters, and
their reads through the batch layer's read API (`metrics.read`).

Functions take a clickhouse-connect client and return pandas frames; the pages wrap them in
Streamlit caches. Windows are whole minutes back from now, bound as parameters. The headline
numbers come from the decision rollups (`decision_totals`), so the p95 shown is the SLI's.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
from clickhouse_connect.driver.client import Client

from core.storage import connect
from dashboards.config import DashboardSettings, current
from metrics import read
from metrics.windows import floor_minute

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


def decision_totals(client: Client, minutes: int, now: datetime | None = None
                    ) -> dict[str, float | None]:
    """The headline numbers over [end - minutes, end), end being the start of the next whole
    minute (so the current minute's decisions count), from the decision rollups through the
    read API: p95 is the histogram's, the number the SLI L_p95 gives for the same window.
    Rates and p95 are None when there are no decisions."""
    end = floor_minute(now or datetime.now(timezone.utc)) + timedelta(minutes=1)
    start = end - timedelta(minutes=int(minutes))
    counts = read.latency_percentiles(client, start, end, {"p95": 0.95}, where={},
                                      measures=("total", "denies", "errors")).row(0, named=True)
    total, p95 = int(counts["total"]), counts["p95"]
    return {"total": total,
            "deny_rate": counts["denies"] / total if total else None,
            "error_rate": counts["errors"] / total if total else None,
            "p95_latency_ms": p95 * 1000 if total and p95 is not None else None}


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
