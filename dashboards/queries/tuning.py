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
  after the fact, so no rollup holds them: they are read from `triage_verdicts` itself, where
  each carries its decision's version, enforcement mode, outcome and resource (copied from
  the subject when it was labelled; migration 0022).

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
from schemas.tables import AUDIT_DENIES, DECISION_VERSIONS, TRIAGE_VERDICTS

NOT_ENFORCED = ("audit", "dryrun", "warn")  # every mode but enforce (AUDIT_DENIES keeps those)
QUANTILES = read.QUANTILES  # p50, p95, p99
FILTERS = {"team": "team", "environment": "environment", "cluster": "cluster"}  # the rollups'
BUCKETS = {"1m": "toStartOfMinute", "1h": "toStartOfHour", "1d": "toStartOfDay"}


def _bounds(policy: str, start: datetime, end: datetime, where: dict[str, str],
            rollup_grain: bool = True) -> tuple[dict[str, str], dict]:
    """The conditions each part of a tuning read needs, and their parameters:

    - `hours`: the rollups' whole hours inside [start, end) (none when `rollup_grain` is
      False: a series in minutes reads raw rows only);
    - `edges`: the raw decisions in [start, end) outside those hours;
    - `filters`: the dimension filter (columns both the rollups and the raw table have).
    """
    times, params = time_range(start, end)
    filters, more = dimension_filter(where, columns=FILTERS)
    first, last = (ceil_hour(start), floor_hour(end)) if rollup_grain else (start, start)
    if first >= last:
        first = last = start
    spans = f"event_time >= {{hours_start:{TIME}}} AND event_time < {{hours_end:{TIME}}}"
    return {
        "hours": "hour >= {hours_start:DateTime('UTC')} AND hour < {hours_end:DateTime('UTC')}",
        "edges": f"{times} AND NOT ({spans})",
        "filters": filters,
    }, {"policy": policy, "hours_start": first, "hours_end": last, "bounds": list(BOUNDS),
        **params, **more}


_LATENCY = ("sumMapIf(map(toUInt8(arrayFirstIndex(b -> assumeNotNull(latency_seconds) <= b, "
            "{bounds:Array(Float64)})), toUInt64(1)), latency_seconds IS NOT NULL)")


def _busiest_first(frame: pl.DataFrame) -> pl.DataFrame:
    """The policies of a read by policy (`key` 'policy=...') that decided something, as
    `policy`, most decisions first (then by name): the order `policies` lists them in."""
    return frame.filter(pl.col("total") > 0).with_columns(
        pl.col("key").str.replace("^policy=", "").alias("policy")).sort(
        ["total", "policy"], descending=[True, False])


def policy_names(client: Client, start: datetime, end: datetime, where: dict[str, str]
                 ) -> list[str]:
    """The policies `policies` lists, in its order, from the decision totals alone (no
    histogram, no SLI values): a page picks its policy from them and reads that policy's
    versions while `policies` is still being read."""
    sums = read.window_totals(client, "decisions", start, end, ["total"], where=where,
                              by=["policy"])
    return _busiest_first(sums)["policy"].to_list()


def policies(client: Client, start: datetime, end: datetime, where: dict[str, str],
             window: str) -> pd.DataFrame:
    """policy, decisions, deny_rate, warn_rate, error_rate, p50_s, p95_s, p99_s, fp_rate
    (M4 over `window` at its latest evaluation, by policy: None when nothing is triaged),
    busiest first."""
    sums = read.latency_percentiles(client, start, end, where=where, by=["policy"],
                                    measures=("total", "denies", "warns", "errors"))
    sums = _busiest_first(sums)
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


_MODES = "enforcement IN {modes:Array(String)}"
_RESOURCE = ["team", "resource_kind", "resource_name"]
COUNT_COLUMNS = ["time", "version", "not_enforced", "decisions", "denies", "warns", "errors",
                 "first_seen", "last_seen", "buckets"]
VERDICT_COLUMNS = ["time", "version", "not_enforced", "deny", "false_positive", *_RESOURCE,
                   "subjects"]
VERSION_TABLE = ["version", "decisions", "deny_rate", "warn_rate", "error_rate", "p50_s",
                 "p95_s", "p99_s", "triaged", "false_positives", "fp_rate", "first_seen",
                 "last_seen"]


def _series_bounds(policy: str, start: datetime, end: datetime, where: dict[str, str]
                   ) -> tuple[str, dict[str, str], dict]:
    """The time bucket function of the range's series (minute, hour or day, as the Live
    page's), the conditions and the parameters of the reads bucketed by it (`_bounds`: a
    series in minutes reads raw rows only)."""
    chosen = grain(start, end)
    sql, params = _bounds(policy, start, end, where, rollup_grain=chosen != "1m")
    return BUCKETS[chosen], sql, {**params, "modes": list(NOT_ENFORCED)}


