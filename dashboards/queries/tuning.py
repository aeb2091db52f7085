"""The Policy tuning page's reads.

- every policy over the range: volume, deny / warn / error rates and latency p50 / p95 / p99
  from the decision rollups through the read API (the histogram's percentiles, as the SLIs
  L_p50 ... give them), and its false-positive rate M4 from `sli_values`;
- one policy by version, and the audit -> enforce impact of its audit / dryrun / warn
  decisions: the rollups keep neither version nor enforcement mode, so these read that one
  policy's raw decisions in the range (the sort key's policy_id prunes the rest). Latency per
  version is summed into the rollups' histogram buckets in the query and its percentiles are
  computed by the same function (`metrics.latency.percentiles`);
- false positives are the analysts' verdicts (`triage_verdicts`, latest per subject), counted
  as M4 counts them: a benign verdict whose expiry has passed is no verdict.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import polars as pl
from clickhouse_connect.driver.client import Client

from dashboards.queries import dimension_filter, frame, time_range
from dashboards.queries.live import grain
from metrics import read
from metrics.latency import BOUNDS, BUCKET_COUNT, bucket_span, percentiles
from schemas.events import DECISIONS
from schemas.tables import TRIAGE_VERDICTS

NOT_ENFORCED = ("audit", "dryrun", "warn")
QUANTILES = read.QUANTILES  # p50, p95, p99

# the decisions' current verdicts, as M4 reads them (an expired benign verdict is none)
_VERDICTS = f"""
    SELECT subject_id, verdict FROM {TRIAGE_VERDICTS} FINAL
    WHERE subject_kind = 'decision' AND policy_id = {{policy:String}} AND verdict != ''
      AND NOT (verdict = 'benign' AND expires_at IS NOT NULL AND expires_at <= now64(3))"""


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
    day, as the Live page's series) and version, giving

    - one row per version seen, oldest first: version ('' when unversioned), decisions,
      deny_rate, warn_rate, error_rate, p50_s, p95_s, p99_s, triaged, false_positives,
      fp_rate (None when nothing is triaged), first_seen, last_seen;
    - its series: time, version, decisions, deny_rate."""
    times, params = time_range(start, end)
    filters, more = dimension_filter(where)
    bucket = {"1m": "toStartOfMinute", "1h": "toStartOfHour", "1d": "toStartOfDay"}[
        grain(start, end)]
    rows = frame(client, f"""
        SELECT {bucket}(event_time) AS time, policy_version, count(),
               countIf(outcome = 'deny'), countIf(outcome = 'warn'), countIf(outcome = 'error'),
               min(event_time), max(event_time),
               sumMapIf(map(toUInt8(arrayFirstIndex(b -> assumeNotNull(latency_seconds) <= b,
                                                    {{bounds:Array(Float64)}})), toUInt64(1)),
                        latency_seconds IS NOT NULL),
               countIf(verdict != ''), countIf(verdict = 'false_positive')
        FROM {DECISIONS.name} AS d
        LEFT JOIN ({_VERDICTS}) AS v ON v.subject_id = d.event_id
        WHERE policy_id = {{policy:String}} AND {times} {filters}
        GROUP BY time, policy_version ORDER BY time, policy_version""",
                 {"policy": policy, "bounds": list(BOUNDS), **params, **more}, ROW_COLUMNS)
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
    in the range (two reads). {not_enforced: decisions in those modes, would_block,
    known_fps (of those denies, labelled false positive), by_resource: team, resource_kind,
    resource_name, would_block, known_fps (the `limit` largest), by_day: day, not_enforced,
    would_block, known_fps}."""
    times, params = time_range(start, end)
    filters, more = dimension_filter(where)
    bound = {"policy": policy, "modes": list(NOT_ENFORCED), "limit": int(limit), **params,
             **more}
    base = f"""
        FROM {DECISIONS.name} AS d LEFT JOIN ({_VERDICTS}) AS v ON v.subject_id = d.event_id
        WHERE policy_id = {{policy:String}} AND enforcement IN {{modes:Array(String)}}
          AND {times} {filters}"""
    by_resource = frame(client, f"""
        SELECT team, resource_kind, resource_name, count() AS would_block,
               countIf(verdict = 'false_positive') AS known_fps {base} AND outcome = 'deny'
        GROUP BY team, resource_kind, resource_name
        ORDER BY would_block DESC, team, resource_kind, resource_name
        LIMIT {{limit:UInt32}}""", bound,
                        ["team", "resource_kind", "resource_name", "would_block", "known_fps"])
    by_day = frame(client, f"""
        SELECT toStartOfDay(event_time) AS day, count() AS not_enforced,
               countIf(outcome = 'deny') AS would_block,
               countIf(outcome = 'deny' AND verdict = 'false_positive') AS known_fps {base}
        GROUP BY day ORDER BY day""", bound, ["day", "not_enforced", "would_block",
                                              "known_fps"])
    return {"not_enforced": int(by_day["not_enforced"].sum()),
            "would_block": int(by_day["would_block"].sum()),
            "known_fps": int(by_day["known_fps"].sum()), "by_resource": by_resource,
            "by_day": by_day}
