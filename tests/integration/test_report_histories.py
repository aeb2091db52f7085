"""`sources.report_histories` keeps only the reports that can be the latest before a point;
the latest reports and window sums over what it keeps equal those over every report, for a
scheduled run (few points), a backfill on the hour and a backfill inside hours (on chDB)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from metrics import sources
from metrics.sli.base import Context, window_rows
from metrics.sli.latest import histories_of, latest_reports, window_counts
from tests.builders.rows import ev, fresh_database, insert_events

pytestmark = pytest.mark.integration

UTC = timezone.utc
END = datetime(2026, 11, 4, tzinfo=UTC)
START = END - timedelta(days=3)
WINDOWS = ["5m", "1h", "6h", "1d"]
KEYS, VALUES = ["team"], ["workload_enforced", "image"]


def reports() -> list[dict]:
    """Six workloads reporting every few minutes to every few hours over three days, now and
    then changing team, enforcement or image, some twice in one millisecond."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(6):
        at = START + timedelta(seconds=int(rng.integers(0, 3600)))
        while at < END:
            rows.append(ev("workload.inventory", at, workload_id=f"w{i}",
                           team=["payments", "identity"][int(rng.integers(0, 2))],
                           workload_enforced=bool(rng.integers(0, 2)),
                           image=f"img-{int(rng.integers(0, 3))}"))
            if rng.random() < 0.05:  # a second report at the same time, another state
                rows.append({**rows[-1], "workload_enforced": not rows[-1]["workload_enforced"]})
            at += timedelta(seconds=int(rng.choice([40, 300, 3600, 5 * 3600])))
    return rows


def window_frame(points: list[datetime], histories: pl.DataFrame) -> pl.DataFrame:
    ctx = Context(None, points, WINDOWS)
    enforced = histories.get_column("workload_enforced").fill_null(False).to_numpy()
    cells = [window_counts(ctx, latest, {"good": enforced[latest.state]})
             for latest in latest_reports(ctx, histories, "workload_id", {"team": "team"})]
    return window_rows(ctx, cells).sort("at", "window", "dimension", "dimension_value")


@pytest.mark.parametrize("points", [
    pytest.param([END - timedelta(minutes=m) for m in (1, 95, 1441)],
                 id="a scheduled run: the last report of each state before each point"),
    pytest.param([END - timedelta(hours=h) for h in range(30)],
                 id="a backfill on the hour: the last report of each state in each hour"),
    pytest.param([END - timedelta(minutes=30 + 60 * h) for h in range(30)],
                 id="a backfill at half past: every report of the hours holding a point"),
])
def test_the_kept_reports_give_the_latest_reports_of_all_reports(chdb_client, points):
    fresh_database(chdb_client)
    insert_events(chdb_client, reports())
    start = START - timedelta(days=1)
    kept = sources.report_histories(chdb_client, "workload.inventory", "workload_id", KEYS,
                                    VALUES, start, max(points), points)
    every = sources.events(chdb_client, "workload.inventory", ["workload_id", *KEYS, *VALUES],
                           start, max(points))
    everything = histories_of(every, ["workload_id", *KEYS, *VALUES])
    assert kept.get_column("event_times").list.len().sum() < every.height
    assert_frame_equal(window_frame(points, kept), window_frame(points, everything))


def test_scheduled_runs_with_a_memo_read_only_new_rows_and_give_what_a_full_read_gives(
        chdb_client):
    """A scheduler keeps the latest report per state between minutes (`memo`); each run
    then reads only rows that can change it. New reports, a late report (timed before the
    previous point, inserted after it ran), a state change and a point earlier than the kept
    one must all come out as a full read gives them."""
    fresh_database(chdb_client)
    insert_events(chdb_client, reports())
    # stored an hour ago but timed after the first run's point: only its event time can
    # bring it into a later run (its ingest time is long before what the memo has read)
    chdb_client.insert("policy_events", [[
        "early-w5", "workload.inventory", END + timedelta(seconds=90), "w5", "checkout", True,
        "img-7", datetime.now(UTC) - timedelta(hours=1)]], column_names=[
        "event_id", "event_kind", "event_time", "workload_id", "team", "workload_enforced",
        "image", "ingested_at"])
    memo: dict = {}

    def both(at: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
        start = at - timedelta(days=2)
        kept = sources.report_histories(chdb_client, "workload.inventory", "workload_id",
                                        KEYS, VALUES, start, at, [at], memo=memo)
        full = sources.report_histories(chdb_client, "workload.inventory", "workload_id",
                                        KEYS, VALUES, start, at, [at])
        return window_frame([at], kept), window_frame([at], full)

    at = END
    for step, rows in enumerate([
        [],  # the first run reads everything
        [ev("workload.inventory", END + timedelta(seconds=20), workload_id="w0",
            team="payments", workload_enforced=True, image="img-9")],  # a new report
        [ev("workload.inventory", END - timedelta(hours=3), workload_id="w-late",
            team="identity", workload_enforced=False, image="img-1")],  # late: before `at`
        [ev("workload.inventory", END + timedelta(minutes=2, seconds=5), workload_id="w1",
            team="search", workload_enforced=True, image="img-2")],  # w1 changes team
    ]):
        insert_events(chdb_client, rows)
        at = END + timedelta(minutes=step + 1)
        got, expected = both(at)
        assert_frame_equal(got, expected)
        assert got.height > 0
    assert ("workload.inventory", ("workload_id", *KEYS, *VALUES)) in memo
    for team in ("search", "checkout"):  # where w1 moved to; the early-stored report of w5
        assert both(at)[0].filter(pl.col("dimension_value") == team).height > 0
    got, expected = both(END - timedelta(hours=1))  # earlier than the kept point: full read
    assert_frame_equal(got, expected)