def decision_counts(client: Client, policy: str, start: datetime, end: datetime,
                    where: dict[str, str]) -> pd.DataFrame:
    """`policy`'s decisions in the range by time bucket (`_series_bounds`), version and
    whether they were enforced -- the version rollup's whole hours and the raw decisions of
    the partial hours at the edges: time, version, not_enforced (audit / dryrun / warn),
    decisions, denies, warns, errors, first_seen, last_seen, buckets (the latency histogram,
    bucket index -> count). One read gives the versions (`versions_of`) and the decisions
    not enforced per day (`audit_combined`)."""
    bucket, sql, params = _series_bounds(policy, start, end, where)
    return frame(client, f"""
        SELECT time, version, not_enforced, sum(n), sum(d), sum(w), sum(e), min(f), max(l),
               sumMap(b) FROM (
            SELECT toDateTime({bucket}(hour), 'UTC') AS time, policy_version AS version,
                   {_MODES} AS not_enforced, sum(total) AS n, sum(denies) AS d,
                   sum(warns) AS w, sum(errors) AS e, min(first_seen) AS f,
                   max(last_seen) AS l, sumMap(latency_buckets) AS b
            FROM {DECISION_VERSIONS}
            WHERE policy_id = {{policy:String}} AND {sql["hours"]} {sql["filters"]}
            GROUP BY time, version, not_enforced
            UNION ALL
            SELECT toDateTime({bucket}(event_time), 'UTC') AS time, policy_version,
                   {_MODES}, count(), countIf(outcome = 'deny'), countIf(outcome = 'warn'),
                   countIf(outcome = 'error'), min(event_time), max(event_time), {_LATENCY}
            FROM {DECISIONS.name}
            WHERE policy_id = {{policy:String}} AND {sql["edges"]} {sql["filters"]}
            GROUP BY time, policy_version, {_MODES})
        GROUP BY time, version, not_enforced
        ORDER BY time, version, not_enforced""", params, COUNT_COLUMNS)


def verdict_counts(client: Client, policy: str, start: datetime, end: datetime,
                   where: dict[str, str]) -> pd.DataFrame:
    """`policy`'s decisions in the range with a current verdict, counted by time bucket (as
    `decision_counts`), version, whether enforced, whether a deny and whether labelled false
    positive: time, version, not_enforced, deny, false_positive, team, resource_kind,
    resource_name (set only for the denies not enforced labelled false positive -- the known
    FPs enforcing would block -- else ''), subjects. One read of `triage_verdicts` gives the
    versions' FP rates (`versions_of`) and the known false positives of the audit -> enforce
    impact (`audit_combined`)."""
    bucket, sql, params = _series_bounds(policy, start, end, where)
    kept = ", ".join(f"if(known, {c}, '')" for c in _RESOURCE)
    times, _ = time_range(start, end, "subject_time")
    return frame(client, f"""
        SELECT time, version, not_enforced, deny, false_positive, {kept}, count() FROM (
            SELECT toDateTime({bucket}(subject_time), 'UTC') AS time, policy_version AS version,
                   {_MODES} AS not_enforced, outcome = 'deny' AS deny,
                   verdict = 'false_positive' AS false_positive,
                   not_enforced AND deny AND false_positive AS known, {", ".join(_RESOURCE)}
            FROM {TRIAGE_VERDICTS} FINAL
            WHERE subject_kind = 'decision' AND policy_id = {{policy:String}} AND {times}
              {sql["filters"]} AND verdict != ''
              AND NOT (verdict = 'benign' AND expires_at IS NOT NULL
                       AND expires_at <= now64(3)))
        GROUP BY ALL ORDER BY time, version""", params, VERDICT_COLUMNS)


