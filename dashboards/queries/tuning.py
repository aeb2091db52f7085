"""The Policy tuning page's reads.

- every policy over the range: volume, deny / warn / error rates and latency p50 / p95 / p99
  from the decision rollups through the read API (the histogram's percentiles, as the SLIs
  L_p50 ... give them), and its false-positive rate M4 from `sli_values`;
- one policy by version, and the audit -> enforce impact of its audit / dryrun / warn
  decisions, from the tuning rollups (migration 0015, keyed by policy first): by version and
  enforcement mode (`DECISION_VERSIONS`), and the denies of decisions not enforced by resource
  (`AUDIT_DENIES`). They hold whole hours: a range's partial hours at either edge (and a range
  drawn in minutes, up to 6 hours) are read from that policy's raw decisions, at most two
  hours of them. Latency per version is the rollups' histogram, its percentiles computed by
  the same function as the read API's (`metrics.latency.percentiles`);
- false positives are the analysts' verdicts (`triage_verdicts`, latest per subject), counted
  as M4 counts them: a benign verdict whose expiry has passed is no verdict. Verdicts change
  after the fact and carry no version or mode, so no rollup holds them: the policy's current
  ones are looked up by event id (`IN`) among the decisions analysts can label, the denies
  and warns of `triage_subjects` (migration 0018, which keeps their version and mode), not
  among all of the policy's decisions.

The page filters by team, environment and cluster (`dashboards.filters.DIMENSIONS`), the
dimensions the tuning rollups keep; another raises ValueError.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import polars as pl
from clickhouse_connect.driver.client import Client

from dashboards.queries import TIME, dimension_filter, frame, time_range
from dashboards.queries.live import grain
from metrics import read
from metrics.latency import BOUNDS, BUCKET_COUNT, bucket_span, percentiles
from metrics.windows import ceil_hour, floor_hour
from schemas.events import DECISIONS
from schemas.tables import AUDIT_DENIES, DECISION_VERSIONS, TRIAGE_SUBJECTS, TRIAGE_VERDICTS

NOT_ENFORCED = ("audit", "dryrun", "warn")  # every mode but enforce (AUDIT_DENIES keeps those)
QUANTILES = read.QUANTILES  # p50, p95, p99
FILTERS = {"team": "team", "environment": "environment", "cluster": "cluster"}  # the rollups'
BUCKETS = {"1m": "toStartOfMinute", "1h": "toStartOfHour", "1d": "toStartOfDay"}

# the decisions' current verdicts, as M4 reads them (an expired benign verdict is none)
_VERDICTS = f"""
    SELECT subject_id, verdict FROM {TRIAGE_VERDICTS} FINAL
    WHERE subject_kind = 'decision' AND policy_id = {{policy:String}} AND verdict != ''
      AND subject_time >= {{start:{TIME}}} AND subject_time < {{end:{TIME}}}
      AND NOT (verdict = 'benign' AND expires_at IS NOT NULL AND expires_at <= now64(3))"""


def _bounds(policy: str, start: datetime, end: datetime, where: dict[str, str],
            rollup_grain: bool = True) -> tuple[dict[str, str], dict]:
    """The conditions each part of a tuning read needs, and their parameters:

    - `hours`: the rollups' whole hours inside [start, end) (none when `rollup_grain` is
      False: a series in minutes reads raw rows only);
    - `edges`: the raw decisions in [start, end) outside those hours;
    - `filters`: the dimension filter (columns both the rollups and the raw table have);
    - `labelled`: the policy's decisions in the range with a current verdict (one row per
      event id), found by `IN` on the verdicts' ids, and `false_positives` those labelled
      false positive; `is_false_positive`: a condition on their `event_id`. No join and no
      FINAL: an `IN` over the policy's subjects and LIMIT 1 BY event id cost a quarter.
    """
    times, params = time_range(start, end)
    filters, more = dimension_filter(where, columns=FILTERS)
    first, last = (ceil_hour(start), floor_hour(end)) if rollup_grain else (start, start)
    if first >= last:
        first = last = start
    fps = f"SELECT subject_id FROM ({_VERDICTS}) WHERE verdict = 'false_positive'"

    def labelled(ids: str) -> str:
        return (f"(SELECT * FROM {TRIAGE_SUBJECTS} WHERE policy_id = {{policy:String}} AND "
                f"{times} {filters} AND event_id IN ({ids}) LIMIT 1 BY event_id)")
    spans = f"event_time >= {{hours_start:{TIME}}} AND event_time < {{hours_end:{TIME}}}"
    return {
        "hours": "hour >= {hours_start:DateTime('UTC')} AND hour < {hours_end:DateTime('UTC')}",
        "edges": f"{times} AND NOT ({spans})",
        "filters": filters,
        "labelled": labelled(f"SELECT subject_id FROM ({_VERDICTS})"),
        "false_positives": labelled(fps),
        "is_false_positive": f"event_id IN ({fps})",
    }, {"policy": policy, "hours_start": first, "hours_end": last, "bounds": list(BOUNDS),
        **params, **more}


_LATENCY = ("sumMapIf(map(toUInt8(arrayFirstIndex(b -> assumeNotNull(latency_seconds) <= b, "
            "{bounds:Array(Float64)})), toUInt64(1)), latency_seconds IS NOT NULL)")


def policies(client: Client, start: datetime, end: datetime, where: dict[str, str],
             window: str) -> pd.DataFrame:
    """policy, decisions, deny_rate, warn_rate, error_rate, p50_s, p95_s, p99_s, fp_rate
    (M4 over `window` at its latest evaluation, by policy: None when nothing is triaged),
    busiest first."""
    sums = read.latency_percentiles(client, start, end, where=where, by=["policy"],
                                    measures=("total", "denies", "warns", "errors"))
    sums = sums.filter(pl.col("total") > 0).with_columns(
        pl.col("key").str.replace("^policy=", "").alias("policy"))
    fp = read.sli_values(client, sli="M4", window=window, by="policy").select(
        pl.col("dimension_value").cast(pl.String).alias("policy"),
        pl.col("value").alias("fp_rate"))
    out = sums.join(fp, on="policy", how="left").select(
        "policy", pl.col("total").alias("decisions"),
        (pl.col("denies") / pl.col("total")).alias("deny_rate"),
        (pl.col("warns") / pl.col("total")).alias("warn_rate"),
        (pl.col("errors") / pl.col("total")).alias("error_rate"),
        *[pl.col(q).alias(f"{q}_s") for q in QUANTILES], "fp_rate")
    return out.sort(["decisions", "policy"], descending=[True, False]).to_pandas()


def _percentiles(histograms: list[dict]) -> list[dict[str, float | None]]:
    """p50, p95, p99 (seconds) of each histogram (bucket index -> count), as the read API
    computes them."""
    counts = np.zeros((BUCKET_COUNT, len(histograms)), dtype=np.int64)
    for column, histogram in enumerate(histograms):
        for index, count in histogram.items():
            counts[int(index), column] = count
    buckets = bucket_span(np.ones(BUCKET_COUNT, dtype=bool))
    found = percentiles(np.ascontiguousarray(counts[buckets]), list(QUANTILES.values()),
                        buckets)
    return [{f"{q}_s": None if np.isnan(v[i]) else float(v[i]) for q, v in zip(QUANTILES, found)}
            for i in range(len(histograms))]


ROW_COLUMNS = ["time", "version", "decisions", "denies", "warns", "errors", "first_seen",
               "last_seen", "buckets", "triaged", "false_positives"]
VERSION_TABLE = ["version", "decisions", "deny_rate", "warn_rate", "error_rate", "p50_s",
                 "p95_s", "p99_s", "triaged", "false_positives", "fp_rate", "first_seen",
                 "last_seen"]


def by_version(client: Client, policy: str, start: datetime, end: datetime,
               where: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One read of `policy`'s decisions in the range, grouped by time bucket (minute, hour or
    day, as the Live page's series) and version -- the version rollup's whole hours, the raw
    decisions of the partial hours at the edges (all of them for a series in minutes), and
    the current verdicts among them -- giving

    - one row per version seen, oldest first: version ('' when unversioned), decisions,
      deny_rate, warn_rate, error_rate, p50_s, p95_s, p99_s, triaged, false_positives,
      fp_rate (None when nothing is triaged), first_seen, last_seen;
    - its series: time, version, decisions, deny_rate."""
    chosen = grain(start, end)
    sql, params = _bounds(policy, start, end, where, rollup_grain=chosen != "1m")
    bucket = BUCKETS[chosen]
    rows = frame(client, f"""
        SELECT c.time, c.version, c.n, c.d, c.w, c.e, c.f, c.l, c.b, v.triaged, v.fps FROM (
            SELECT time, version, sum(n) AS n, sum(d) AS d, sum(w) AS w, sum(e) AS e,
                   min(f) AS f, max(l) AS l, sumMap(b) AS b FROM (
                SELECT toDateTime({bucket}(hour), 'UTC') AS time, policy_version AS version,
                       sum(total) AS n, sum(denies) AS d, sum(warns) AS w, sum(errors) AS e,
                       min(first_seen) AS f, max(last_seen) AS l, sumMap(latency_buckets) AS b
                FROM {DECISION_VERSIONS}
                WHERE policy_id = {{policy:String}} AND {sql["hours"]} {sql["filters"]}
                GROUP BY time, version
                UNION ALL
                SELECT toDateTime({bucket}(event_time), 'UTC') AS time, policy_version, count(),
                       countIf(outcome = 'deny'), countIf(outcome = 'warn'),
                       countIf(outcome = 'error'), min(event_time), max(event_time), {_LATENCY}
                FROM {DECISIONS.name}
                WHERE policy_id = {{policy:String}} AND {sql["edges"]} {sql["filters"]}
                GROUP BY time, policy_version)
            GROUP BY time, version) AS c
        LEFT JOIN (
            SELECT toDateTime({bucket}(event_time), 'UTC') AS time, policy_version AS version,
                   count() AS triaged, countIf({sql["is_false_positive"]}) AS fps
            FROM {sql["labelled"]} GROUP BY time, version) AS v
        ON v.time = c.time AND v.version = c.version
        ORDER BY c.time, c.version""", params, ROW_COLUMNS)
    series = rows[["time", "version", "decisions"]].assign(
        deny_rate=rows["denies"] / rows["decisions"])
    if rows.empty:
        return pd.DataFrame(columns=VERSION_TABLE), series
    merged = {}
    for version, group in rows.groupby("version", sort=False):
        histogram: dict[int, int] = {}
        for buckets in group["buckets"]:
            for index, count in buckets.items():
                histogram[int(index)] = histogram.get(int(index), 0) + int(count)
        merged[version] = {"version": version, "first_seen": group["first_seen"].min(),
                           "last_seen": group["last_seen"].max(), "histogram": histogram,
                           **{c: int(group[c].sum()) for c in (
                               "decisions", "denies", "warns", "errors", "triaged",
                               "false_positives")}}
    ordered = sorted(merged.values(), key=lambda r: (r["first_seen"], r["version"]))
    quantiles = _percentiles([r.pop("histogram") for r in ordered])
    out = pd.DataFrame([{**r, **q} for r, q in zip(ordered, quantiles)])
    rate = {name: [n / d if d else None for n, d in zip(out[column], out[over])]
            for name, column, over in (("deny_rate", "denies", "decisions"),
                                       ("warn_rate", "warns", "decisions"),
                                       ("error_rate", "errors", "decisions"),
                                       ("fp_rate", "false_positives", "triaged"))}
    return out.assign(**rate)[VERSION_TABLE], series


