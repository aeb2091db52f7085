"""Burn-rate maths, decided exactly: table-driven with the boundaries floats get wrong."""

from __future__ import annotations

import doctest
from fractions import Fraction

import pytest

from slo import burn_rate
from slo.burn_rate import (
    DAY,
    DEFAULT_POLICY,
    budget_remaining,
    burns_at_least,
    never_fires,
    pair_fires,
    time_to_exhaustion,
)

pytestmark = pytest.mark.unit

O999, O95 = Fraction("0.999"), Fraction("0.95")
F144, F6, F3, F1 = (p.factor(30 * DAY) for p in DEFAULT_POLICY)


def test_the_module_doctests_pass():
    result = doctest.testmod(burn_rate)
    assert result.attempted >= 8 and result.failed == 0


@pytest.mark.parametrize("long,short,objective,factor,fires", [
    pytest.param((144, 10_000), (11, 764), O999, F144, False,
                 id="99.9% over 30d: exactly 1.44% in 1h but 1.4398% in 5m does not page"),
    pytest.param((144, 10_000), (12, 833), O999, F144, True,
                 id="99.9%: 1.44% in 1h and 12 of 833 (1.4406%) in 5m pages"),
    pytest.param((144, 10_000), (144, 10_000), O999, F144, True,
                 id="99.9% over 30d: exactly 1.44% errors in 1h and 5m fires the fast page"),
    pytest.param((143, 10_000), (144, 10_000), O999, F144, False,
                 id="99.9%: 1.43% in 1h stays quiet even when 5m is over"),
    pytest.param((720, 1_000), (720, 1_000), O95, F144, True,
                 id="95% over 30d: 72% errors in both windows is exactly 14.4x and pages"),
    pytest.param((719, 1_000), (720, 1_000), O95, F144, False,
                 id="95%: 71.9% in the long window is under 14.4x"),
    pytest.param((300, 1_000), (300, 1_000), O95, F6, True,
                 id="95%: 30% in 6h and 30m is exactly 6x: the slow page fires"),
    pytest.param((72, 1_000), (72, 1_000), O95, F144, False,
                 id="95%: 7.2% errors is only 1.44x the budget rate: no page"),
    pytest.param((3, 1_000), (3, 1_000), O999, F3, True,
                 id="99.9%: 0.3% in 1d and 2h is exactly 3x: the fast ticket fires"),
    pytest.param((1, 1_000), (1, 1_000), O999, F1, True,
                 id="99.9%: 0.1% in 3d and 6h is exactly 1x: the slow ticket fires"),
    pytest.param((0, 0), (0, 0), O999, F144, False, id="empty windows never fire"),
    pytest.param((50, 50), (0, 0), O999, F144, False,
                 id="100% errors in 1h with an empty 5m window does not fire"),
    pytest.param((50, 50), (5, 5), O999, F144, True, id="100% errors in both windows fires"),
    pytest.param((1, 3), (1, 1), O999, F144, True,
                 id="low traffic: one bad event of three in 1h pages at 99.9%"),
])
def test_pair_fires_exactly(long, short, objective, factor, fires):
    assert pair_fires(long, short, objective, factor) is fires


def test_floats_get_the_99_9_percent_boundary_wrong_and_fractions_do_not():
    assert 14.4 * (1 - 0.999) > 0.0144  # why the maths is exact
    assert burns_at_least(144, 10_000, O999, F144) is True
    assert Fraction(144, 10_000) == F144 * (1 - O999)


def test_min_events_keeps_low_traffic_from_paging():
    assert pair_fires((1, 3), (1, 1), O999, F144, min_events=10) is False
    assert pair_fires((10, 10), (10, 10), O999, F144, min_events=10) is True


@pytest.mark.parametrize("period,expected", [
    pytest.param(30 * DAY, ["14.4", "6", "3", "1"], id="30d: 14.4 / 6 / 3 / 1"),
    pytest.param(28 * DAY, ["13.44", "5.6", "2.8", "0.9333"], id="28d: 13.44 / 5.6 / 2.8 / 0.933"),
])
def test_factors_derive_from_budget_share(period, expected):
    got = [p.factor(period) for p in DEFAULT_POLICY]
    assert [f"{float(f):.4g}" for f in got] == expected
    assert got[0] == Fraction(2, 100) * period / 3600  # 2% of the budget in one hour


@pytest.mark.parametrize("bad,total,expected", [
    pytest.param(0, 10_000, Fraction(1), id="no bad events: the whole budget is left"),
    pytest.param(5, 10_000, Fraction(1, 2), id="half the allowed bad events: half left"),
    pytest.param(10, 10_000, Fraction(0), id="exactly the allowed bad events: nothing left"),
    pytest.param(30, 10_000, Fraction(-2), id="three times over: -200%, unclamped"),
    pytest.param(0, 0, None, id="no events: no budget figure at all"),
])
def test_budget_remaining(bad, total, expected):
    assert budget_remaining(bad, total, O999) == expected


def test_time_to_exhaustion_at_the_current_burn():
    month = 30 * DAY
    assert time_to_exhaustion(Fraction(1, 2), Fraction(2), month) == month / 4
    assert time_to_exhaustion(Fraction(0), Fraction(2), month) == 0.0
    assert time_to_exhaustion(Fraction(1), Fraction(0), month) is None
    assert time_to_exhaustion(None, Fraction(3), month) is None


def test_a_pair_that_needs_more_than_100_percent_errors_never_fires():
    assert never_fires(F144, Fraction("0.9")) is True   # 14.4 x 10% = 144%
    assert never_fires(F144, O999) is False
    assert pair_fires((10, 10), (10, 10), Fraction("0.9"), F144) is False


def test_burn_rises_with_errors():
    burns = [burn_rate.burn_rate(bad, 1_000, O999) for bad in range(0, 50, 5)]
    assert burns == sorted(burns) and burns[0] == 0