def versions_of(counts: pd.DataFrame, verdicts: pd.DataFrame
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """From `decision_counts` and `verdict_counts`:

    - one row per version seen, oldest first: version ('' when unversioned), decisions,
      deny_rate, warn_rate, error_rate, p50_s, p95_s, p99_s, triaged, false_positives,
      fp_rate (None when nothing is triaged), first_seen, last_seen;
    - its series: time, version, decisions, deny_rate.

    A few dozen rows each: summed in plain Python, which pandas' grouping costs many times
    over at this size."""
    per_time: dict[tuple, list[int]] = {}
    merged: dict[str, dict] = {}
    for time, version, decisions, denies, warns, errors, first, last, buckets in zip(
            *(counts[c].tolist() for c in ("time", "version", "decisions", "denies", "warns",
                                           "errors", "first_seen", "last_seen", "buckets"))):
        slot = per_time.setdefault((time, version), [0, 0])
        slot[0] += decisions
        slot[1] += denies
        row = merged.get(version)
        if row is None:
            row = merged[version] = {"version": version, "first_seen": first, "last_seen": last,
                                     "histogram": {}, "decisions": 0, "denies": 0, "warns": 0,
                                     "errors": 0}
        row["first_seen"], row["last_seen"] = min(row["first_seen"], first), max(
            row["last_seen"], last)
        for name, n in (("decisions", decisions), ("denies", denies), ("warns", warns),
                        ("errors", errors)):
            row[name] += int(n)
        histogram = row["histogram"]
        for index, count in buckets.items():
            histogram[int(index)] = histogram.get(int(index), 0) + int(count)
    times = sorted(per_time)
    series = pd.DataFrame({
        "time": pd.Series([t for t, _ in times], dtype=counts["time"].dtype),
        "version": pd.Series([v for _, v in times], dtype=counts["version"].dtype),
        "decisions": pd.Series([per_time[k][0] for k in times], dtype=counts["decisions"].dtype),
        "deny_rate": pd.Series([per_time[k][1] / per_time[k][0] if per_time[k][0] else np.nan
                                for k in times], dtype="float64")})
    if not merged:
        return pd.DataFrame(columns=VERSION_TABLE), series
    labelled: dict[str, list[int]] = {}
    for version, false_positive, subjects in zip(
            *(verdicts[c].tolist() for c in ("version", "false_positive", "subjects"))):
        slot = labelled.setdefault(version, [0, 0])
        slot[0] += int(subjects)
        slot[1] += int(subjects) if false_positive else 0
    ordered = sorted(merged.values(), key=lambda r: (r["first_seen"], r["version"]))
    for row, quantile in zip(ordered, _percentiles([r.pop("histogram") for r in ordered])):
        triaged, fps = labelled.get(row["version"], (0, 0))
        row.update(quantile, triaged=triaged, false_positives=fps,
                   deny_rate=row["denies"] / row["decisions"] if row["decisions"] else None,
                   warn_rate=row["warns"] / row["decisions"] if row["decisions"] else None,
                   error_rate=row["errors"] / row["decisions"] if row["decisions"] else None,
                   fp_rate=fps / triaged if triaged else None)
    return pd.DataFrame(ordered, columns=VERSION_TABLE), series


def chosen_policy(client: Client, policy: str, start: datetime, end: datetime,
                  where: dict[str, str], limit: int = 100
                  ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """`policy` in the range as the page shows it, from its three reads one after another (a
    page runs them at once): its versions and their series (`versions_of`) and what enforcing
    it would have blocked (`audit_combined`: {not_enforced: decisions in audit / dryrun /
    warn mode, would_block, known_fps (of those denies, labelled false positive),
    by_resource: team, resource_kind, resource_name, would_block, known_fps (the `limit`
    largest)})."""
    counts = decision_counts(client, policy, start, end, where)
    verdicts = verdict_counts(client, policy, start, end, where)
    by_resource = audit_by_resource(client, policy, start, end, where, limit)
    return (*versions_of(counts, verdicts), audit_combined(by_resource, counts, verdicts))


def audit_by_resource(client: Client, policy: str, start: datetime, end: datetime,
                      where: dict[str, str], limit: int = 100) -> pd.DataFrame:
    """team, resource_kind, resource_name, would_block: the `limit` resources with most
    denies of `policy` not enforced in the range."""
    sql, params = _bounds(policy, start, end, where)
    bound = {**params, "modes": list(NOT_ENFORCED), "limit": int(limit)}
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


def audit_combined(by_resource: pd.DataFrame, counts: pd.DataFrame, verdicts: pd.DataFrame
                   ) -> dict:
    """What enforcing the policy would have blocked (see `chosen_policy`), from its reads:
    the totals of the decisions not enforced in `counts`, and the known false positives of
    `verdicts` in total and merged into `by_resource` (summed in plain Python, as in
    `versions_of`)."""
    not_enforced = would_block = 0
    for audit, decisions, denies in zip(
            *(counts[c].tolist() for c in ("not_enforced", "decisions", "denies"))):
        if audit:
            not_enforced += int(decisions)
            would_block += int(denies)
    known: dict[tuple, int] = {}
    for audit, deny, false_positive, *resource, subjects in zip(
            *(verdicts[c].tolist() for c in ("not_enforced", "deny", "false_positive",
                                             *_RESOURCE, "subjects"))):
        if audit and deny and false_positive:
            known[tuple(resource)] = known.get(tuple(resource), 0) + int(subjects)
    resources = zip(*(by_resource[c].tolist() for c in _RESOURCE))
    by_resource = by_resource.assign(known_fps=np.array(
        [known.get(r, 0) for r in resources], dtype=np.int64))
    return {"not_enforced": not_enforced, "would_block": would_block,
            "known_fps": sum(known.values()), "by_resource": by_resource}
