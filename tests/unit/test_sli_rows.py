"""The rows a batch run keeps and how they are grouped (`jobs.without_empty_breakdowns`).

The rule is checked against its plain statement -- group every row by (at, sli, dimension,
dimension_value) and keep a group if any of its rows had events -- on random frames, with
the categoricals the SLI families make and with strings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics import jobs, sli_writer
from metrics.sli.base import OUTPUT

pytestmark = pytest.mark.unit

START = datetime(2026, 11, 1, tzinfo=timezone.utc)


def plain_rule(frame: pl.DataFrame) -> pl.DataFrame:
    had = (pl.col("total").fill_null(0) > 0) | (pl.col("good").fill_null(0) > 0)
    return frame.filter((pl.col("dimension") == "") | had.any().over(
        ["at", "sli", "dimension", "dimension_value"]))


row = st.tuples(
    st.integers(0, 3),  # point (hours after START)
    st.sampled_from(["M1", "M6", "L_p50"]),
    st.sampled_from(["5m", "1h", "30d"]),
    st.sampled_from([("", ""), ("team", "payments"), ("team", "search"), ("cluster", "a")]),
    st.one_of(st.none(), st.integers(0, 2)),  # good
    st.one_of(st.none(), st.integers(0, 2)),  # total
)


def frame_of(rows: list) -> pl.DataFrame:
    return pl.DataFrame(
        [(START + timedelta(hours=p), sli, window, dim, value,
          None if good is None else float(good), None if total is None else float(total), None)
         for p, sli, window, (dim, value), good, total in rows],
        schema=OUTPUT, orient="row")


@settings(max_examples=200, deadline=None)
@given(st.lists(row, max_size=40))
def test_the_rule_keeps_exactly_the_groups_with_events(rows):
    frame = frame_of(rows)  # categoricals, as the families make them
    assert jobs.without_empty_breakdowns(frame).equals(plain_rule(frame))
    strings = frame.with_columns(pl.col(c).cast(pl.String) for c in sli_writer.LOW_CARDINALITY)
    assert jobs.without_empty_breakdowns(strings).equals(plain_rule(strings))


def test_a_group_with_events_only_in_another_window_keeps_its_empty_rows():
    frame = frame_of([(0, "M1", "5m", ("team", "search"), 0, 0),
                      (0, "M1", "1h", ("team", "search"), 1, 2),
                      (1, "M1", "5m", ("team", "search"), 0, 0),  # the next point: dropped
                      (1, "M1", "5m", ("", ""), 0, 0)])  # the overall row stays
    kept = jobs.without_empty_breakdowns(frame)
    assert kept.select("at", "window", "dimension").rows() == [
        (START, "5m", "team"), (START, "1h", "team"), (START + timedelta(hours=1), "5m", "")]


def test_groups_whose_codes_do_not_fit_the_key_are_told_apart_by_their_columns(monkeypatch):
    # 64 bits hold minutes to the year 9999 and any realistic number of strings; with a
    # smaller budget the key falls back to the columns themselves, and the rule still holds
    monkeypatch.setattr(jobs, "KEY_BITS", 4)
    frame = frame_of([(0, "M1", "5m", ("team", "payments"), 0, 0),
                      (3, "M1", "5m", ("team", "payments"), 1, 1),
                      (3, "M1", "5m", ("team", "search"), 0, 0)])
    assert jobs._group_key(frame).dtype == pl.Struct
    assert jobs.without_empty_breakdowns(frame).equals(plain_rule(frame))
    assert jobs.without_empty_breakdowns(frame).height == 1
