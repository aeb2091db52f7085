"""What every SLI family shares: the output shape, ratios, and per-dimension grouping.

Every family returns rows of `OUTPUT`: one per (evaluation time, SLI id, window, dimension,
dimension value). For a ratio SLI `good` is its numerator and `total` its denominator (for
"bad" ratios such as the deploy block rate the numerator is the bad count, as its name says);
`value` is good / total, and null when total is 0: an empty window has no value.

Rows are grouped per dimension either as long rows (`to_long`: each row once per dimension) or,
for the families that work on sorted arrays, as codes (`breakdowns`: per dimension, each row's
index into that dimension's distinct values); `window_rows` turns such indexes back into rows.

A family is its definition: frames in, rows out. It reads only through `metrics.sources`
(with `ctx.client`), sums windows with `metrics.window_sums`, and returns each SLI's rows in
`sli_values`' key order (`metrics.sli_writer.KEY_ORDER`), which `window_rows`, the dense window
sums and `by_sli` keep.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, TypeVar

import numpy as np
import polars as pl
from clickhouse_connect.driver.client import Client

from metrics.windows import intervals as intervals_of
from metrics.sli_writer import sort_ranks

T = TypeVar("T")
# the labels are categoricals: few distinct values in millions of rows, written as the
# LowCardinality dictionaries of `sli_values`; made so where a family builds its rows (once
# per window, not once per SLI row)
OUTPUT = {"at": pl.Datetime("us", "UTC"), "sli": pl.Categorical, "window": pl.Categorical,
          "dimension": pl.Categorical, "dimension_value": pl.Categorical, "good": pl.Float64,
          "total": pl.Float64, "value": pl.Float64}
LABELS = ["window", "dimension", "dimension_value"]  # of a window frame (`sli` is added)
INSTANT = "instant"  # the window of point-in-time values (age of open violations)
WEEK_SECONDS = 7 * 86400


@dataclass
class Context:
    """One batch computation: where to read, which points and windows, and settings."""

    client: Client
    points: list[datetime]
    windows: list[str]
    latency_threshold: float = 0.1
    cache: dict = field(default_factory=dict)
    memo: dict | None = None  # kept between scheduled runs by the scheduler (sources read it)
    locks: dict = field(default_factory=dict, repr=False)  # shared by `replace`d copies

    @property
    def intervals(self) -> pl.DataFrame:
        """Every (point, window) of the run with its start: at, window, start (points in
        `points` order, each with its windows in `windows` order)."""
        return self.cached("intervals", lambda: intervals_of(self.points, self.windows))

    @property
    def interval_times(self) -> tuple[np.ndarray, np.ndarray]:
        """`intervals` as microseconds since the epoch: the points (shape P, in `points`
        order) and the window starts (shape P x W, `windows` order), for the families on
        sorted arrays."""
        def make() -> tuple[np.ndarray, np.ndarray]:
            frame = self.intervals
            shape = (len(self.points), len(self.windows))
            at = frame.get_column("at").dt.epoch("us").to_numpy().reshape(shape)[:, 0].copy()
            start = frame.get_column("start").dt.epoch("us").to_numpy().reshape(shape)
            return at, start

        return self.cached("interval_times", make)

    def cached(self, key: str, make: Callable[[], T]) -> T:
        """`cache[key]`, made by `make()` once even when families on several threads ask
        for it at the same time (the others wait for the first)."""
        if key not in self.cache:
            lock = self.locks.setdefault(key, threading.Lock())  # setdefault is atomic
            with lock:
                if key not in self.cache:
                    self.cache[key] = make()
        return self.cache[key]


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=OUTPUT)


def shape(frame: pl.DataFrame) -> pl.DataFrame:
    """Cast to OUTPUT's columns and types (extra columns dropped)."""
    return frame.select([pl.col(c).cast(t) for c, t in OUTPUT.items()])


def ratio(frame: pl.DataFrame, sli: str, good: pl.Expr, total: pl.Expr) -> pl.DataFrame:
    """Rows of a ratio SLI from a frame with at, window, dimension, dimension_value."""
    return shape(frame.with_columns(sli=pl.lit(sli, pl.Categorical), good=good.cast(pl.Float64),
                                    total=total.cast(pl.Float64)).with_columns(
        value=pl.when(pl.col("total") > 0).then(pl.col("good") / pl.col("total"))))


def window_seconds(at: datetime, start: datetime) -> float:
    return (at - start).total_seconds()


def lookback_start(ctx: Context, extra_days: int = 0) -> datetime:
    from datetime import timedelta

    from metrics.windows import required_times

    return min(required_times(ctx.points, ctx.windows)) - timedelta(days=extra_days)


def epoch_us(column: pl.Series) -> np.ndarray:
    """A datetime column as microseconds since the epoch (int64)."""
    return column.dt.epoch("us").to_numpy()


def group_order(group: np.ndarray, key: np.ndarray, *, stable: bool = False) -> np.ndarray:
    """The permutation sorting rows by (group, key); with `stable`, rows that tie keep their
    order. `group` are small non-negative integers, `key` integers (times, durations); one
    sort of a combined key when that fits in 63 bits."""
    if not key.size:
        return np.zeros(0, dtype=np.int64)
    low = int(key.min())
    width = int(key.max()) - low + 1
    if (int(group.max()) + 1) * width >= 2**62:
        return np.lexsort((key, group))
    combined = group * width + (key - low)
    order = np.argsort(combined)  # quicksort: faster than a stable sort
    if stable and (np.diff(combined[order]) == 0).any():
        order = np.argsort(combined, kind="stable")
    return order


