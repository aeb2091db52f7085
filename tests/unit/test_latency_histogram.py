"""The decision-latency histogram: its bounds match the SQL, and percentiles / shares under a
threshold on hand-made histograms equal values worked out by hand.

Bucket indices used below (1-based; bucket i holds (BOUNDS[i-2], BOUNDS[i-1]]):
  1 = (0, 10 us]   21 = (0.8, 1] ms   31 = (8, 10] ms   41 = (80, 100] ms   44 = (150, 200] ms
  45 = (200, 250] ms   51 = (0.8, 1] s   71 = (80, 100] s   0 = over 100 s.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics import latency

pytestmark = pytest.mark.unit

SQL = Path(__file__).resolve().parents[2] / "schemas" / "clickhouse" / "0003_sli_rollups.sql"


def hist(buckets: dict[int, int]) -> list[int]:
    counts = [0] * 72
    for index, n in buckets.items():
        counts[index] = n
    return counts


def literal_arrays() -> list[list[float]]:
    text = SQL.read_text()
    found = re.findall(r"assumeNotNull\(latency_seconds\) <= b, \[([^\]]*)\]", text)
    return [[float(x) for x in body.split(",")] for body in found]


def test_the_bounds_are_the_literal_array_of_both_rollup_views():
    arrays = literal_arrays()
    assert len(arrays) == 2  # decisions_1m_mv and decisions_1h_mv
    for array in arrays:
        assert array == list(latency.BOUNDS)


def test_the_bounds_run_ten_per_decade_from_10_us_to_100_s():
    bounds = latency.BOUNDS
    assert (len(bounds), latency.BUCKET_COUNT) == (71, 72)
    assert (bounds[0], bounds[-1]) == (1e-05, 100.0)
    assert bounds[20:30] == (0.001, 0.00125, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.006,
                             0.008)
    assert list(bounds) == sorted(set(bounds))


@pytest.mark.parametrize("index,lower,upper", [
    pytest.param(1, 0.0, 1e-05, id="the first bucket starts at 0"),
    pytest.param(21, 0.0008, 0.001, id="bucket 21 is (0.8, 1] ms"),
    pytest.param(45, 0.2, 0.25, id="bucket 45 is (200, 250] ms"),
    pytest.param(71, 80.0, 100.0, id="bucket 71 is (80, 100] s"),
    pytest.param(0, 100.0, math.inf, id="bucket 0 is everything over 100 s"),
])
def test_bucket_edges(index, lower, upper):
    assert (latency.bucket_lower(index), latency.bucket_upper(index)) == (lower, upper)


SPREAD = {21: 50, 31: 45, 41: 4, 51: 1}  # cumulative 50, 95, 99, 100

QUANTILES = [
    pytest.param(SPREAD, 0.5, 0.001, id="p50 at rank 50 is the top of the 1 ms bucket"),
    pytest.param(SPREAD, 0.95, 0.01, id="p95 at rank 95 is the top of the 10 ms bucket"),
    pytest.param(SPREAD, 0.99, 0.1, id="p99 at rank 99 is the top of the 100 ms bucket"),
    pytest.param(SPREAD, 1.0, 1.0, id="p100 is the top of the highest non-empty bucket"),
    pytest.param(SPREAD, 0.25, 0.0008 * 1.25 ** 0.5,
                 id="p25 is halfway, log-linearly, into the 1 ms bucket"),
    pytest.param({45: 1}, 0.5, 0.2 * 1.25 ** 0.5, id="one latency: p50 is the log midpoint of "
                 "(200, 250] ms"),
    pytest.param({45: 1}, 0.99, 0.2 * 1.25 ** 0.99, id="one latency: p99 is 99% into its bucket"),
    pytest.param({21: 1, 31: 1}, 0.75, 0.008 * 1.25 ** 0.5,
                 id="two latencies: p75 is halfway into the upper one's bucket"),
    pytest.param({1: 4}, 0.5, 5e-06, id="the first bucket interpolates linearly from 0"),
    pytest.param({1: 4}, 0.25, 2.5e-06, id="p25 in the first bucket is a quarter of 10 us"),
    pytest.param({0: 3}, 0.5, 100.0, id="latencies over 100 s report 100 s"),
    pytest.param({21: 98, 0: 2}, 0.99, 100.0, id="p99 falling in the overflow reports 100 s"),
    pytest.param({21: 98, 0: 2}, 0.98, 0.001, id="p98 is still the top of the 1 ms bucket"),
]


@pytest.mark.parametrize("buckets,q,expected", QUANTILES)
def test_quantile_of_a_hand_made_histogram(buckets, q, expected):
    assert latency.quantile(hist(buckets), q) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("buckets,q,expected", QUANTILES)
def test_the_vectorized_percentiles_behind_l_p50_p95_p99_agree(buckets, q, expected):
    got, = latency.percentiles(np.array([hist(buckets)]).T, [q])
    assert got.tolist() == [pytest.approx(expected, rel=1e-12)]


def test_an_empty_histogram_has_no_quantile():
    assert latency.quantile(hist({}), 0.5) is None
    assert math.isnan(latency.percentiles(np.array([hist({})]).T, [0.5])[0][0])


@pytest.mark.parametrize("buckets,threshold,expected", [
    pytest.param(SPREAD, 0.1, 99, id="at or under 100 ms: the 100 ms bucket's top is included"),
    pytest.param(SPREAD, 0.01, 95, id="at or under 10 ms"),
    pytest.param(SPREAD, 0.0099, 50, id="a threshold between bounds counts whole buckets below"),
    pytest.param(SPREAD, 1e-06, 0, id="under 1 us: none"),
    pytest.param(SPREAD, 100.0, 100, id="at or under 100 s: all"),
    pytest.param({0: 5, 71: 1}, 100.0, 1, id="the overflow bucket is never under a threshold"),
    pytest.param({}, 0.1, 0, id="an empty histogram has none under"),
])
def test_count_at_or_under(buckets, threshold, expected):
    assert latency.count_at_or_under(hist(buckets), threshold) == expected


@pytest.mark.parametrize("threshold", [
    pytest.param(0.1, id="100 ms is a bound"), pytest.param(0.25, id="250 ms is a bound"),
    pytest.param(1e-05, id="10 us, the first bound"), pytest.param(100.0, id="100 s, the last"),
])
def test_a_threshold_on_a_bound_is_accepted(threshold):
    assert latency.check_threshold(threshold) == threshold


def test_a_threshold_between_bounds_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"0\.11 s is not a histogram boundary.*0\.1, 0\.125"):
        latency.check_threshold(0.11)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.integers(0, 71), st.integers(0, 40), max_size=8),
                min_size=1, max_size=6),
       st.sampled_from([0.01, 0.5, 0.95, 0.99, 1.0]))
def test_the_vectorized_percentiles_equal_the_scalar_ones_on_random_histograms(rows, q):
    """Many histograms at once (one column each, the bucket search vectorized over them)
    against `latency.quantile`, one at a time."""
    got, = latency.percentiles(np.array([hist(r) for r in rows]).T, [q])
    for histogram, value in zip(rows, got.tolist()):
        expected = latency.quantile(hist(histogram), q)
        if expected is None:
            assert math.isnan(value)
        else:
            assert value == pytest.approx(expected, rel=1e-12)
