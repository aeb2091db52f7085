"""Timed samples in windows: numbers with a time and a dimension value (durations of
remediations, opening times of violations), sorted once so that the samples of every window
[start, at) of a dimension value are one slice.

`SortedSamples` sorts one breakdown's samples by (value, time) and, for a sorted list of
bounds B, counts the samples per (value, bound) cell: before(g, j) = the samples of a value
below g, or of value g with a time before B[j]. So the samples of value g in [B[i], B[j]) are
the slice [before(g, i), before(g, j)) of the sorted samples, and over a slice [lo, hi):
  count = hi - lo,   sum = S[hi] - S[lo]   (S: prefix sums of integers, so exact),
  k-th smallest: from the slice sorted (short slices, or few values in all: one sort of
  (slice, value) keys for all of them), else from `order_statistics.SliceSelector` over each
  sample's rank within its value, without copying the slice.

`WindowSamples` takes every (point, window, value) of a run as such a slice (the bounds are
the points and window starts), keeping the overall value's every window and another value's
non-empty ones.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from metrics.sli.base import Breakdown, Context, group_order
from metrics.sli.order_statistics import SliceSelector, linear_quantiles

SHORT = 16  # slices up to this long are sorted: faster than ~12 selector steps each
SORT_LIMIT = 8  # long slices are sorted too when they hold <= 8 values per sample in all


class SortedSamples:
    """One breakdown's samples (value `codes`, `times`) sorted by (value, time); `order` is
    the sorting permutation, `bounds` the sorted times `before` can be asked about."""

    def __init__(self, codes: np.ndarray, values: int, times: np.ndarray,
                 bounds: np.ndarray) -> None:
        self.order = group_order(codes, times)
        self.codes = codes[self.order]
        self._width = len(bounds) + 1
        cell = self.codes * self._width + np.searchsorted(bounds, times[self.order], "right")
        self._before = np.cumsum(np.bincount(cell, minlength=values * self._width))
        self.first = np.searchsorted(self.codes, np.arange(values), "left")  # value g's slice

    def table(self) -> np.ndarray:
        """`before` of every (value code, bound): a values x (bounds + 1) array."""
        return self._before.reshape(-1, self._width)

    def before(self, code: np.ndarray, bound: np.ndarray) -> np.ndarray:
        """Samples with a value below `code`, or value `code` and a time before bounds[bound]:
        the end of that value's slice of samples before the bound."""
        return self._before[code * self._width + bound]

    def prefix_sums(self, values: np.ndarray) -> np.ndarray:
        """S with S[i] = the sum of the first i samples' `values` in sorted order (S[0] = 0)."""
        return np.concatenate([[0], np.cumsum(values[self.order])])


class WindowSamples:
    """The samples of every (point, window, value): the overall value's every window, another
    value's where it has samples. `point`, `window` index `ctx.points` / `ctx.windows`, `code`
    indexes `breakdown.values`."""

    def __init__(self, ctx: Context, breakdown: Breakdown, times: np.ndarray,
                 values: np.ndarray) -> None:
        at, start = ctx.interval_times
        bounds = np.unique(np.concatenate([at, start.ravel()]))
        samples = SortedSamples(breakdown.codes, len(breakdown), times, bounds)
        before = samples.table()  # values x (bounds + 1)
        # value-major, point-minor: a window often holds the same slice at successive points
        hi = before[:, np.searchsorted(bounds, at)][:, None, :]
        lo = before[:, np.searchsorted(bounds, start).T]  # values x windows x points
        keep = hi > lo if breakdown.dimension else np.ones(lo.shape, dtype=bool)
        self.code, self.window, self.point = np.nonzero(keep)
        self.lo, self.hi = lo[keep], np.broadcast_to(hi, lo.shape)[keep]
        self.count = self.hi - self.lo
        self._samples = samples
        self._values = values[samples.order]  # in (value, time) order, as the slices are

    def sum(self) -> np.ndarray:
        """Sum of each slice's values (exact for integers)."""
        prefix = np.concatenate([[0], np.cumsum(self._values)])
        return prefix[self.hi] - prefix[self.lo]

    def quantiles(self, qs: list[float], factor: float = 1.0) -> list[np.ndarray]:
        """Polars' `quantile(q, "linear")`, for each q of `qs`, of each slice's values x
        `factor` (NaN for an empty slice), scaled before interpolating as in a Polars column
        of value x factor. A slice equal to the one before it is computed once. Short slices
        (<= SHORT values) are sorted; so are long ones when they hold few values in all
        (<= SORT_LIMIT per sample), else a `SliceSelector` over the samples serves them."""
        fresh = self.count > 0
        fresh[1:] &= (self.lo[1:] != self.lo[:-1]) | (self.hi[1:] != self.hi[:-1])
        lo, hi, code = self.lo[fresh], self.hi[fresh], self.code[fresh]
        sorting = hi - lo <= SHORT
        if (hi - lo)[~sorting].sum() <= SORT_LIMIT * self._values.size:
            sorting[:] = True
        by_value, rank = self._value_order()
        parts = [(sorting, self._sorted_slices(lo[sorting], hi[sorting], by_value, rank))]
        if not sorting.all():
            parts.append((~sorting, self._selected(lo[~sorting], hi[~sorting], code[~sorting],
                                                   by_value, rank)))
        computed = [np.empty(lo.size) for _ in qs]
        for part, kth in parts:
            scaled = (lambda which, k, kth=kth: kth(which, k) * factor)
            for result, quantile in zip(computed, linear_quantiles(
                    scaled, hi[part] - lo[part], qs), strict=True):
                result[part] = quantile
        same = np.cumsum(fresh) - 1  # the computed slice equal to each slice
        nonempty = self.count > 0
        results = []
        for quantile in computed:
            result = np.full(self.count.size, np.nan)
            result[nonempty] = quantile[same[nonempty]]
            results.append(result)
        return results

    def _value_order(self) -> tuple[np.ndarray, np.ndarray]:
        """The values in (value code, value) order, and each sample's place in that order (a
        rank that orders the samples of one value code by value)."""
        by_value = group_order(self._samples.codes, self._values)
        rank = np.empty(by_value.size, dtype=np.int64)
        rank[by_value] = np.arange(by_value.size)
        return self._values[by_value], rank

    def _sorted_slices(self, lo: np.ndarray, hi: np.ndarray, by_value: np.ndarray,
                       rank: np.ndarray) -> Callable:
        """kth(which, k) over slices sorted all at once: one sort of (slice, rank) keys."""
        length = hi - lo
        offset = np.cumsum(length) - length  # of each slice in the concatenation
        sample = np.repeat(lo - offset, length) + np.arange(length.sum())
        keys = np.repeat(np.arange(lo.size), length) * max(rank.size, 1) + rank[sample]
        ordered = by_value[np.sort(keys) % max(rank.size, 1)]
        return lambda which, k: ordered[offset[which] + k]

    def _selected(self, lo: np.ndarray, hi: np.ndarray, code: np.ndarray, by_value: np.ndarray,
                  rank: np.ndarray) -> Callable:
        """kth(which, k) over any slices, by a wavelet matrix over each sample's rank among
        the samples of its value code."""
        first = self._samples.first
        selector = SliceSelector(rank - first[self._samples.codes])
        return lambda which, k: by_value[first[code[which]] + selector.kth(lo[which],
                                                                           hi[which], k)]
