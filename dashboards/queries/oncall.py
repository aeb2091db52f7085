"""The On-call page's reads.

- active alerts: the evaluator's `alerts` rows that are firing or pending
  (`slo.store.load_alert_states`), joined (`active_alerts`, pure) with the standing of the same
  SLO and dimension values that the SLO page and `slo status` show
  (`dashboards.queries.slos.status_rows`: burn per alert window, budget left, time to
  exhaustion), and with the silences that match them now (`slo.silences.silenced`, the
  evaluator's own test);
- silences: those of the `silences` table not yet ended, and the files of
  `<slo_dir>/silences/` (as code), each marked by its source;
- deploys blocked by policy over the range, from the gate rollups through the read API, and
  the latest blocked ones as rows (bounded by the range and a LIMIT);
- agent health: every agent that sent an `agent.heartbeat` in the range, its latest report
  judged when read by the rule of the SLI M8 (`metrics.sli.agents`): healthy, stale (its
  latest heartbeat older than twice its interval) or degraded (fresh, reporting another
  status); from each agent's latest heartbeat (`agent_heartbeats_latest`) when the range
  ends after it (the page's ranges end now), else the range's whole days from each agent's
  latest heartbeat per day (`agent_heartbeats_1d`) and its partial days from the raw
  heartbeats;
- ingestion: events per second stored over the last whole minutes (the decision rollup and
  the other events), the ingest lag (`ingested_at` - `event_time`) of what landed in the last
  hour, and the collector's own counters (`collector_metrics`, through
  `collector.self_metrics_read`): accepted, rejected by reason, dropped, spool backlog,
  insert latency;
- top offenders: policies and teams by denies from one read of the decision rollups,
  resources from the denies and warns of the last hour (`triage_subjects`, grouped, LIMIT).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import polars as pl
from clickhouse_connect.driver.client import Client

from collector import self_metrics_read
from dashboards.queries import TIME, dimension_filter, frame, time_range
from metrics import read
from metrics.sli.agents import DEFAULT_INTERVAL_S
from metrics.windows import ceil_day, floor_day
from schemas.events import DECISIONS, EVENTS
from schemas.tables import AGENT_HEARTBEATS_DAILY, AGENT_HEARTBEATS_LATEST, TRIAGE_SUBJECTS
from slo import silences as silence_store
from slo import store
from slo.lifecycle import FIRING, PENDING, TIERS

ACTIVE = (FIRING, PENDING)
SILENCE_DIR = "silences"  # under the SLO directory, as the alert evaluator reads it

# -- active alerts ----------------------------------------------------------------------------


def alert_states(client: Client) -> list[dict]:
    """The alerts firing or pending, as the evaluator last stored them (`slo.store`'s
    `ALERT_COLUMNS`)."""
    return [row for row in store.load_alert_states(client) if row["state"] in ACTIVE]


def _key(slo: str, dimensions: Mapping[str, str]) -> tuple:
    return slo, tuple(sorted(dimensions.items()))


def labels(alert: Mapping) -> dict[str, str]:
    """The labels a silence matches an alert by, as the evaluator builds them: slo, severity
    (the tier) and the SLO's dimension values."""
    return {"slo": alert["slo"], "severity": alert["severity"], **dict(alert["dimensions"])}


def burn_text(pairs: Iterable[Mapping]) -> str:
    """'1h 100.0× · 5m 100.0× (≥ 14.4); 6h ...': each alert window's burn rates (long, short)
    against its factor."""
    def burn(value) -> str:
        return "—" if value is None else f"{value:.1f}×"

    return "; ".join(f"{p['long_window']} {burn(p['burn_long'])} · {p['short_window']} "
                     f"{burn(p['burn_short'])} (≥ {p['factor']:g})" for p in pairs)


