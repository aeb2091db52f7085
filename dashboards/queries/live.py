"""The Live page's queries: decisions flowing in over the range, by outcome, policy, team and
time, from the decision rollups (through `metrics.read` where it is a window total), and the
latest denies as rows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import polars as pl
from clickhouse_connect.driver.client import Client

from dashboards.queries import dimension_filter, frame, time_range
from metrics import read
from schemas.events import DECISIONS, EVENTS
from schemas.tables import DECISION_ROLLUPS, TIME_COLUMNS

OUTCOME_MEASURES = {"deny": "denies", "warn": "warns", "error": "errors"}
MEASURES = ["total", *OUTCOME_MEASURES.values()]


def decision_totals(client: Client, start: datetime, end: datetime,
                    where: dict[str, str]) -> dict[str, float | None]:
    """The headline numbers over [start, end) (whole minutes), from the decision rollups
    through the read API: p95 is the histogram's, the number the SLI L_p95 gives for the same
    window. Rates and p95 are None when there are no decisions."""
    counts = read.latency_percentiles(client, start, end, {"p95": 0.95}, where=where,
                                      measures=("total", "denies", "errors")).row(0, named=True)
    total, p95 = int(counts["total"]), counts["p95"]
    return {"total": total,
            "deny_rate": counts["denies"] / total if total else None,
            "error_rate": counts["errors"] / total if total else None,
            "p95_latency_ms": p95 * 1000 if total and p95 is not None else None}


def _outcomes(sums: pl.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows (keys..., outcome, decisions) from rollup sums; allow = total - the others;
    zero counts left out."""
    allow = pl.col("total") - sum(pl.col(m) for m in OUTCOME_MEASURES.values())
    long = sums.with_columns(allow.alias("allow")).unpivot(
        index=keys, on=["allow", *OUTCOME_MEASURES.values()], variable_name="measure",
        value_name="decisions")
    names = {"allow": "allow", **{m: o for o, m in OUTCOME_MEASURES.items()}}
    long = long.with_columns(pl.col("measure").replace_strict(names).alias("outcome"),
                             pl.col("decisions").cast(pl.Int64))
    return long.filter(pl.col("decisions") > 0).select(*keys, "outcome", "decisions").to_pandas()


BREAKDOWN = ("policy", "team")  # the dimensions the page charts the decisions by


def breakdown(client: Client, start: datetime, end: datetime, where: dict[str, str],
              dimensions: tuple[str, ...] = BREAKDOWN, limit: int = 15
              ) -> dict[str, pd.DataFrame]:
    """The decisions over [start, end) by outcome (key "outcome": rows outcome, decisions,
    most first) and, for each of `dimensions`, (dimension, outcome, decisions) of its `limit`
    values with most decisions (an empty value reads '(none)'), from one read of the
    decision rollups for all of them (`read.window_totals_sets`)."""
    overall, *by = read.window_totals_sets(client, "decisions", start, end, MEASURES,
                                           [(where, []), *((where, [d]) for d in dimensions)])
    outcomes = _outcomes(overall.select(MEASURES), []).sort_values(
        ["decisions", "outcome"], ascending=[False, True], ignore_index=True)
    return {"outcome": outcomes, **{d: _top(sums, d, limit) for d, sums in zip(dimensions, by)}}


def _top(sums: pl.DataFrame, dimension: str, limit: int) -> pd.DataFrame:
    sums = sums.with_columns(pl.col("key").str.replace(f"^{dimension}=", "")
                             .replace("", "(none)").alias(dimension))
    top = sums.sort(["total", dimension], descending=[True, False]).head(limit)
    return _outcomes(top.select(dimension, *MEASURES), [dimension]).sort_values(
        [dimension, "outcome"], ignore_index=True)


def grain(start: datetime, end: datetime) -> str:
    """The rollup grain a time series over [start, end) is drawn at: minutes up to 6 hours,
    hours up to 7 days, days beyond."""
    span = end - start
    return "1m" if span <= timedelta(hours=6) else "1h" if span <= timedelta(days=7) else "1d"


