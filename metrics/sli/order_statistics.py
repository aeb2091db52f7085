"""Exact order statistics of many slices of one array at once, and Polars' linear quantile.

`SliceSelector(symbols)` answers "the k-th smallest of symbols[lo:hi]" (k from 0) for many
(lo, hi, k) at once, in one vectorised step per bit of the largest symbol, with a wavelet matrix
(F. Claude, G. Navarro, A. Ordóñez, "The wavelet matrix: an efficient wavelet tree for large
alphabets", Information Systems 47, 2015). Level by level from the top bit down, the symbols
are split stably into those with a 0 bit and those with a 1 bit; `zeros[i]` counts the 0 bits
among the first i symbols of the level and Z is the level's number of zeros. A slice [lo, hi)
of a level holds z = zeros[hi] - zeros[lo] zeros: if k < z the answer's bit is 0 and the slice
continues at [zeros[lo], zeros[hi]) of the next level; otherwise the bit is 1, k drops by z and
the slice continues among the ones, at [Z + lo - zeros[lo], Z + hi - zeros[hi]).

`linear_quantiles` is `quantile(q, "linear")` of Polars over n sorted values x_0 <= .. <= x_n-1:
with f = q * (n - 1) and i = floor(f), the quantile is x_i when x_i == x_ceil(f), else
(f - i) * (x_i+1 - x_i) + x_i, in that order of operations, so results are equal bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class SliceSelector:
    """The k-th smallest of any slice of `symbols` (non-negative integers; small is fast: one
    step per bit of the largest)."""

    def __init__(self, symbols: np.ndarray) -> None:
        level = np.asarray(symbols, dtype=np.int64)
        self._dtype = np.int32 if level.size < 2**31 - 1 else np.int64
        self._levels: list[tuple[np.ndarray, int]] = []  # top bit first: zeros, Z
        for bit in reversed(range(int(level.max()).bit_length() if level.size else 0)):
            one = ((level >> bit) & 1).astype(bool)
            zeros = np.zeros(level.size + 1, dtype=self._dtype)
            np.cumsum(~one, out=zeros[1:])
            self._levels.append((zeros, int(zeros[-1])))
            level = np.concatenate([level[~one], level[one]])
        self._last = level  # after the last split, a slice holds equal symbols only

    def kth(self, lo: np.ndarray, hi: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The k-th smallest (k from 0) of symbols[lo:hi], per element; needs 0 <= k < hi - lo."""
        lo, hi, k = (np.asarray(a, dtype=self._dtype) for a in (lo, hi, k))
        for zeros, total in self._levels:
            z_lo, z_hi = zeros[lo], zeros[hi]
            z = z_hi - z_lo
            one = k >= z
            k = k - z * one
            lo = np.where(one, lo - z_lo + total, z_lo)
            hi = np.where(one, hi - z_hi + total, z_hi)
        return self._last[lo]


def linear_quantiles(kth: Callable[[np.ndarray, np.ndarray], np.ndarray], count: np.ndarray,
                     qs: list[float]) -> list[np.ndarray]:
    """Polars' `quantile(q, "linear")`, for each q of `qs`, of each of many groups of `count`
    (>= 1) values, given `kth(which, k)`: the k-th smallest value (k from 0) of the groups
    `which` (an index array). `kth` is called once, for the i-th smallest of every group and
    quantile and the (i+1)-th where f = q * (n - 1) is not whole."""
    count = np.asarray(count, dtype=np.int64)
    f = [(count - 1).astype(np.float64) * q for q in qs]
    i = [np.floor(f_q).astype(np.int64) for f_q in f]
    between = [np.flatnonzero(f_q > i_q) for f_q, i_q in zip(f, i, strict=True)]
    groups = np.arange(count.size)
    values = kth(np.concatenate([groups] * len(qs) + between),
                 np.concatenate(i + [i_q[b] + 1 for i_q, b in zip(i, between, strict=True)]))
    lowers = np.split(values[:count.size * len(qs)].astype(np.float64), len(qs))
    uppers = np.split(values[count.size * len(qs):].astype(np.float64),
                      np.cumsum([b.size for b in between])[:-1])
    result = []
    for f_q, i_q, b, lower, upper in zip(f, i, between, lowers, uppers, strict=True):
        lower_b = lower[b]
        lower[b] = np.where(lower_b == upper, lower_b, (f_q[b] - i_q[b]) * (upper - lower_b)
                            + lower_b)
        result.append(lower)
    return result