def active_alerts(states: list[dict], standing: list[dict],
                  silences: list[silence_store.Silence], at: datetime,
                  where: Mapping[str, str] | None = None) -> list[dict]:
    """One row per active alert of `states` whose dimension values agree with `where` (a
    dimension the alert lacks does not exclude it), page tier first, firing before pending,
    newest first: the alert's columns plus `since` (firing: fired_at, pending:
    pending_since), `labels`, `pairs` (the alert windows of its tier), `budget_remaining`
    and `time_to_exhaustion_s` from `standing` (status_rows), else from the stored alert
    (`standing_found` False), and `silenced_by`: the ids of the silences matching it at
    `at`."""
    by_key = {_key(r["slo"], r["dimensions"]): r for r in standing}
    out = []
    for alert in states:
        dims = dict(alert["dimensions"])
        if any(dims.get(d, v) != v for d, v in (where or {}).items()):
            continue
        row = by_key.get(_key(alert["slo"], dims))
        stored_pair = {"severity": alert["severity"], "long_window": alert["long_window"],
                       "short_window": alert["short_window"], "factor": alert["factor"],
                       "burn_long": alert["burn_long"], "burn_short": alert["burn_short"]}
        tags = labels(alert)
        out.append({
            **alert, "dimensions": dims, "labels": tags,
            "since": alert["fired_at"] if alert["state"] == FIRING else alert["pending_since"],
            "standing_found": row is not None,
            "pairs": [p for p in row["pairs"] if p["severity"] == alert["severity"]]
            if row is not None else [stored_pair],
            "budget_remaining": row["budget_remaining"] if row is not None
            else alert["budget_remaining"],
            "time_to_exhaustion_s": row["time_to_exhaustion_s"] if row is not None
            else alert["time_to_exhaustion_s"],
            "silenced_by": [s.silence_id for s in silences
                            if s.active(at) and s.matches(tags)]})
    tier = {t: i for i, t in enumerate(TIERS)}
    out.sort(key=lambda a: (tier.get(a["severity"], len(tier)), a["state"] != FIRING,
                            -a["since"].timestamp() if a["since"] else 0.0))
    return out


# -- silences ---------------------------------------------------------------------------------


def table_silences(client: Client, at: datetime) -> list[silence_store.Silence]:
    """The silences of the table (made from the page or the CLI) not yet ended at `at`."""
    return silence_store.load_table(client, at)


def silence_dir(slo_dir: str) -> Path:
    return Path(slo_dir) / SILENCE_DIR


def file_silences(slo_dir: str, at: datetime) -> list[tuple[silence_store.Silence, str]]:
    """(silence, its file) of every silence kept as code in `<slo_dir>/silences/` not yet
    ended at `at`; raises `slo.silences.SilenceError` naming a bad file and key."""
    return [(s, s.source) for s in silence_store.load_files(silence_dir(slo_dir))
            if s.ends_at > at]


# -- deploys blocked by policy -----------------------------------------------------------------

GATE_MEASURES = ["total", "blocked", "overridden"]


def blocked_by_policy(client: Client, start: datetime, end: datetime,
                      where: dict[str, str]) -> pd.DataFrame:
    """policy, gated, blocked, overridden, block_rate over [start, end) from the gate rollups
    (the counts M6 reads), one row per policy that gated a deploy, most blocks first."""
    sums = read.window_totals(client, "gates", start, end, GATE_MEASURES, where=where,
                              by=["policy"])
    sums = sums.filter(pl.col("total") > 0).with_columns(
        pl.col("key").str.replace("^policy=", "").replace("", "(none)").alias("policy"))
    out = sums.select(
        "policy", pl.col("total").cast(pl.Int64).alias("gated"),
        pl.col("blocked").cast(pl.Int64), pl.col("overridden").cast(pl.Int64),
        (pl.col("blocked") / pl.col("total")).alias("block_rate"))
    return out.sort(["blocked", "gated", "policy"], descending=[True, True, False]).to_pandas()


BLOCK_COLUMNS = ["event_time", "deploy_id", "policy_id", "team", "service", "environment",
                 "cluster", "reason"]


