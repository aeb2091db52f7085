"""One read API over what the batch layer keeps, for the layers above (dashboards, SLOs, the
CLI): computed SLI values, window totals of a rollup's measures, and decision-latency
percentiles from the histogram.

- `sli_values`: rows of `sli_values` at one evaluation time (default the latest stored).
- `window_totals`: the sums of a rollup's measures over one window [start, end), overall or
  filtered (`where`) and grouped (`by`), exact to the minute (`metrics.sources`);
  `window_totals_sets`: several (where, by) selections of one window in one read;
  `interval_sums` / `interval_sums_sets`: the same over many (point, window) intervals at once.
- `latency_percentiles`: percentiles over [start, end) from the histogram's window sums, by
  the same function as the SLIs L_p50 / L_p95 / L_p99 (`metrics.latency.percentiles`, over
  every bucket as the SLIs' reduce takes them), so a dashboard and `sli_values` show one
  number for one window.
Windows are half-open and their bounds whole minutes (the rollups' grain).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
from clickhouse_connect.driver.client import Client

from metrics import sources
from metrics.latency import BUCKET_COUNT, bucket_span, percentiles
from metrics.sli.base import OUTPUT
from metrics.windows import floor_minute

BUCKETS = [f"b{i}" for i in range(BUCKET_COUNT)]
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
_WINDOW = "[start, end)"  # the window label of a one-off interval


def sli_values(client: Client, *, sli: str | None = None, window: str | None = None,
               by: str | None = None, at: datetime | None = None) -> pl.DataFrame:
    """Stored SLI values (columns of `metrics.sli.base.OUTPUT`) at `at` (default: the latest
    evaluation time stored for the selection), of one SLI and window or all, overall
    (`by` None) or per value of dimension `by`; ordered by sli, window, dimension, value."""
    frame = sources.sli_values(client, sli=sli, window=window, dimension=by or "",
                               at=None if at is None else floor_minute(at))
    return frame.select(list(OUTPUT))


def rollup(name: str | sources.Rollup) -> sources.Rollup:
    """A rollup by its registry family name (`schemas.tables.ROLLUPS`: decisions, gates)."""
    return name if isinstance(name, sources.Rollup) else sources.ROLLUPS[name]


def interval_sums(client: Client, of: str | sources.Rollup, intervals: pl.DataFrame,
                measures: list[str], where: dict[str, str] | None = None,
                by: list[str] | None = None) -> pl.DataFrame:
    """Sums of `measures` over every (at, window, start) row of `intervals`
    (`metrics.windows.intervals`): columns at, window, the keys, measures -- keyed by
    dimension and value without `where` / `by`, else by `key` ('team=a,cluster=b', '' with
    no `by`). See `sources.rollup_window_sums`."""
    return sources.rollup_window_sums(client, rollup(of), intervals, measures, where, by)


def interval_sums_sets(client: Client, of: str | sources.Rollup, intervals: pl.DataFrame,
                     measures: list[str], selections: list[tuple[dict[str, str], list[str]]]
                     ) -> list[pl.DataFrame]:
    """`interval_sums(..., where, by)` for many (where, by) selections in one pass over the
    combined rollups (few points): one frame per selection, columns at, window, key,
    measures; a (window, key) without buckets is left out. See `sources.window_totals_sets`."""
    return sources.window_totals_sets(client, rollup(of), intervals, measures, selections)


def _interval(start: datetime, end: datetime) -> pl.DataFrame:
    if floor_minute(start) != start or floor_minute(end) != end or end < start:
        raise ValueError(f"a window is [start, end) between whole minutes, got [{start}, {end})")
    utc = pl.Datetime("us", "UTC")
    return pl.DataFrame({"at": [end], "window": [_WINDOW], "start": [start]},
                        schema={"at": utc, "window": pl.String, "start": utc})


def window_totals(client: Client, of: str | sources.Rollup, start: datetime, end: datetime,
                  measures: list[str] | None = None, *, where: dict[str, str] | None = None,
                  by: list[str] | None = None) -> pl.DataFrame:
    """The sums of a rollup's `measures` (default: all; `under_<n>` and the histogram's
    `b<i>` included) over events timed in [start, end), both whole minutes (UTC).

    With neither `where` nor `by`: one row per dimension value (columns dimension,
    dimension_value, measures), the overall one (dimension '') always there. Otherwise the
    events `where` selects, one row per value of the `by` dimensions (column `key`, as
    'team=payments,cluster=eu-1'); without `by` the one row has key '' (zeros when the
    window holds nothing)."""
    chosen = rollup(of)
    wanted = list(chosen.measures if measures is None else measures)
    sums = interval_sums(client, chosen, _interval(start, end), wanted, where, by)
    keys = sources.KEYS if where is None and by is None else ["key"]
    sums = sums.select(*[pl.col(k).cast(pl.String) for k in keys], *wanted)
    if not by:  # the overall row of an empty window
        overall = pl.DataFrame({k: [""] for k in keys})
        missing = overall.join(sums.select(keys), on=keys, how="anti")
        if missing.height:
            sums = pl.concat([sums, missing.with_columns(
                pl.lit(0, sums.schema.get(m, pl.Int64)).alias(m) for m in wanted)],
                how="vertical_relaxed")
    return sums.sort(keys)


def window_totals_sets(client: Client, of: str | sources.Rollup, start: datetime,
                       end: datetime, measures: list[str],
                       selections: list[tuple[dict[str, str], list[str]]]) -> list[pl.DataFrame]:
    """`window_totals(..., where=w, by=b)` for each (w, b) of `selections`, from one read of
    the combined rollups (`interval_sums_sets`): one frame per selection, in order, columns
    key and `measures`; a key without buckets in the window is left out."""
    frames = interval_sums_sets(client, of, _interval(start, end), measures, selections)
    return [frame.select(pl.col("key").cast(pl.String), *measures).sort("key")
            for frame in frames]


def latency_percentiles(client: Client, start: datetime, end: datetime,
                        quantiles: dict[str, float] | None = None, *,
                        where: dict[str, str] | None = None, by: list[str] | None = None,
                        measures: tuple[str, ...] = (), buckets: bool = False) -> pl.DataFrame:
    """Decision-latency percentiles in seconds over [start, end) from the histogram's window
    sums, keyed as `window_totals` keys them, with `latency_count` (the decisions that
    reported a latency), the decision rollup's other `measures` asked for (read in the same
    query) and one column per name of `quantiles` (default p50, p95, p99; null when no
    decision reported a latency). Computed as the SLIs L_p50, L_p95, L_p99 are
    (`metrics.latency.percentiles` over every bucket), so the same window gives the same
    value. With `buckets`, the histogram's counts (`BUCKETS`, b0 ...) are kept as columns:
    the distribution and its percentiles from one read."""
    quantiles = dict(QUANTILES if quantiles is None else quantiles)
    wanted = list(dict.fromkeys([*measures, "latency_count"]))
    totals = window_totals(client, sources.DECISIONS, start, end, [*wanted, *BUCKETS],
                           where=where, by=by)
    span = bucket_span(np.ones(BUCKET_COUNT, dtype=bool))  # every bucket, as L_p95 does
    counts = totals.select(BUCKETS).to_numpy().T.astype(np.int64)[span] if totals.height \
        else np.zeros((len(span), 0), dtype=np.int64)
    values = percentiles(np.ascontiguousarray(counts), list(quantiles.values()), span)
    return (totals if buckets else totals.drop(BUCKETS)).with_columns(
        pl.Series(name, value, dtype=pl.Float64).fill_nan(None)
        for name, value in zip(quantiles, values))