def over_time(client: Client, start: datetime, end: datetime, where: dict[str, str]
              ) -> tuple[str, pd.DataFrame]:
    """(grain, rows time, outcome, decisions) per bucket of the grain (`grain`) from the
    combined decision rollup of that grain; the first bucket starts at or before `start`."""
    chosen = grain(start, end)
    table, column = DECISION_ROLLUPS.table(chosen), TIME_COLUMNS[chosen]
    bucket = {"1m": "toStartOfMinute", "1h": "toStartOfHour", "1d": "toStartOfDay"}[chosen]
    filters, params = dimension_filter(where)
    sums = ", ".join(f"sum({m}) AS {m}" for m in MEASURES)
    rows = frame(client, f"""
        SELECT {column} AS time, {sums} FROM {table}
        WHERE {column} >= {bucket}({{start:DateTime('UTC')}}) AND {column} < {{end:DateTime('UTC')}}
        {filters} GROUP BY time ORDER BY time""", {"start": start, "end": end, **params},
                 ["time", *MEASURES])
    out = _outcomes(pl.from_pandas(rows), ["time"]) if len(rows) else pd.DataFrame(
        columns=["time", "outcome", "decisions"])
    return chosen, out.sort_values(["time", "outcome"], ignore_index=True)


def other_events(client: Client, start: datetime, end: datetime, where: dict[str, str]
                 ) -> pd.DataFrame:
    times, params = time_range(start, end)
    filters, more = dimension_filter(where)
    return frame(client, f"""
        SELECT event_kind, count() AS events FROM {EVENTS.name} WHERE {times} {filters}
        GROUP BY event_kind ORDER BY events DESC, event_kind""", {**params, **more},
                 ["event_kind", "events"])


LATEST_COLUMNS = ["event_time", "team", "service", "policy_id", "outcome", "resource_kind",
                  "resource_name", "reason"]


RECENT_LOOKBACK = timedelta(hours=1)  # where the newest denies are looked for first


def recent_denies(client: Client, start: datetime, end: datetime, where: dict[str, str],
                  limit: int = 20) -> pd.DataFrame:
    """The `limit` newest denies and errors in the range. The minute rollup says from which
    minute on the newest `limit` lie -- over the last RECENT_LOOKBACK first, the whole range
    only when that holds fewer -- so only those minutes' raw rows are read."""
    filters, params = dimension_filter(where)
    table, column = DECISION_ROLLUPS.table("1m"), TIME_COLUMNS["1m"]
    bound = {"start": start, "end": end, "limit": int(limit), **params}
    since = []
    for lookback in (RECENT_LOOKBACK, None):
        first = start if lookback is None else max(start, end - lookback)
        since = client.query(f"""
            SELECT minute, found FROM (
                SELECT minute, sum(n) OVER (ORDER BY minute DESC) - n AS newer,
                       sum(n) OVER () AS found FROM (
                    SELECT {column} AS minute, sum(denies) + sum(errors) AS n FROM {table}
                    WHERE {column} >= toStartOfMinute({{first:DateTime('UTC')}})
                      AND {column} < {{end:DateTime('UTC')}} {filters}
                    GROUP BY minute HAVING n > 0))
            WHERE newer < {{limit:UInt32}} ORDER BY minute LIMIT 1""",
                             parameters={**bound, "first": first}).result_rows
        if first == start or (since and since[0][1] >= limit):
            break
    if not since:
        return pd.DataFrame(columns=LATEST_COLUMNS)
    first = max(start, since[0][0].replace(tzinfo=timezone.utc))
    times, more = time_range(first, end)
    return frame(client, f"""
        SELECT {', '.join(LATEST_COLUMNS)} FROM {DECISIONS.name}
        WHERE {times} AND outcome IN ('deny', 'error') {filters}
        ORDER BY event_time DESC LIMIT {{limit:UInt32}}""", {**bound, **more}, LATEST_COLUMNS)