def audit_impact(client: Client, policy: str, start: datetime, end: datetime,
                 where: dict[str, str], limit: int = 100) -> dict:
    """What enforcing `policy` would have blocked: its denies in audit / dryrun / warn mode
    in the range (the rollups' whole hours and the raw edges, by resource and by day, and one
    lookup of the false-positive verdicts among them). {not_enforced: decisions in those
    modes, would_block, known_fps (of those denies, labelled false positive), by_resource:
    team, resource_kind, resource_name, would_block, known_fps (the `limit` largest), by_day:
    day, not_enforced, would_block, known_fps}. Its three reads are `audit_by_resource`,
    `audit_by_day` and `audit_false_positives` (a page runs them at once), joined by
    `audit_combined`."""
    return audit_combined(audit_by_resource(client, policy, start, end, where, limit),
                          audit_by_day(client, policy, start, end, where),
                          audit_false_positives(client, policy, start, end, where))


_MODES = "enforcement IN {modes:Array(String)}"
_RESOURCE = ["team", "resource_kind", "resource_name"]


def _audit_bounds(policy: str, start: datetime, end: datetime, where: dict[str, str],
                  limit: int = 0) -> tuple[dict[str, str], dict]:
    sql, params = _bounds(policy, start, end, where)
    return sql, {**params, "modes": list(NOT_ENFORCED), "limit": int(limit)}


