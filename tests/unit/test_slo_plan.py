"""`policyscope slo plan`: factors, thresholds and warnings per window pair, exact and golden.

Regenerate the golden files after an intended change, then review them as a diff:
    POLICYSCOPE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_slo_plan.py
"""

from __future__ import annotations

import os
from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest

from slo.burn_rate import pair_fires
from slo.plan import count, decimal, percent, plan, render_plan
from slo.spec import load_dir, parse

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("POLICYSCOPE_UPDATE_GOLDEN") == "1"


def slo(target=0.999, period="30d", **settings):
    total = {"sli": "M1", **settings}
    return parse({
        "apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": "eval-success"},
        "spec": {
            "service": "admission-control",
            "indicator": {"metadata": {"name": "eval-success"}, "spec": {"ratioMetric": {
                "counter": True,
                "good": {"metricSource": {"type": "policyscope", "spec": {"sli": "M1"}}},
                "total": {"metricSource": {"type": "policyscope", "spec": total}}}}},
            "timeWindow": [{"duration": period, "isRolling": period != "1M"}],
            "budgetingMethod": "Occurrences",
            "objectives": [{"target": target}]}})


@pytest.mark.parametrize("name,per_day", [
    pytest.param("slo_plan.txt", None, id="the plan of the examples without traffic"),
    pytest.param("slo_plan_10k_per_day.txt", 10_000,
                 id="the plan of the examples at 10,000 events a day"),
])
def test_the_plan_of_the_examples_matches_the_golden_file(name, per_day):
    text = render_plan(load_dir(ROOT / "examples" / "slo"), expected_events_per_day=per_day)
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with POLICYSCOPE_UPDATE_GOLDEN=1"
    assert text == path.read_text()


def test_the_default_pairs_at_99_9_percent_over_30d():
    rows = plan(slo())
    assert [(r.severity, r.long_window, r.short_window) for r in rows] == [
        ("page", "1h", "5m"), ("page", "6h", "30m"), ("ticket", "1d", "2h"),
        ("ticket", "3d", "6h")]
    assert [r.factor for r in rows] == [Fraction("14.4"), 6, 3, 1]
    assert [r.threshold for r in rows] == [Fraction("0.0144"), Fraction("0.006"),
                                           Fraction("0.003"), Fraction("0.001")]
    assert [r.budget_consumed for r in rows] == [Fraction(2, 100), Fraction(5, 100),
                                                 Fraction(10, 100), Fraction(10, 100)]
    assert [r.one_bad_fires_up_to for r in rows] == [69, 166, 333, 1000]
    assert not any(r.warnings for r in rows)


def test_a_28d_period_derives_the_factors_13_44_5_6_2_8_and_0_933():
    rows = plan(slo(period="28d"))
    assert [r.factor for r in rows] == [Fraction("13.44"), Fraction("5.6"), Fraction("2.8"),
                                        Fraction(14, 15)]
    assert [decimal(r.factor) for r in rows] == ["13.44", "5.6", "2.8", "~0.9333"]


def test_a_calendar_month_plans_a_30_day_month_unless_given_one():
    month = slo(period="1M")
    assert plan(month)[0].factor == Fraction("14.4")
    assert plan(month, at=date(2024, 2, 1))[0].factor == Fraction("13.92")  # 29 days
    assert "calendar month (UTC) of 2024-02, 29 days" in render_plan([month], at=date(2024, 2, 1))


def test_a_pair_that_can_never_fire_is_warned_about():
    rows = plan(slo(target=0.9))  # 14.4 x 10 % = 144 % errors
    assert [r.never_fires for r in rows] == [True, False, False, False]
    assert rows[0].threshold == Fraction("1.44") and rows[0].one_bad_fires_up_to is None
    assert rows[0].warnings == ("page 1h/5m can never fire: factor 14.4 x error budget 10 % = "
                                "144 % error rate (above 100 %)",)
    text = render_plan([slo(target=0.9)], expected_events_per_day=1_000_000)
    assert "warning: page 1h/5m can never fire" in text
    assert "page      1h    5m     14.4    144 %      2 %          never                 never" \
        in text


