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


def _builders():
    """Every public builder of `charts` with frames as the pages pass them (times with and
    without a time zone, one point and many, a goal and none)."""
    times = pd.date_range("2026-11-01", periods=3, freq="D", tz="UTC")
    decisions = pd.DataFrame({"time": list(times) * 2, "outcome": ["deny"] * 3 + ["allow"] * 3,
                              "decisions": [1, 2, 3, 4, 5, 6], "team": ["a", "b", "c"] * 2})
    yield "outcome_bars", charts.outcome_bars(decisions, "team", "By team")
    yield "decisions_over_time", charts.decisions_over_time(decisions, "day")
    yield "budget_burndown", charts.budget_burndown(
        pd.DataFrame({"at": times, "budget_remaining": [1.0, 0.5, -0.2]}), "Budget")
    for goal in (0.9, None):
        yield f"coverage_by_team {goal}", charts.coverage_by_team(
            pd.DataFrame({"team": ["a", "b"], "coverage": [0.5, 1.0]}), goal)
    yield "line", charts.line(pd.DataFrame({"week": times.tz_localize(None), "hours": [1, 2, 3],
                                            "v": ["x", "y", "x"]}), "week", "hours", "t", "h",
                              "v")
    yield "line of one time", charts.line(pd.DataFrame({"week": times[:1], "hours": [28.4]}),
                                          "week", "hours", "t", "hours")
    for categories in (False, True):
        yield f"bars {categories}", charts.bars(
            pd.DataFrame({"month": ["2026-10", "2026-11"], "n": [3, 4]}), "month", "n", "t",
            "n", categories=categories)
    yield "latency_histogram", charts.latency_histogram(
        pd.DataFrame({"bucket": ["≤ 1 ms", "≤ 2 ms"], "decisions": [5, 7]}), "Latency")
    yield "timeline", charts.timeline(pd.DataFrame({"event_time": times, "event_kind": [
        "sbom.generated", "vulnerability.found", "secret.detected"]}), "Events")
    yield "fp_rate_trend", charts.fp_rate_trend(pd.DataFrame({
        "day": list(times.tz_localize(None)) * 2, "policy": ["p1"] * 3 + ["p0"] * 3,
        "fp_rate": [0.1, 0.2, 0.0, 0.5, 1.0, 0.25], "false_positives": [1, 2, 0, 1, 1, 1],
        "triaged": [10, 10, 5, 2, 1, 4]}))


@pytest.mark.parametrize("name", [name for name, _ in _builders()])
def test_each_builders_figure_is_what_plotlys_validation_makes_of_it(name):
    """The builders skip Plotly's validation (`charts._figure`): here it runs on each figure
    (a misspelt property or a bad value raises) and what the browser is sent -- the figure as
    `st.plotly_chart` serializes it -- is the same either way."""
    import json

    import plotly.graph_objects as go
    import plotly.io

    (fig,) = [f for n, f in _builders() if n == name]
    validated = go.Figure(fig.to_dict())

    def sent(figure):
        return json.loads(plotly.io.to_json(figure, validate=False))

    assert sent(fig) == sent(validated)
    assert sent(fig)["data"]  # a figure with traces, not an empty one that trivially matches


def test_times_with_a_time_zone_are_sent_at_their_wall_clock_time_as_plotly_sends_a_series():
    import json

    import plotly.graph_objects as go
    import plotly.io

    at = pd.Series(pd.date_range("2026-11-01 21:20", periods=2, freq="D", tz="UTC"))
    fig = charts.budget_burndown(pd.DataFrame({"at": at, "budget_remaining": [1.0, 0.5]}), "B")
    plotly_own = go.Figure(go.Scatter(x=at, y=[100.0, 50.0]))

    sent = json.loads(plotly.io.to_json(fig, validate=False))["data"][0]["x"]
    assert sent == json.loads(plotly.io.to_json(plotly_own))["data"][0]["x"]
    assert sent[0].startswith("2026-11-01T21:20:00") and "+" not in sent[0]