def audit_by_resource(client: Client, policy: str, start: datetime, end: datetime,
                      where: dict[str, str], limit: int = 100) -> pd.DataFrame:
    """team, resource_kind, resource_name, would_block: the `limit` resources with most
    denies of `policy` not enforced in the range."""
    sql, bound = _audit_bounds(policy, start, end, where, limit)
    keys = ", ".join(_RESOURCE)
    return frame(client, f"""
        SELECT {keys}, sum(n) AS would_block FROM (
            SELECT {keys}, sum(denies) AS n FROM {AUDIT_DENIES}
            WHERE policy_id = {{policy:String}} AND {_MODES} AND {sql["hours"]} {sql["filters"]}
            GROUP BY {keys}
            UNION ALL
            SELECT {keys}, count() FROM {DECISIONS.name}
            WHERE policy_id = {{policy:String}} AND {_MODES} AND outcome = 'deny'
              AND {sql["edges"]} {sql["filters"]}
            GROUP BY {keys})
        GROUP BY {keys} ORDER BY would_block DESC, {keys} LIMIT {{limit:UInt32}}""", bound,
                 [*_RESOURCE, "would_block"])


def audit_by_day(client: Client, policy: str, start: datetime, end: datetime,
                 where: dict[str, str]) -> pd.DataFrame:
    """day, not_enforced, would_block: `policy`'s decisions not enforced per day, and their
    denies."""
    sql, bound = _audit_bounds(policy, start, end, where)
    return frame(client, f"""
        SELECT day, sum(n) AS not_enforced, sum(d) AS would_block FROM (
            SELECT toDateTime(toStartOfDay(hour), 'UTC') AS day, sum(total) AS n,
                   sum(denies) AS d FROM {DECISION_VERSIONS}
            WHERE policy_id = {{policy:String}} AND {_MODES} AND {sql["hours"]} {sql["filters"]}
            GROUP BY day
            UNION ALL
            SELECT toDateTime(toStartOfDay(event_time), 'UTC') AS day, count(),
                   countIf(outcome = 'deny') FROM {DECISIONS.name}
            WHERE policy_id = {{policy:String}} AND {_MODES} AND {sql["edges"]} {sql["filters"]}
            GROUP BY day)
        GROUP BY day ORDER BY day""", bound, ["day", "not_enforced", "would_block"])


