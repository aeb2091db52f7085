"""The event counts an SLO is judged on: (numerator, total) of its SLI per window and per value
of its `by` dimensions, restricted by its `where` filter, at one or many evaluation times.

Which SLI is counted how is the catalogue's (schemas/slis.py). SLIs with rollup counts (M1,
L_under, M6) support any `where` and `by` combination: their rollup's window sums are read
filtered and grouped directly through the read API (`metrics.read`), exact to the minute. The
other ratio SLIs (M2, M4, M7, M8, M9) come from their SLI family, which breaks values down one
dimension at a time, so their SLOs may use one dimension in `where` or in `by`, not more.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
from clickhouse_connect.driver.client import Client

from metrics import read, sources
from metrics.latency import BUCKET_COUNT, count_at_or_under
from metrics.sli import agents, alerting, coverage, false_positives
from metrics.sli.base import Context
from metrics.windows import intervals
from schemas.slis import SLIS, SLO_SLIS

COLUMNS = ["at", "window", "key", "numerator", "total"]
ROLLUP_SLIS = frozenset(s for s in SLO_SLIS if SLIS[s].multi_dimension)
# the family modules of the other SLO SLIs, by the catalogue's family name
FAMILIES = {module.__name__.rsplit(".", 1)[-1]: module
            for module in (agents, alerting, coverage, false_positives)}
FAMILY_OF = {s: FAMILIES[SLIS[s].family] for s in SLO_SLIS if s not in ROLLUP_SLIS}


class UnsupportedSlo(ValueError):
    """The SLO asks for a breakdown its SLI cannot give."""


def _formula(text: str, names: dict[str, str]) -> tuple[pl.Expr, list[str]]:
    """A catalogue count formula ('total - errors', 'blocked') as an expression over the
    measures it names (renamed by `names`), and those measures."""
    terms = text.split()
    measures = [names.get(t, t) for t in terms[::2]]
    expr = pl.col(measures[0])
    for sign, measure in zip(terms[1::2], measures[1:]):
        if sign not in ("+", "-"):
            raise ValueError(f"a count formula adds and subtracts measures, got {text!r}")
        expr = expr + pl.col(measure) if sign == "+" else expr - pl.col(measure)
    return expr, measures


def _measures(sli: str, latency_threshold: float) -> dict:
    """The rollup measures an SLI reads, and its (numerator, total) from them: the
    catalogue's formulas, `under` being the decisions at or under the latency threshold."""
    counted = SLIS[sli].counts
    assert counted is not None, sli
    names = {"under": f"under_{count_at_or_under([1] * BUCKET_COUNT, latency_threshold)}"}
    numerator, of_numerator = _formula(counted.numerator, names)
    total, of_total = _formula(counted.total, names)
    return {"measures": list(dict.fromkeys([*of_total, *of_numerator])),
            "numerator": numerator, "total": total}


def _rollup_of(sli: str, where: dict[str, str], by: list[str]) -> sources.Rollup:
    counted = SLIS[sli].counts
    assert counted is not None, sli
    rollup = read.rollup(counted.rollup)
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
    spans = intervals(points, windows)
    sums = read.interval_sums(client, rollup, spans, plan["measures"], where, by)
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
        spans = intervals(points, sorted({w for *_, windows in group for w in windows}))
        sums = read.interval_sums_sets(client, rollup, spans, measures,
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
