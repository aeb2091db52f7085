"""The latest report of each entity at each point, and sums over the entities of a window.

Entities (workloads, agents, secrets, alerts) report their state now and then. Per dimension
value v (the overall value '' included), an entity's latest report at a point `at` is its latest
report with value v before `at`. The entity is in the window [start, at) when that report is not
older than `start` (that is, when it reported with value v inside the window), and then it
counts with that report's state.

`latest_reports` finds the latest report of every (entity, value) at every point without a grid
of entities x points x windows: a report at r whose next report of the same (entity, value) is
at r' (r' = infinity for the last one) is the latest exactly at the points in (r, r'], a run of
the sorted points found by two binary searches. Points whose every window starts after r are
left out: the report is in none of their windows.

`window_counts` then counts the entities (and sums weights over them) inside each window
without joining the windows: order a point's W windows by start, s_0 <= ... <= s_W-1; a report
at r lies in the windows i < c with c = #{i : s_i <= r}. One histogram over c per (point,
value) gives every window: the sum over window i is the sum of the histogram over c > i.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from metrics.sli.base import (
    Breakdown,
    Cells,
    Context,
    breakdowns,
    codes_of,
    epoch_us,
    group_order,
)

NEVER = np.iinfo(np.int64).max  # the time of the report after an entity's last one


@dataclass(frozen=True)
class Latest:
    """Latest reports of one breakdown, one per (point, value, entity): the point (index into
    `ctx.points`), the value (index into `breakdown.values`), the report's time (microseconds),
    its state (a row of the histories) and `windows`: c, the number of the point's windows
    holding it (the c widest)."""

    breakdown: Breakdown
    point: np.ndarray
    code: np.ndarray
    time: np.ndarray
    state: np.ndarray
    windows: np.ndarray

    def select(self, keep: np.ndarray) -> Latest:
        """The reports where `keep` (a boolean per report) is true."""
        return Latest(self.breakdown, self.point[keep], self.code[keep], self.time[keep],
                      self.state[keep], self.windows[keep])


def histories_of(rows: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Flat rows (event_time and `columns`) as histories, like `sources.report_histories`:
    one row per distinct `columns`, with its ascending `event_times`."""
    return rows.group_by(columns).agg(pl.col("event_time").sort().alias("event_times"))


def latest_reports(ctx: Context, histories: pl.DataFrame, entity: str,
                   dimensions: dict[str, str]) -> list[Latest]:
    """The latest report of each (entity, value) at each point, per breakdown (overall first,
    then `dimensions`: name -> column), from histories (`sources.report_histories`). A
    dimension whose value no entity changes has the overall latest reports, with its codes.
    Of two reports of an (entity, value) at the same time, the state sorting last counts."""
    states = [c for c in histories.columns if c != "event_times"]
    fixed = histories.select(pl.arg_sort_by(states)).to_series().to_numpy().astype(np.int64)
    lists = histories.get_column("event_times").gather(fixed)  # ties resolve alike in any run
    state = np.repeat(fixed, lists.list.len().to_numpy())
    time = epoch_us(lists.explode().drop_nulls())
    _, entities = codes_of(histories.get_column(entity))
    found: list[Latest] = []
    for breakdown in breakdowns(histories, dimensions):
        _, group = np.unique(entities * len(breakdown) + breakdown.codes, return_inverse=True)
        if found and group.max(initial=-1) == entities.max(initial=-1):  # entity -> one value
            overall = found[0]
            found.append(Latest(breakdown, overall.point, breakdown.codes[overall.state],
                                overall.time, overall.state, overall.windows))
            continue
        report, point = _latest_at_points(ctx, group[state], time)
        found.append(Latest(breakdown, point, breakdown.codes[state[report]], time[report],
                            state[report], _windows_holding(ctx, point, time[report])))
    return found