def audit_false_positives(client: Client, policy: str, start: datetime, end: datetime,
                          where: dict[str, str]) -> pd.DataFrame:
    """day, team, resource_kind, resource_name, known_fps: the denies of `policy` not
    enforced that analysts labelled false positive."""
    sql, bound = _audit_bounds(policy, start, end, where)
    keys = ", ".join(_RESOURCE)
    return frame(client, f"""
        SELECT toDateTime(toStartOfDay(event_time), 'UTC') AS day, {keys}, count()
        FROM {sql["false_positives"]} WHERE {_MODES} AND outcome = 'deny'
        GROUP BY day, {keys}""", bound, ["day", *_RESOURCE, "known_fps"])


def audit_combined(by_resource: pd.DataFrame, by_day: pd.DataFrame, fps: pd.DataFrame
                   ) -> dict:
    """`audit_impact`'s result from its three reads: the known false positives merged into
    both tables, and the totals."""
    by_resource = by_resource.merge(fps.groupby(_RESOURCE, as_index=False)["known_fps"].sum(),
                                    on=_RESOURCE, how="left")
    by_day = by_day.merge(fps.groupby("day", as_index=False)["known_fps"].sum(), on="day",
                          how="left")
    for table in (by_resource, by_day):
        table["known_fps"] = table["known_fps"].fillna(0).astype("int64")
    return {"not_enforced": int(by_day["not_enforced"].sum()),
            "would_block": int(by_day["would_block"].sum()),
            "known_fps": int(fps["known_fps"].sum()), "by_resource": by_resource,
            "by_day": by_day}
