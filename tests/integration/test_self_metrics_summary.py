"""`collector.self_metrics_read.summary` (the rule applied in ClickHouse) against the rule
stated in Polars (`deltas`, through `snapshots`), on random snapshot histories stored in chDB:
several collectors, restarts, resets, series new in a run, snapshots missing or stored twice,
runs that began before the lookback (their first deltas unknown) and gauges."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from collector.self_metrics_read import LOOKBACK, STORED, snapshots, summary

pytestmark = pytest.mark.integration

# recent: the table's TTL drops a part of rows older than 35 days soon after it is written
T0 = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
START, END = T0 + timedelta(hours=2), T0 + timedelta(hours=3)  # the read's interval
COUNTERS = [("records_accepted", "logs", ""), ("records_rejected", "logs", "bad_outcome"),
            ("records_rejected", "traces", "missing_policy_id"), ("requests_refused", "", "x")]
GAUGES = [("spool_backlog_rows", "", ""), ("insert_seconds_max", "", "")]
METRICS = sorted({m for m, _, _ in COUNTERS + GAUGES})


def history(rng: random.Random) -> list[list]:
    """Stored rows (`STORED` order) of two or three collectors, each with one to three runs
    between an hour before the lookback and the interval's end."""
    rows = []
    for instance in [f"c{i}" for i in range(rng.randint(2, 3))]:
        moment = T0 + timedelta(minutes=rng.randint(0, 150))
        for _ in range(rng.randint(1, 3)):
            started, seq = moment, 0
            value = {s: 0.0 for s in COUNTERS}
            live = set(rng.sample(COUNTERS, 2))  # the others appear later (new series)
            for _ in range(rng.randint(1, 40)):
                moment += timedelta(seconds=rng.choice([10, 10, 10, 60, 300]))
                if moment >= END:
                    break
                seq += 1
                if rng.random() < 0.15:
                    continue  # this snapshot failed to be stored
                live |= {s for s in COUNTERS if rng.random() < 0.1}
                snapshot = [("uptime_seconds", "gauge", "", "",
                             (moment - started).total_seconds())]
                for series in sorted(live):
                    value[series] += rng.choice([0, 0, 1, 3, 50])
                    if rng.random() < 0.05:
                        value[series] = float(rng.randint(0, 3))  # a reset
                    snapshot.append((series[0], "counter", *series[1:], value[series]))
                snapshot += [(m, "gauge", s, lbl, float(rng.randint(0, 100)))
                             for m, s, lbl in GAUGES]
                copies = 2 if rng.random() < 0.05 else 1  # stored twice (a replay)
                rows += [[moment, instance, "host", started, seq, *sample]
                         for sample in snapshot for _ in range(copies)]
            moment += timedelta(minutes=rng.randint(0, 20))  # down, then restarted
    return rows


def reference(client, metrics: list[str] | None) -> pl.DataFrame:
    """`summary`'s columns from `snapshots`' rows (the rule in Polars), as summary orders them."""
    rows = snapshots(client, START, END, metrics=metrics)
    return (rows.sort("at").group_by("instance", "metric", "kind", "source", "label")
            .agg(pl.col("delta").sum().alias("increase"), pl.col("at").max().alias("latest_at"),
                 pl.col("value").last().alias("latest"), pl.col("value").max().alias("highest"),
                 pl.len().cast(pl.Int64).alias("rows"))
            .sort("instance", "metric", "source", "label"))


def test_summary_is_the_rule_of_deltas_over_random_histories(chdb_client, database):
    compared = unknown = from_zero = 0
    for seed in range(25):
        chdb_client.command("TRUNCATE TABLE collector_metrics")
        stored = history(random.Random(seed))
        chdb_client.insert("collector_metrics", stored, column_names=list(STORED))
        expected = reference(chdb_client, METRICS)
        got = summary(chdb_client, START, END, metrics=METRICS)
        assert got.to_dicts() == expected.to_dicts(), f"seed {seed}"
        everything = summary(chdb_client, START, END)  # every metric, the uptime series too
        assert everything.to_dicts() == reference(chdb_client, None).to_dicts(), f"seed {seed}"
        compared += expected.height
        counters = snapshots(chdb_client, START, END, metrics=METRICS).filter(
            pl.col("kind") == "counter")
        unknown += counters["delta"].null_count()
        from_zero += counters.filter((pl.col("delta") == pl.col("value"))
                                     & (pl.col("value") > 0)).height
    # the histories reached the rule's branches: deltas unknown (runs begun before the
    # lookback), counted from zero (a run's start, a new series, a reset), and differences
    assert unknown > 0 and from_zero > 0 and compared > 200