def to_long(rows: pl.DataFrame, dimensions: dict[str, str]) -> pl.DataFrame:
    """Each row once for the overall value (dimension '') and once per dimension column."""
    parts = [rows.with_columns(dimension=pl.lit(""), dimension_value=pl.lit(""))]
    parts += [rows.with_columns(dimension=pl.lit(name),
                                dimension_value=pl.col(column).cast(pl.String))
              for name, column in dimensions.items()]
    return pl.concat(parts)


@dataclass(frozen=True)
class Breakdown:
    """One dimension over some rows: its name ('' for the overall value), its distinct values
    (strings; a null is a value of its own, as in a group-by), and each row's index into them."""

    dimension: str
    values: pl.Series
    codes: np.ndarray

    def __len__(self) -> int:
        return self.values.len()

    def select(self, rows: np.ndarray) -> Breakdown:
        """The same breakdown over the rows `rows` (a mask or indexes) selects."""
        return Breakdown(self.dimension, self.values, self.codes[rows])


def codes_of(column: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """The distinct values of a column as strings (in order of appearance; a null is one of
    them) and each row's index into them."""
    text = column.cast(pl.String)
    values = text.unique(maintain_order=True)
    codes = text.replace_strict(values, pl.int_range(values.len(), eager=True),
                                return_dtype=pl.Int64)
    return values.alias("dimension_value"), codes.to_numpy().astype(np.int64, copy=False)


def breakdowns(rows: pl.DataFrame, dimensions: dict[str, str]) -> list[Breakdown]:
    """What `to_long` does to rows, as codes: the overall breakdown (one value, '') first, then
    one per dimension (name -> column)."""
    overall = Breakdown("", pl.Series("dimension_value", [""]),
                        np.zeros(rows.height, dtype=np.int64))
    return [overall, *(Breakdown(name, *codes_of(rows.get_column(column)))
                       for name, column in dimensions.items())]


@dataclass(frozen=True)
class Cells:
    """Numbers of one breakdown per (point, window, value) as indexes into `ctx.points`,
    `ctx.windows` (None: the window `instant`) and `breakdown.values`, and their `columns`."""

    breakdown: Breakdown
    point: np.ndarray
    window: np.ndarray | None
    code: np.ndarray
    columns: dict[str, np.ndarray]


def window_rows(ctx: Context, cells: list[Cells]) -> pl.DataFrame:
    """Cells as rows: at, window, dimension, dimension_value and the cells' columns (NaN in a
    float column becomes null), in one frame -- in `sli_values`' key order without the SLI
    (`sli_writer.KEY_ORDER`: window, dimension, dimension_value, at; names and values by their
    text), so an SLI's rows made from it arrive sorted and ClickHouse skips sorting them."""
    points, names, window_rank = ctx.cached("window_rows", lambda: (
        pl.Series("at", ctx.interval_times[0]).cast(OUTPUT["at"]),
        pl.Series("window", [*ctx.windows, INSTANT], dtype=pl.Categorical),
        sort_ranks(pl.DataFrame({"window": [*ctx.windows, INSTANT]}), ["window"])))
    cells = sorted(cells, key=lambda c: c.breakdown.dimension)  # a cell's rank: its index
    which = np.repeat(np.arange(len(cells)), [c.point.size for c in cells])
    values = pl.concat([c.breakdown.values for c in cells]).cast(pl.Categorical)
    first = np.cumsum([0, *(len(c.breakdown) for c in cells)])[:-1]
    point = np.concatenate([c.point for c in cells])
    window = np.full(point.size, len(ctx.windows)) if cells[0].window is None else \
        np.concatenate([c.window for c in cells])
    code = np.concatenate([c.code for c in cells])
    value_rank = np.concatenate([sort_ranks(c.breakdown.values.to_frame(), [
        c.breakdown.values.name]) for c in cells])[first[which] + code]
    widest = max(len(c.breakdown) for c in cells)
    order = np.argsort(((window_rank[window] * len(cells) + which) * widest + value_rank)
                       * len(ctx.points) + point)
    return pl.DataFrame([
        points.gather(point[order]), names.gather(window[order]).alias("window"),
        pl.Series("dimension", [c.breakdown.dimension for c in cells],
                  dtype=pl.Categorical).gather(which[order]),
        values.gather((first[which] + code)[order]).alias("dimension_value"),
        *(pl.Series(name, np.concatenate([c.columns[name] for c in cells])[order],
                    nan_to_null=True) for name in cells[0].columns)])


def by_sli(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Frames of one SLI each, one after the other in order of their SLI ids: with each
    part's rows in key order, the whole is in `sli_values`' key order (`sli_writer.KEY_ORDER`)."""
    return pl.concat(sorted(parts, key=lambda part: str(part.get_column("sli")[0])
                            if part.height else ""), rechunk=False)


def complete(ctx: Context, frame: pl.DataFrame, defaults: dict[str, object]) -> pl.DataFrame:
    """Add the overall row of every (point, window) that has none (an empty window), with
    `defaults` (e.g. good 0, total 0) so its value comes out null; those rows come last, by
    window and time (all of them, when nothing was read: then in key order)."""
    overall = ctx.intervals.select("at", "window").sort("window", "at").with_columns(
        dimension=pl.lit(""), dimension_value=pl.lit(""))
    overall = overall.with_columns(  # as the frame has them: strings or categoricals
        pl.col(c).cast(frame.schema[c]) for c in LABELS if c in frame.columns)
    present = frame.select("at", "window", "dimension", "dimension_value") if frame.height \
        else overall.clear()
    missing = overall.join(present, on=["at", "window", "dimension", "dimension_value"],
                           how="anti", maintain_order="left").with_columns(
        **{k: pl.lit(v) for k, v in defaults.items()})
    return pl.concat([frame, missing], how="diagonal_relaxed") if frame.height else missing