def recent_blocks(client: Client, start: datetime, end: datetime, where: dict[str, str],
                  limit: int = 20) -> pd.DataFrame:
    """The `limit` newest blocked deploy gates in [start, end)."""
    times, params = time_range(start, end)
    filters, more = dimension_filter(where)
    return frame(client, f"""
        SELECT {', '.join(BLOCK_COLUMNS)} FROM {EVENTS.name}
        WHERE event_kind = 'deploy.gate' AND gate_outcome = 'blocked' AND {times} {filters}
        ORDER BY event_time DESC LIMIT {{limit:UInt32}}""",
                 {**params, **more, "limit": int(limit)}, BLOCK_COLUMNS)


# -- agent health -----------------------------------------------------------------------------

HEALTHY, STALE, DEGRADED = "healthy", "stale", "degraded"
AGENT_STATES = (STALE, DEGRADED, HEALTHY)  # the order the page lists them in
HEALTHY_STATUSES = ("healthy", "")  # as M8 counts them: no status reported is healthy
MAX_AGENTS = 10_000
AGENT_DIMENSIONS = ("team", "environment", "cluster")  # agent_heartbeats_1d keeps these
AGENT_COLUMNS = ["agent_id", "engine", "team", "environment", "cluster", "status",
                 "interval_s", "last_heartbeat"]


def agent_state(status: str, interval_s: float | None, age_s: float) -> str:
    """An agent's health from its latest heartbeat, `age_s` seconds old, by the rule of M8:
    stale when older than twice its interval (DEFAULT_INTERVAL_S when it reports none),
    else healthy when it reports `healthy` or nothing, else degraded."""
    interval = DEFAULT_INTERVAL_S if interval_s is None or pd.isna(interval_s) \
        else float(interval_s)
    if age_s > 2 * interval:
        return STALE
    return HEALTHY if status in HEALTHY_STATUSES else DEGRADED


def agents(client: Client, start: datetime, end: datetime, where: dict[str, str]
           ) -> tuple[pd.DataFrame, datetime]:
    """(one row per agent that sent a heartbeat in [start, end) -- M8's known agents -- with
    its latest report's engine, team, environment, cluster, status and interval, its
    last_heartbeat, age_s and state (`agent_state`) at the time of the read; stale first,
    then degraded, then healthy, the oldest heartbeat first; the time of the read).

    A range that ends after every heartbeat the filters select (the page's ranges end at the
    current minute) is read from `agent_heartbeats_latest` (migration 0024: each agent's
    latest report of all, per team, environment and cluster): an agent is in it when that
    latest heartbeat is. Otherwise (a heartbeat at or after `end`, or a filter on another
    dimension) the range is read from its history (`_reported_in`)."""
    at = datetime.now(timezone.utc)
    rows = _latest_reported(client, start, end, where)
    if rows is None:
        rows = _reported_in(client, start, end, where)
    if rows.empty:
        return rows.assign(age_s=pd.Series(dtype=float), state=pd.Series(dtype=str)), at
    last = pd.to_datetime(rows["last_heartbeat"], utc=True)
    rows = rows.assign(last_heartbeat=last, age_s=(pd.Timestamp(at) - last).dt.total_seconds())
    rows["state"] = [agent_state(s, i, a) for s, i, a in
                     zip(rows["status"], rows["interval_s"], rows["age_s"])]
    rank = rows["state"].map({s: i for i, s in enumerate(AGENT_STATES)})
    return rows.assign(_rank=rank).sort_values(["_rank", "age_s"], ascending=[True, False],
                                               ignore_index=True).drop(columns="_rank"), at


_AGENT_ROW = "SELECT agent_id, l.1.1, l.2, l.3, l.4, l.1.2, l.1.3, last"
_DIMS = ", ".join(AGENT_DIMENSIONS)
_REPORT = "(engine, agent_status, heartbeat_interval_seconds)"  # a null interval is kept


