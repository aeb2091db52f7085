"""A backfill's SLI rows reach ClickHouse in `sli_values`' key order (`sli_writer.KEY_ORDER`: sli,
window, dimension, dimension_value, at; texts as ClickHouse compares them), family by family:
ClickHouse then skips sorting them at insert."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from metrics import jobs, sli_writer
from metrics.sli.base import Context
from metrics.sources import FEW_POINTS
from tests.builders.rows import TEAMS, insert_all

pytestmark = pytest.mark.integration

KEY = ["sli", "window", "dimension", "dimension_value", "at"]
AT = datetime(2026, 11, 3, 12, tzinfo=timezone.utc)


def _kinds(seed: int) -> dict:
    rng = random.Random(seed)

    def near() -> int:
        return rng.randrange(-30 * 3600_000, 0)

    return {
        "decisions": [(near(), rng.choice(TEAMS), rng.choice(["allow", "deny", "error"]),
                       rng.choice([None, 0.004, 0.2])) for _ in range(60)],
        "gates": [(near(), rng.choice(TEAMS), rng.choice(["passed", "blocked"]))
                  for _ in range(20)],
        "inventory": [(near(), rng.choice(TEAMS), f"w{i % 5}", rng.choice([True, False]),
                       rng.choice(["img-a", "img-b"])) for i in range(20)],
        "sboms": [(near(), "img-a")],
        "verdicts": [(near(), rng.choice(TEAMS), f"d{i}", rng.choice(
            ["false_positive", "true_positive"])) for i in range(8)],
        "alerts": [(near(), f"a{i % 3}", rng.choice(["page", "ticket"]), "firing")
                   for i in range(8)],
        "beats": [(near(), f"ag{i % 3}", "healthy", 60.0) for i in range(12)],
    }


def test_every_family_gives_its_rows_in_the_tables_key_order(chdb_client, database):
    insert_all(chdb_client, AT, _kinds(3))
    points = [AT - timedelta(hours=h) for h in range(FEW_POINTS + 4)]  # the dense path
    ctx = Context(chdb_client, sorted(points), list(jobs.WINDOWS))
    for family in jobs.FAMILIES:
        rows = family.compute(ctx).select(KEY).with_columns(pl.col(KEY[:4]).cast(pl.String))
        assert rows.height > 0, family.__name__
        assert rows.equals(rows.sort(KEY)), f"{family.__name__}: rows out of key order"
        assert sli_writer.in_key_order(rows), family.__name__
