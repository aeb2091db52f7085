"""The event counts an SLO is judged on: (numerator, total) of its SLI per window and per value
of its `by` dimensions, restricted by its `where` filter, at one or many evaluation times.

SLIs with rollups (M1, L_under, M6) support any `where` and `by` combination: the rollups are
queried filtered and grouped directly, and windows are summed exactly (metrics/windows.py).
The other ratio SLIs (M2, M4, M7, M8, M9) come from their SLI family, which breaks values down
one dimension at a time, so their SLOs may use one dimension in `where` or in `by`, not more.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
from clickhouse_connect.driver.client import Client

from metrics import sources
from metrics.latency import BUCKET_COUNT, count_at_or_under
from metrics.sli import agents, alerting, coverage, false_positives
from metrics.sli.base import Context
from metrics.windows import pairs

COLUMNS = ["at", "window", "key", "numerator", "total"]
ROLLUP_SLIS = {"M1", "L_under", "M6"}
FAMILY_OF = {"M2": coverage, "M9": coverage, "M4": false_positives, "M7": alerting,
             "M8": agents}


class UnsupportedSlo(ValueError):
    """The SLO asks for a breakdown its SLI cannot give."""


def _measures(sli: str, latency_threshold: float) -> dict[str, pl.Expr]:
    """The rollup measures an SLI reads, and its (numerator, total) from them."""
    if sli == "M1":
        return {"measures": ["total", "errors"],
                "numerator": pl.col("total") - pl.col("errors"), "total": pl.col("total")}
    if sli == "M6":
        return {"measures": ["total", "blocked"], "numerator": pl.col("blocked"),
                "total": pl.col("total")}
    under = f"under_{count_at_or_under([1] * BUCKET_COUNT, latency_threshold)}"
    return {"measures": ["latency_count", under], "numerator": pl.col(under),
            "total": pl.col("latency_count")}


def _rollup_of(sli: str, where: dict[str, str], by: list[str]) -> sources.Rollup:
    rollup = sources.GATES if sli == "M6" else sources.DECISIONS
    unknown = [d for d in [*where, *by] if d not in rollup.dimensions]
    if unknown:
        raise UnsupportedSlo(f"{sli} has no dimension {unknown[0]!r}; it has "
                             + ", ".join(rollup.dimensions))
    return rollup


def _cache_key(sli: str, where: dict[str, str], by: list[str], points: list[datetime],
               windows: list[str], latency_threshold: float) -> tuple:
    return (sli, latency_threshold, tuple(sorted(where.items())), tuple(by), tuple(points),
            tuple(windows))


def _counted(sums: pl.DataFrame, spans: pl.DataFrame, plan: dict, by: list[str]
             ) -> pl.DataFrame:
    """(numerator, total) per (at, window, key) from the window sums of an SLO's measures."""
    overall = spans.select("at", "window").with_columns(key=pl.lit(""))
    counted = sums.select("at", "window", "key", plan["numerator"].alias("numerator"),
                          plan["total"].alias("total"))
    if not by:  # an empty window still has its (empty) overall row
        counted = overall.join(counted, on=["at", "window", "key"], how="left").with_columns(
            pl.col("numerator").fill_null(0), pl.col("total").fill_null(0))
    return counted


def _rollup_counts(client: Client, sli: str, where: dict[str, str], by: list[str],
                   points: list[datetime], windows: list[str], latency_threshold: float,
                   cache: dict | None) -> pl.DataFrame:
    rollup = _rollup_of(sli, where, by)
    plan = _measures(sli, latency_threshold)
    key = _cache_key(sli, where, by, points, windows, latency_threshold)
    if cache is not None and key in cache:  # SLOs sharing an SLI, filter and breakdown
        return cache[key]
    spans = pairs(points, windows)
    sums = sources.rollup_window_sums(client, rollup, spans, plan["measures"], where, by)
    counted = _counted(sums, spans, plan, by)
    if cache is not None:
        cache[key] = counted
    return counted


