"""The latest report of each entity at each point and sums over a window's entities
(`metrics.sli.latest`), against brute force over every report (no storage)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.sli.base import Context, window_rows
from metrics.sli.latest import histories_of, latest_reports, window_counts
from metrics.windows import window_start

pytestmark = pytest.mark.unit

UTC = timezone.utc
AT = datetime(2026, 11, 2, 12, tzinfo=UTC)
WINDOWS = ["5m", "1h", "1d", "month"]
TEAMS = ["payments", "identity"]
COLUMNS = ["entity", "team", "flag", "image"]
SCHEMA = {"event_time": pl.Datetime("us", "UTC"), "entity": pl.String, "team": pl.String,
          "flag": pl.Boolean, "image": pl.String}


def T(text: str) -> datetime:
    return datetime.fromisoformat(f"2026-{text}").replace(tzinfo=UTC)


def sums(points, rows, windows=WINDOWS, distinct=False) -> dict[tuple, tuple]:
    """(at, window, dimension, value) -> (n, good) from latest_reports + window_counts, over
    reports (time, entity, team, flag, image); good = reports flagged, or with `distinct`
    n = distinct images and good = those whose name ends in '+'."""
    rows = pl.DataFrame(rows, schema=SCHEMA, orient="row")
    histories = histories_of(rows, COLUMNS).sample(fraction=1.0, shuffle=True, seed=1)
    ctx = Context(None, points, windows)
    flag = histories.get_column("flag").to_numpy()
    image = histories.get_column("image")
    codes = image.rank("dense").cast(pl.Int64).to_numpy()
    plus = image.str.ends_with("+").to_numpy()
    cells = [window_counts(ctx, latest, {"good": plus[latest.state] if distinct else
                                         flag[latest.state]}, codes if distinct else None)
             for latest in latest_reports(ctx, histories, "entity", {"team": "team"})]
    frame = window_rows(ctx, cells)
    return {(at, w, d, v): (n, good) for at, w, d, v, n, good in frame.select(
        "at", "window", "dimension", "dimension_value", "n", "good").rows()}


def brute_force(points, rows, windows=WINDOWS, distinct=False) -> dict[tuple, tuple]:
    """Per point and (entity, value): the latest report before the point (of two at one time,
    the one whose (entity, team, flag, image) sorts last); in a window when not older than
    its start."""
    expected = {}
    for at in points:
        for dimension in ["", "team"]:
            latest: dict[tuple, tuple] = {}
            for time, entity, team, flag, image in rows:
                key = (entity, team if dimension else "")
                state = (time, entity, team, flag, image)
                if time < at and (key not in latest or state > latest[key]):
                    latest[key] = state
            for window in windows:
                start = window_start(at, window)
                inside = [s for s in latest.values() if s[0] >= start]
                for value in ([""] if not dimension else TEAMS):
                    mine = [s for s in inside if not dimension or s[2] == value]
                    if distinct:
                        images = {s[4] for s in mine}
                        n, good = len(images), sum(i.endswith("+") for i in images)
                    else:
                        n, good = len(mine), sum(s[3] for s in mine)
                    if n or not dimension:
                        expected[(at, window, dimension, value)] = (n, float(good))
    return expected


def test_a_report_exactly_at_the_point_is_not_yet_the_latest():
    rows = [(T("11-02 11:58"), "e1", "payments", True, "a"), (AT, "e1", "payments", False, "a")]
    assert sums([AT], rows)[(AT, "5m", "", "")] == (1, 1.0)


def test_a_report_exactly_at_the_window_start_is_inside_it():
    rows = [(T("11-02 11:55"), "e1", "payments", True, "a")]
    assert sums([AT], rows)[(AT, "5m", "", "")] == (1, 1.0)
    assert sums([AT + timedelta(minutes=1)], rows)[(AT + timedelta(minutes=1), "5m", "", "")] \
        == (0, 0.0)


def test_an_entity_that_moved_teams_counts_for_each_team_it_reported_with_in_the_window():
    rows = [(T("11-02 11:30"), "e1", "payments", True, "a"),
            (T("11-02 11:50"), "e1", "identity", False, "a")]
    found = sums([AT], rows)
    assert found[(AT, "1h", "team", "payments")] == (1, 1.0)
    assert found[(AT, "1h", "team", "identity")] == (1, 0.0)
    assert found[(AT, "1h", "", "")] == (1, 0.0)  # overall: its latest report only
    assert (AT, "5m", "team", "payments") not in found  # no report with payments in 5m


def test_of_two_reports_at_one_time_the_state_sorting_last_counts_in_any_row_order():
    rows = [(T("11-02 11:50"), "e1", "payments", True, "a"),
            (T("11-02 11:50"), "e1", "payments", False, "a")]
    assert sums([AT], rows)[(AT, "1h", "", "")] == (1, 1.0)
    assert sums([AT], rows[::-1])[(AT, "1h", "", "")] == (1, 1.0)


def test_without_reports_every_window_has_an_overall_row_of_zero():
    found = sums([AT], [])
    assert found == {(AT, w, "", ""): (0, 0.0) for w in WINDOWS}


def test_distinct_images_count_once_however_many_entities_run_them():
    rows = [(T("11-02 11:50"), "e1", "payments", True, "a+"),
            (T("11-02 11:58"), "e2", "payments", True, "a+"),
            (T("11-02 11:10"), "e3", "identity", True, "b")]
    found = sums([AT], rows, distinct=True)
    assert found[(AT, "5m", "", "")] == (1, 1.0)
    assert found[(AT, "1h", "", "")] == (2, 1.0)


reports = st.lists(st.tuples(st.integers(-35 * 86400_000, 0),
                             st.sampled_from(["e1", "e2", "e3", "e4"]), st.sampled_from(TEAMS),
                             st.booleans(), st.sampled_from(["a", "a+", "b", "c+"])),
                   max_size=30)
point_offsets = st.lists(st.integers(0, 3 * 24 * 60), min_size=1, max_size=12, unique=True)


def to_rows(drawn):
    return [(AT + timedelta(milliseconds=ms // 60000 * 60000 if ms % 3 == 0 else ms), *rest)
            for ms, *rest in drawn]  # a third on whole minutes: ties and boundaries


@settings(max_examples=80, deadline=None)
@given(drawn=reports, minutes=point_offsets, distinct=st.booleans())
def test_window_counts_of_latest_reports_equal_brute_force(drawn, minutes, distinct):
    points = sorted(AT - timedelta(minutes=m) for m in minutes)
    rows = to_rows(drawn)
    assert sums(points, rows, distinct=distinct) == brute_force(points, rows, distinct=distinct)
