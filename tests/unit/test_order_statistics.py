"""Order statistics of slices (the wavelet matrix) and Polars' linear quantile, against
sorting and against Polars itself (no storage)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.sli.order_statistics import SliceSelector, linear_quantiles

pytestmark = pytest.mark.unit


def polars_quantile(values: list[float], q: float) -> float:
    return pl.Series(values, dtype=pl.Float64).quantile(q, "linear")


def sorted_kth(values: list[float]):
    """kth(which, k) for one group of values, by sorting."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    return lambda which, k: ordered[k]


@pytest.mark.parametrize("values,q,expected", [
    pytest.param([7.0], 0.9, 7.0, id="one value is every quantile"),
    pytest.param([3960.0, 1800.0, 86400.0, 5400.0], 0.5, 4680.0,
                 id="p50 of four: halfway between the middle two"),
    pytest.param([3960.0, 1800.0, 86400.0, 5400.0], 0.9, 62100.0,
                 id="p90 of four: 70% of the way from the third to the fourth"),
    pytest.param([1.0, 2.0, 3.0, 4.0, 5.0], 0.5, 3.0, id="p50 of five is the middle one"),
    pytest.param([2.0, 2.0, 2.0, 9.0], 0.5, 2.0, id="ties: equal neighbours, no interpolation"),
    pytest.param([1.0, 2.0], 0.0, 1.0, id="q 0 is the minimum"),
    pytest.param([1.0, 2.0], 1.0, 2.0, id="q 1 is the maximum"),
])
def test_linear_quantile_by_hand(values, q, expected):
    (result,) = linear_quantiles(sorted_kth(values), np.array([len(values)]), [q])
    assert result[0] == polars_quantile(values, q) == pytest.approx(expected, rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(0, 10**9), min_size=1, max_size=60),
       qs=st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0]), min_size=1,
                   max_size=3))
def test_linear_quantile_equals_polars_bit_for_bit(values, qs):
    seconds = (pl.Series(values, dtype=pl.Int64) / 1000.0).to_list()  # as M3 gets seconds
    results = linear_quantiles(sorted_kth(seconds), np.array([len(seconds)]), qs)
    assert [r[0] for r in results] == [polars_quantile(seconds, q) for q in qs]


@settings(max_examples=200, deadline=None)
@given(symbols=st.lists(st.integers(0, 300), min_size=1, max_size=200), data=st.data())
def test_the_kth_smallest_of_any_slice_is_that_of_the_sorted_slice(symbols, data):
    array = np.array(symbols)
    slices = data.draw(st.lists(st.tuples(st.integers(0, len(symbols) - 1), st.integers(1, 200),
                                          st.floats(0, 1, exclude_max=True)), min_size=1,
                                max_size=20))
    lo = np.array([a for a, _, _ in slices])
    hi = np.minimum(lo + np.array([n for _, n, _ in slices]), len(symbols))
    k = (np.array([f for _, _, f in slices]) * (hi - lo)).astype(np.int64)
    expected = [np.sort(array[a:b])[i] for a, b, i in zip(lo, hi, k, strict=True)]
    assert SliceSelector(array).kth(lo, hi, k).tolist() == expected


def test_a_selector_of_zeros_or_of_nothing_answers_without_levels():
    assert SliceSelector(np.zeros(4, dtype=np.int64)).kth([1], [4], [2]).tolist() == [0]
    assert SliceSelector(np.zeros(0, dtype=np.int64)).kth([], [], []).tolist() == []