def _latest_reported(client: Client, start: datetime, end: datetime, where: dict[str, str]
                     ) -> pd.DataFrame | None:
    """`AGENT_COLUMNS` of the agents whose latest heartbeat (of the rows `where` selects) is
    in [start, end), from `agent_heartbeats_latest`; None when that is not the answer: a
    selected heartbeat lies at or after `end`, or `where` names another dimension."""
    if not set(where) <= set(AGENT_DIMENSIONS):
        return None
    filters, params = dimension_filter(where)
    rows = frame(client, f"""
        {_AGENT_ROW}, ahead
        FROM (SELECT agent_id, argMax((report, {_DIMS}), last_at) AS l, max(last_at) AS last,
                     max(max(last_at)) OVER () >= {{end:{TIME}}} AS ahead
              FROM (SELECT agent_id, {_DIMS}, argMaxMerge(latest) AS report,
                           max(last_heartbeat) AS last_at
                    FROM {AGENT_HEARTBEATS_LATEST} WHERE 1 {filters}
                    GROUP BY agent_id, {_DIMS})
              GROUP BY agent_id)
        WHERE last >= {{start:{TIME}}} OR ahead
        ORDER BY last LIMIT {{limit:UInt32}}""",
                 {**params, "start": start, "end": end, "limit": MAX_AGENTS},
                 [*AGENT_COLUMNS, "ahead"])
    if rows["ahead"].astype(bool).any():
        return None
    return rows.drop(columns="ahead")


def _reported_in(client: Client, start: datetime, end: datetime, where: dict[str, str]
                 ) -> pd.DataFrame:
    """`AGENT_COLUMNS` of every agent with a heartbeat in [start, end) that `where` selects,
    its latest report in the range: the range's whole days from `agent_heartbeats_1d`
    (migration 0021: each agent's latest report per day and team, environment, cluster), its
    partial days at either edge from the raw heartbeats; an agent's latest report is the
    latest of both. A filter on another dimension than those reads the raw heartbeats only."""
    times, params = time_range(start, end)
    filters, more = dimension_filter(where)
    days_start, days_end = ceil_day(start), floor_day(end)
    whole_days = days_start < days_end and set(where) <= set(AGENT_DIMENSIONS)
    if not whole_days:  # every heartbeat of the range is read raw
        days_start = days_end = start
    params.update(days_start=days_start, days_end=days_end)
    parts = [f"""
        SELECT agent_id, {_DIMS}, argMax({_REPORT}, event_time) AS report,
               max(event_time) AS last_at
        FROM {EVENTS.name}
        WHERE event_kind = 'agent.heartbeat' AND {times} AND NOT (
              event_time >= {{days_start:{TIME}}} AND event_time < {{days_end:{TIME}}}) {filters}
        GROUP BY agent_id, {_DIMS}"""]
    if whole_days:
        parts.append(f"""
        SELECT agent_id, {_DIMS}, argMaxMerge(latest), max(last_heartbeat)
        FROM {AGENT_HEARTBEATS_DAILY}
        WHERE day >= {{days_start:{TIME}}} AND day < {{days_end:{TIME}}} {filters}
        GROUP BY agent_id, {_DIMS}""")
    return frame(client, f"""
        {_AGENT_ROW}
        FROM (SELECT agent_id, argMax((report, {_DIMS}), last_at) AS l, max(last_at) AS last
              FROM ({" UNION ALL ".join(parts)})
              GROUP BY agent_id)
        ORDER BY last LIMIT {{limit:UInt32}}""", {**params, **more, "limit": MAX_AGENTS},
                 AGENT_COLUMNS)


# -- ingestion --------------------------------------------------------------------------------

LAG_HORIZON = timedelta(days=1)  # events later than this are left out of the lag figures
LAG_COLUMNS = ["source", "events", "p50_s", "p95_s", "max_s"]


def event_rate(client: Client, start: datetime, end: datetime) -> float | None:
    """Events stored per second with event_time in [start, end) (whole minutes): decisions
    from their rollup, other events counted; None for an empty interval."""
    decisions = read.window_totals(client, "decisions", start, end, ["total"],
                                   where={})["total"].sum()  # the overall row only
    times, params = time_range(start, end)
    others = client.query(f"SELECT count() FROM {EVENTS.name} WHERE {times}",
                          parameters=params).result_rows[0][0]
    seconds = (end - start).total_seconds()
    return (int(decisions) + int(others)) / seconds if seconds > 0 else None


