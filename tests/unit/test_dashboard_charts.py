"""The chart builders are pure (frame in, figure out) and show strings from events as typed:
Plotly renders a subset of HTML in titles and labels, so such strings are escaped."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboards import charts

pytestmark = pytest.mark.unit

NAME = '<a href="https://evil.example">team</a>'
ESCAPED = "&lt;a href=&quot;https://evil.example&quot;&gt;team&lt;/a&gt;"


def test_a_category_from_events_is_escaped_in_the_bars_and_the_title():
    frame = pd.DataFrame({"team": [NAME, "search"], "outcome": ["deny", "allow"],
                          "decisions": [2, 3]})
    fig = charts.outcome_bars(frame, "team", f"By {NAME}")

    assert {x for trace in fig.data for x in trace.x} == {ESCAPED, "search"}
    assert fig.layout.title.text == f"By {ESCAPED}"
    assert frame["team"].tolist() == [NAME, "search"]  # the caller's frame is not changed


def test_a_version_name_is_escaped_in_the_legend_of_a_line():
    frame = pd.DataFrame({"time": [1, 2], "deny": [10.0, 20.0], "version": [NAME, NAME]})
    fig = charts.line(frame, "time", "deny", "Deny rate", "%", "version")

    assert [trace.name for trace in fig.data] == [ESCAPED]
    assert list(fig.data[0].y) == [10.0, 20.0]


def test_coverage_bars_carry_the_goal_as_a_dashed_line_and_colour_teams_below_it():
    frame = pd.DataFrame({"team": ["a", "b"], "coverage": [0.5, 1.0]})
    fig = charts.coverage_by_team(frame, goal=0.9)

    assert list(fig.data[0].y) == [50.0, 100.0]
    assert list(fig.data[0].marker.color) == ["#d62728", "#2ca02c"]
    assert [shape.y0 for shape in fig.layout.shapes] == [90.0]
    assert charts.coverage_by_team(frame, goal=None).layout.shapes == ()


def test_a_line_of_one_point_in_time_spans_days_not_milliseconds():
    import pandas as pd

    from dashboards import charts

    at = pd.Timestamp("2026-11-30", tz="UTC")
    fig = charts.line(pd.DataFrame({"week": [at], "hours": [28.4]}), "week", "hours",
                      "Mean time to remediate per week", "hours")
    low, high = (pd.Timestamp(v) for v in fig.layout.xaxis.range)
    assert high - low == pd.Timedelta(days=6)
    two = charts.line(pd.DataFrame({"week": [at, at + pd.Timedelta(days=7)],
                                    "hours": [1.0, 2.0]}), "week", "hours", "t", "hours")
    assert two.layout.xaxis.range is None  # Plotly's own range for real series