def prefetch(client: Client, requests: list[tuple[str, dict[str, str], list[str], list[str]]],
             points: list[datetime], cache: dict, *, latency_threshold: float = 0.1) -> None:
    """Read the counts of many SLOs at once into `cache` (for `counts`): every request
    (sli, where, by, windows) on the same rollup is summed in one pass over it
    (`sources.window_totals_sets`), when the points are few. Other requests are left to
    `counts`, which reads them one by one."""
    if len(points) > sources.FEW_POINTS:
        return
    by_rollup: dict[str, list] = {}
    wanted = {_cache_key(sli, where, list(by), points, windows, latency_threshold):
              (sli, where, by, windows) for sli, where, by, windows in requests}
    for key, (sli, where, by, windows) in wanted.items():
        if sli in ROLLUP_SLIS and key not in cache:
            rollup = _rollup_of(sli, where, list(by))
            by_rollup.setdefault(rollup.hour_table, []).append((rollup, sli, where, list(by),
                                                               windows))
    for group in by_rollup.values():
        rollup = group[0][0]
        plans = [_measures(sli, latency_threshold) for _, sli, _, _, _ in group]
        measures = list(dict.fromkeys(m for plan in plans for m in plan["measures"]))
        spans = pairs(points, sorted({w for *_, windows in group for w in windows}))
        sums = sources.window_totals_sets(client, rollup, spans, measures,
                                          [(where, by) for _, _, where, by, _ in group])
        for (_, sli, where, by, windows), plan, frame in zip(group, plans, sums):
            own = spans.filter(pl.col("window").is_in(windows))
            filled = sources.fill_windows(frame.filter(pl.col("window").is_in(windows)),
                                          own, ["key"], plan["measures"])
            cache[_cache_key(sli, where, by, points, windows, latency_threshold)] = \
                _counted(filled, own, plan, by)


def _family_counts(client: Client, sli: str, where: dict[str, str], by: list[str],
                   points: list[datetime], windows: list[str]) -> pl.DataFrame:
    if len(where) + len(by) > 1:
        raise UnsupportedSlo(f"{sli} is broken down one dimension at a time: use one "
                             "dimension in `where` or in `by`, not more")
    ctx = Context(client, points, windows)
    frame = FAMILY_OF[sli].compute(ctx).filter(pl.col("sli") == sli)
    if where:
        (dimension, value), = where.items()
        frame = frame.filter((pl.col("dimension") == dimension)
                             & (pl.col("dimension_value") == value))
        frame = frame.with_columns(key=pl.lit(""))
    elif by:
        frame = frame.filter(pl.col("dimension") == by[0]).with_columns(
            key=pl.lit(f"{by[0]}=") + pl.col("dimension_value"))
    else:
        frame = frame.filter(pl.col("dimension") == "").with_columns(key=pl.lit(""))
    return frame.select("at", "window", "key", pl.col("good").alias("numerator"), "total")


def counts(client: Client, sli: str, where: dict[str, str], by: list[str],
           points: list[datetime], windows: list[str], *, latency_threshold: float = 0.1,
           cache: dict | None = None) -> pl.DataFrame:
    """Columns at, window, key ('team=payments,...' or ''), numerator, total (integers).
    `cache` (one dict per evaluation run) shares reads between SLOs asking the same."""
    if sli in ROLLUP_SLIS:
        frame = _rollup_counts(client, sli, where, list(by), points, windows,
                               latency_threshold, cache)
    elif sli in FAMILY_OF:
        frame = _family_counts(client, sli, where, list(by), points, windows)
    else:
        raise UnsupportedSlo(f"{sli} is not a ratio SLI an SLO can be set on")
    return frame.with_columns(pl.col("numerator").cast(pl.Int64),
                              pl.col("total").cast(pl.Int64)).select(COLUMNS)


def parse_key(key: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in key.split(",")) if key else {}
