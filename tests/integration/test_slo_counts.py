"""SLO counts read the per-dimension rollups for one dimension and the combined rollups for
several; both must equal a count over the raw rows."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from metrics.windows import window_start
from slo.counts import counts

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
WINDOWS = ["5m", "1h", "1d", "3d", "30d"]


@pytest.fixture
def decisions(chdb_client, database):
    rng = random.Random(5)
    rows = []
    for i in range(3000):
        at = AT - timedelta(seconds=rng.randint(0, 4 * 86400))
        rows.append((f"e{i}", at, rng.choice(["payments", "identity", "search"]),
                     rng.choice(["eu-1", "us-1"]), rng.choice(["opa", "kyverno"]), "p1",
                     rng.choice(["allow", "allow", "allow", "error", "deny"])))
    chdb_client.insert("policy_decisions", rows, column_names=[
        "event_id", "event_time", "team", "cluster", "engine", "policy_id", "outcome"])
    return rows


def brute(rows, window, **match):
    start = window_start(AT, window)
    chosen = [r for r in rows if start <= r[1] < AT and all(
        r[{"team": 2, "cluster": 3, "engine": 4}[k]] == v for k, v in match.items())]
    return sum(1 for r in chosen if r[6] != "error"), len(chosen)


@pytest.mark.parametrize("where,by", [
    pytest.param({}, [], id="overall, from the per-dimension rollup"),
    pytest.param({}, ["team"], id="by team, from the per-dimension rollup"),
    pytest.param({"engine": "opa"}, [], id="where engine, from the per-dimension rollup"),
    pytest.param({"engine": "opa"}, ["team"], id="where engine by team, from the combined rollup"),
    pytest.param({}, ["team", "cluster"], id="by team and cluster, from the combined rollup"),
])
def test_counts_equal_the_raw_rows(chdb_client, decisions, where, by):
    frame = counts(chdb_client, "M1", where, by, [AT], WINDOWS)
    for row in frame.iter_rows(named=True):
        match = dict(where)
        if row["key"]:
            match.update(part.split("=", 1) for part in row["key"].split(","))
        assert (row["numerator"], row["total"]) == brute(decisions, row["window"], **match), row
    keys = set(frame.get_column("key"))
    expected = 3 ** ("team" in by) * 2 ** ("cluster" in by)
    assert len(keys) == expected