def _latest_at_points(ctx: Context, group: np.ndarray, time: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(report, point) of every report of a group (e.g. an (entity, value)) and point (index
    into `ctx.points`) where it is the group's latest: the points in (its time, the group's next
    report's time], up to the last point with a window starting at or before it."""
    at, start = ctx.interval_times
    point_order = np.argsort(at, kind="stable")
    points = at[point_order]
    widest = start[point_order].min(axis=1)  # non-decreasing, as the points are
    order = group_order(group, time, stable=True)  # ties: in the histories' order
    group, times = group[order], time[order]
    after = np.full_like(times, NEVER)  # the next report of the same group
    after[:-1] = np.where(group[1:] == group[:-1], times[1:], NEVER)
    first = np.searchsorted(points, times, "right")
    stop = np.minimum(np.searchsorted(points, after, "right"),
                      np.searchsorted(widest, times, "right"))
    runs = np.maximum(stop - first, 0)
    step = np.arange(runs.sum()) - np.repeat(np.cumsum(runs) - runs, runs)
    return np.repeat(order, runs), point_order[np.repeat(first, runs) + step]


def _windows_by_start(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """Per point: its window starts ascending (P x W) and each window's rank in that order."""
    _, start = ctx.interval_times
    by_start = np.argsort(start, axis=1, kind="stable")
    return np.take_along_axis(start, by_start, axis=1), np.argsort(by_start, axis=1)


def _windows_holding(ctx: Context, point: np.ndarray, time: np.ndarray) -> np.ndarray:
    """c = #{windows of the point starting at or before the time}, per (point, time): with
    the starts ascending, a report at `time` (before the point) is in the windows i < c."""
    starts, _ = _windows_by_start(ctx)
    holding = np.zeros(time.size, dtype=np.int64)
    for column in starts.T:
        holding += column[point] <= time
    return holding


def window_counts(ctx: Context, latest: Latest, weights: dict[str, np.ndarray],
                  distinct: np.ndarray | None = None) -> Cells:
    """Per (point, window, value): `n` = the entities inside the window, and the sums of
    `weights` (one number per latest report) over them; for every window of the overall
    value, an empty one included (n 0), and for another value where n > 0.

    With `distinct` (a code per state, e.g. its image), `n` counts distinct codes instead of
    entities: a code is inside a window when one of its latest reports is, i.e. when the one
    holding the most windows is, so only that one counts; `weights` must be the same for the
    reports of a code at a point."""
    starts, rank = _windows_by_start(ctx)
    points, windows = starts.shape
    values = len(latest.breakdown)
    cell = (latest.point * values + latest.code) * (windows + 1) + latest.windows
    if distinct is not None:
        most = _most_windows(latest, distinct)
        cell, weights = cell[most], {k: np.asarray(w)[most] for k, w in weights.items()}
    window_column = rank[:, None, :] + 1  # window w at p: the histogram over c > its rank

    def per_window(weight: np.ndarray | None) -> np.ndarray:
        histogram = np.bincount(cell, weights=weight, minlength=points * values * (windows + 1))
        at_least = np.cumsum(histogram.reshape(points, values, windows + 1)[:, :, ::-1],
                             axis=2)[:, :, ::-1]  # at_least[..., c] = sum over >= c
        return np.take_along_axis(at_least, window_column, axis=2)  # points x values x W

    n = per_window(None)
    keep = n > 0 if latest.breakdown.dimension else np.ones_like(n, dtype=bool)
    point, code, window = np.nonzero(keep)
    sums = {name: per_window(np.asarray(w, dtype=np.float64))[keep]
            for name, w in weights.items()}
    return Cells(latest.breakdown, point, window, code, {"n": n[keep], **sums})


def _most_windows(latest: Latest, distinct: np.ndarray) -> np.ndarray:
    """Per (point, value, code) with `distinct` giving each state's code: the report (an
    index) in the most windows, found by one sort of (point, value, code, c)."""
    codes = int(distinct.max()) + 1 if distinct.size else 1
    group = (latest.point * len(latest.breakdown) + latest.code) * codes + distinct[latest.state]
    order = np.argsort(group * (int(latest.windows.max(initial=0)) + 1) + latest.windows)
    group = group[order]
    last = np.ones(group.size, dtype=bool)  # of its (point, value, code): the most windows
    last[:-1] = group[1:] != group[:-1]
    return order[last]