def ingest_lag(client: Client, start: datetime, end: datetime) -> pd.DataFrame:
    """source (decisions, events, and '' for both), events, p50_s, p95_s, max_s of
    `ingested_at - event_time` over the rows stored in [start, end) whose event time is at
    most LAG_HORIZON before `start` (the bound keeps the read to a few days of the sort key;
    a backfill of old history is not ingest lag). Percentiles are ClickHouse's `quantiles`
    (exact up to 8192 rows, sampled beyond)."""
    params = {"start": start, "end": end, "since": start - LAG_HORIZON}
    where = ("ingested_at >= {start:DateTime64(3, 'UTC')} AND ingested_at < "
             "{end:DateTime64(3, 'UTC')} AND event_time >= {since:DateTime64(3, 'UTC')}")
    lag = "greatest(dateDiff('millisecond', event_time, ingested_at), 0) / 1000"
    rows = frame(client, f"""
        SELECT source, count() AS events, quantiles(0.5, 0.95)(lag) AS q, max(lag)
        FROM (SELECT 'decisions' AS source, {lag} AS lag FROM {DECISIONS.name} WHERE {where}
              UNION ALL
              SELECT 'events' AS source, {lag} AS lag FROM {EVENTS.name} WHERE {where})
        GROUP BY ROLLUP(source) ORDER BY source""", params, ["source", "events", "q", "max_s"])
    rows = rows.loc[rows["events"] > 0]
    return pd.DataFrame({
        "source": rows["source"], "events": rows["events"].astype(int),
        "p50_s": [float(q[0]) for q in rows["q"]], "p95_s": [float(q[1]) for q in rows["q"]],
        "max_s": rows["max_s"].astype(float)}, columns=LAG_COLUMNS).reset_index(drop=True)


# what the collector did not store, by counter (collector/self_metrics.py's series)
NOT_STORED = {"records_rejected": "rejected", "requests_refused": "refused requests",
              "writer_dead_letter_rows": "dead-lettered"}
DROPS = ("requests_refused", "writer_dead_letter_rows")
COLLECTOR_COUNTERS = ["records_accepted", "records_ignored", *NOT_STORED,
                      "insert_seconds_count", "insert_seconds_sum"]
COLLECTOR_GAUGES = ["spool_backlog_rows", "spool_backlog_bytes", "insert_seconds_max"]


def collector(client: Client, start: datetime, end: datetime) -> dict:
    """The collector's own counters over [start, end), summed over its runs and instances
    (`collector.self_metrics_read.summary`, one read): snapshots (series rows stored;
    0 = none recorded),
    accepted, ignored, rejected, dropped (requests refused by admission control plus rows
    dead-lettered by the writer), insert_mean_s; from the latest snapshot of each instance:
    spool_rows, spool_bytes (summed); insert_max_s (the longest insert of the interval);
    and `not_stored`: what, source, reason, records per non-zero series."""
    series = self_metrics_read.summary(client, start, end,
                                       metrics=[*COLLECTOR_COUNTERS, *COLLECTOR_GAUGES])
    increase: dict[str, float] = {}
    by_series: dict[tuple[str, str, str], float] = {}  # summed over the instances
    latest: dict[str, dict[str, tuple]] = {}  # gauge -> instance -> (at, value)
    longest = None
    for row in series.iter_rows(named=True):
        metric = row["metric"]
        if row["kind"] != "gauge":
            increase[metric] = increase.get(metric, 0.0) + row["increase"]
            key = (metric, row["source"], row["label"])
            by_series[key] = by_series.get(key, 0.0) + row["increase"]
            continue
        reading = latest.setdefault(metric, {}).get(row["instance"])
        if reading is None or row["latest_at"] > reading[0]:
            latest[metric][row["instance"]] = (row["latest_at"], row["latest"])
        if metric == "insert_seconds_max":
            longest = row["highest"] if longest is None else max(longest, row["highest"])

    def total(*metrics: str) -> int:
        return int(sum(increase.get(m) or 0 for m in metrics))

    def summed(gauge: str) -> float | None:
        readings = latest.get(gauge)
        return None if readings is None else float(sum(v for _, v in readings.values()))

    count, seconds = increase.get("insert_seconds_count"), increase.get("insert_seconds_sum")
    not_stored = sorted(((NOT_STORED[m], source, label, int(n))
                         for (m, source, label), n in by_series.items()
                         if m in NOT_STORED and n > 0),
                        key=lambda r: (-r[3], r[0], r[1], r[2]))
    return {"snapshots": int(series["rows"].sum()),
            "accepted": total("records_accepted"), "ignored": total("records_ignored"),
            "rejected": total("records_rejected"), "dropped": total(*DROPS),
            "insert_mean_s": float(seconds) / count if count else None,
            "insert_max_s": longest,
            "spool_rows": summed("spool_backlog_rows"),
            "spool_bytes": summed("spool_backlog_bytes"),
            "not_stored": pd.DataFrame(not_stored,
                                       columns=["what", "source", "reason", "records"])}