@pytest.mark.parametrize("per_day,warned", [
    pytest.param(10_000, ["page 1h/5m"],
                 id="99.9% at 10k events a day: ~35 events in 5m, one bad event reaches 1.44%"),
    pytest.param(100_000, [], id="99.9% at 100k events a day: ~347 events in 5m is enough"),
    pytest.param(1_000, ["page 1h/5m", "page 6h/30m", "ticket 1d/2h", "ticket 3d/6h"],
                 id="99.9% at 1k events a day: one bad event trips every short window"),
])
def test_traffic_too_low_for_the_objective_is_warned_about(per_day, warned):
    rows = plan(slo(), expected_events_per_day=per_day)
    low = [f"{r.severity} {r.long_window}/{r.short_window}" for r in rows
           if any("traffic too low" in w for w in r.warnings)]
    assert low == warned


@pytest.mark.parametrize("per_day,warned", [
    pytest.param(40, True, id="10 events in 6h at a 10% threshold: one bad event reaches it"),
    pytest.param(44, False, id="11 events in 6h at a 10% threshold: one bad event stays below"),
])
def test_the_low_traffic_boundary_is_exact(per_day, warned):
    ticket_3d = plan(slo(target=0.9), expected_events_per_day=per_day)[3]
    assert ticket_3d.threshold == Fraction(1, 10)
    assert any("traffic too low" in w for w in ticket_3d.warnings) is warned


def test_the_bad_events_that_fire_agree_with_the_evaluators_decision():
    # 288,000 a day: 12,000 events in 1h and 1,000 in 5m; threshold 1.44 %
    page = plan(slo(), expected_events_per_day=288_000)[0]
    assert (page.long_events, page.short_events) == (12_000, 1_000)
    assert (page.bad_to_fire_long, page.bad_to_fire_short) == (173, 15)
    objective, factor = Fraction("0.999"), page.factor
    assert pair_fires((173, 12_000), (15, 1_000), objective, factor)
    assert not pair_fires((172, 12_000), (15, 1_000), objective, factor)
    assert not pair_fires((173, 12_000), (14, 1_000), objective, factor)


def test_min_events_above_the_expected_traffic_is_warned_about():
    rows = plan(slo(alerting={"minEvents": 100}), expected_events_per_day=10_000)
    assert any("minEvents 100 exceeds the ~34.7 events expected in 5m" in w
               for w in rows[0].warnings)
    assert not any("minEvents" in w for w in rows[1].warnings)  # ~208 events in 30m


def test_the_header_states_the_budget_per_million_and_for_the_period():
    text = render_plan([slo(budgetPolicies=[{"consumed": 0.25, "action": "review-ticket"}])],
                       expected_events_per_day=1_000_000)
    assert "error budget 0.1 %: 1,000 bad events allowed per 1,000,000" in text
    assert "at 1,000,000 events/day: 30,000,000 events in the period, 30,000 bad allowed" in text
    assert "budget policy: review-ticket at 25 % of the budget consumed (7,500 bad events)" \
        in text


@pytest.mark.parametrize("value,text", [
    pytest.param(Fraction(72, 5), "14.4", id="a terminating decimal prints exactly"),
    pytest.param(Fraction(14, 15), "~0.9333", id="a repeating decimal is marked as rounded"),
    pytest.param(Fraction(1_000_000), "1,000,000", id="thousands are separated"),
    pytest.param(Fraction(-1, 4), "-0.25", id="a negative value keeps its sign"),
])
def test_numbers_print_as_decimals(value, text):
    assert decimal(value) == text


def test_percent_and_count_formatting():
    assert percent(Fraction("0.0144")) == "1.44 %"
    assert count(Fraction(1250, 36)) == "~34.7" and count(Fraction(2500)) == "2,500"
