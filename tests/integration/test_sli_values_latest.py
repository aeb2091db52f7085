"""Reads of stored SLI values keep each row's latest computation, as FINAL would (the table is
a ReplacingMergeTree by computed_at), while they pick it with LIMIT 1 BY / argMax instead of
FINAL: here two computations of the same rows sit in separate, unmerged parts, the later one
inserted first, so neither insert order nor a merge can hide a wrong pick."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dashboards.queries import executive
from metrics import read

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
COLUMNS = ["sli", "window", "dimension", "dimension_value", "at", "good", "total", "value",
           "computed_at"]


def _insert(client, rows: list[tuple]) -> None:
    client.insert("sli_values", rows, column_names=COLUMNS)


def _computations(client, sli: str, window: str, dimension: str, value: str, at: datetime,
                  old: tuple, new: tuple) -> None:
    """Two computations of one row: `new` (computed later) inserted before `old`."""
    computed = AT + timedelta(minutes=5)
    _insert(client, [(sli, window, dimension, value, at, *new, computed)])
    _insert(client, [(sli, window, dimension, value, at, *old, computed - timedelta(minutes=1))])


def test_the_read_api_takes_each_rows_latest_computation(chdb_client, database):
    for team, old, new in (("payments", (1.0, 4.0, 0.25), (3.0, 4.0, 0.75)),
                           ("search", (2.0, 2.0, 1.0), (1.0, 2.0, 0.5))):
        _computations(chdb_client, "M2", "30d", "team", team, AT, old, new)
    parts = int(chdb_client.command(
        f"SELECT count() FROM system.parts WHERE active AND database = '{database}' "
        "AND table = 'sli_values'"))
    assert parts == 4  # nothing merged: FINAL-free reads must still pick

    rows = read.sli_values(chdb_client, sli="M2", window="30d", by="team")
    assert rows.select("dimension_value", "good", "total", "value").rows() == [
        ("payments", 3.0, 4.0, 0.75), ("search", 1.0, 2.0, 0.5)]
    coverage = executive.coverage_by_team(chdb_client, "30d")
    assert coverage["coverage"].tolist() == [0.75, 0.5]


def test_the_executive_headline_and_drift_take_the_latest_computation(chdb_client, database):
    week_ago = AT - timedelta(days=7)
    _computations(chdb_client, "M6", "7d", "", "", AT, (1.0, 10.0, 0.1), (2.0, 10.0, 0.2))
    _computations(chdb_client, "M6", "7d", "", "", week_ago, (5.0, 10.0, 0.5),
                  (4.0, 10.0, 0.4))
    _computations(chdb_client, "M5", "month", "", "", AT, (7.0, 7.0, 7.0), (9.0, 9.0, 9.0))

    headline = executive.headline(chdb_client, "7d", "", "")
    assert headline["M6"]["value"] == 0.2 and headline["M6"]["good"] == 2.0
    assert headline["M6"]["week_ago"] == 0.4
    drift = executive.drift_by_month(chdb_client, "", "", AT - timedelta(days=60))
    assert drift["drift_events"].tolist() == [9.0]