# -- top offenders ----------------------------------------------------------------------------

OFFENDER_MEASURES = ["total", "denies", "warns", "errors"]


def top_offenders(client: Client, start: datetime, end: datetime, where: dict[str, str],
                  dimensions: tuple[str, ...], limit: int = 10) -> dict[str, pd.DataFrame]:
    """For each decision dimension of `dimensions` (policy, team, ...): its `limit` values
    with most denies (then warns) over [start, end) -- columns (dimension), denies, warns,
    errors, decisions, deny_rate -- from one read of the decision rollups; values with
    neither are left out."""
    sums = read.window_totals_sets(client, "decisions", start, end, OFFENDER_MEASURES,
                                   [(where, [d]) for d in dimensions])
    return {d: _offenders_of(frame, d, limit) for d, frame in zip(dimensions, sums)}


def _offenders_of(sums: pl.DataFrame, dimension: str, limit: int) -> pd.DataFrame:
    sums = sums.filter((pl.col("denies") + pl.col("warns")) > 0).with_columns(
        pl.col("key").str.replace(f"^{dimension}=", "").replace("", "(none)")
        .alias(dimension))
    out = sums.select(dimension, *[pl.col(m).cast(pl.Int64) for m in OFFENDER_MEASURES[1:]],
                      pl.col("total").cast(pl.Int64).alias("decisions"),
                      (pl.col("denies") / pl.col("total")).alias("deny_rate"))
    return out.sort(["denies", "warns", dimension], descending=[True, True, False]).head(
        limit).to_pandas()


RESOURCE_COLUMNS = ["resource_kind", "resource_name", "namespace", "denies", "warns",
                    "policies", "teams"]


def top_resources(client: Client, start: datetime, end: datetime, where: dict[str, str],
                  limit: int = 10) -> pd.DataFrame:
    """The `limit` resources (kind, name, namespace) with most denies (then warns) over
    [start, end), with the policies and teams of those decisions (at most 5 each): the
    range's denies and warns (the rollups keep no resource) from `triage_subjects`, which
    holds only those, grouped."""
    times, params = time_range(start, end)
    filters, more = dimension_filter(where)
    rows = frame(client, f"""
        SELECT resource_kind, resource_name, namespace, countIf(outcome = 'deny') AS denies,
               countIf(outcome = 'warn') AS warns, arraySort(groupUniqArray(5)(policy_id)),
               arraySort(groupUniqArray(5)(team))
        FROM {TRIAGE_SUBJECTS}
        WHERE {times} AND outcome IN ('deny', 'warn') {filters}
        GROUP BY resource_kind, resource_name, namespace
        ORDER BY denies DESC, warns DESC, resource_kind, resource_name, namespace
        LIMIT {{limit:UInt32}}""", {**params, **more, "limit": int(limit)}, RESOURCE_COLUMNS)
    return rows.assign(policies=rows["policies"].map(", ".join),
                       teams=rows["teams"].map(", ".join))
