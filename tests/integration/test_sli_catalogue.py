"""The SLI catalogue (schemas/slis.py) is what the families compute: every family runs over one
store holding every scenario's events of tests/integration/test_sli_values.py, and the (SLI,
dimension) pairs each emits must be exactly the catalogue's for that family; and the batch's
late-data probe, built from the registry of SLI sources, sees a late row of every source."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from metrics import jobs, sources
from metrics.sli.base import INSTANT, Context
from schemas import slis, tables
from tests.builders.rows import (
    dec,
    ev,
    fresh_database,
    insert_alerts,
    insert_decisions,
    insert_events,
    insert_verdicts,
)
from tests.builders.scenarios import (
    AT,
    build_agents,
    build_alerts,
    build_coverage,
    build_decisions,
    build_false_positives,
    build_gates,
    build_latency,
    build_rates,
    build_remediation,
)

pytestmark = pytest.mark.integration

BUILDERS = (build_decisions, build_latency, build_gates, build_coverage, build_remediation,
            build_false_positives, build_rates, build_agents, build_alerts)
WINDOWS = ["1h", "1d"]


def family_name(module) -> str:
    return module.__name__.rsplit(".", 1)[-1]


@pytest.fixture(scope="module")
def emitted(chdb_client) -> dict[str, pl.DataFrame]:
    """Each family's rows at AT over one store with every scenario's events."""
    fresh_database(chdb_client)
    for build in BUILDERS:
        build(chdb_client)
    ctx = Context(chdb_client, [AT], WINDOWS)
    return {family_name(f): f.compute(ctx) for f in jobs.FAMILIES}


def test_the_batch_runs_every_family_of_the_catalogue():
    assert sorted(family_name(f) for f in jobs.FAMILIES) == sorted(slis.FAMILIES)


@pytest.mark.parametrize("family", slis.FAMILIES)
def test_a_family_emits_exactly_its_catalogued_slis_and_dimensions(emitted, family):
    rows = jobs.without_empty_breakdowns(emitted[family])
    pairs = set(rows.select(pl.col("sli").cast(pl.String),
                            pl.col("dimension").cast(pl.String)).unique().rows())
    expected = {(sli, dimension) for sli in slis.of_family(family)
                for dimension in ("", *slis.SLIS[sli].dimensions)}
    assert sorted(pairs) == sorted(expected)


@pytest.mark.parametrize("family", slis.FAMILIES)
def test_instant_slis_come_at_the_point_and_the_others_per_window(emitted, family):
    rows = emitted[family].with_columns(pl.col("sli", "window").cast(pl.String))
    for sli in slis.of_family(family):
        windows = set(rows.filter(pl.col("sli") == sli).get_column("window"))
        assert windows == ({INSTANT} if slis.SLIS[sli].instant else set(WINDOWS)), sli


@pytest.mark.parametrize("family", slis.FAMILIES)
def test_ratio_slis_have_a_numerator_and_values_within_0_and_1(emitted, family):
    rows = emitted[family].with_columns(pl.col("sli").cast(pl.String))
    for sli in slis.of_family(family):
        mine = rows.filter(pl.col("sli") == sli)
        if slis.SLIS[sli].kind == "ratio":
            assert mine.get_column("good").null_count() == 0, sli
            assert mine.get_column("value").drop_nulls().is_between(0, 1).all(), sli


def _verdict(client, when, uid):
    insert_verdicts(client, [{"subject_id": uid, "subject_time": when,
                              "verdict": "true_positive",
                              "triaged_at": datetime.now(timezone.utc)}])


ROW = {  # a row of each probed table, timed `when`, landing now
    "decisions_1m": lambda c, when, uid: insert_decisions(c, [dec(when)]),
    "policy_events": lambda c, when, uid: insert_events(c, [ev("drift.detected", when)]),
    "triage_verdicts": _verdict,
    "alert_events": lambda c, when, uid: insert_alerts(c, [{"alert_id": uid, "at": when}]),
}


@pytest.mark.parametrize("source", tables.SLI_SOURCES, ids=lambda s: s.table)
def test_the_probes_see_the_newest_ingest_and_a_late_row_of_every_source(chdb_client, source):
    assert set(ROW) == {s.table for s in tables.SLI_SOURCES}  # a case per registry entry
    fresh_database(chdb_client)
    ROW[source.table](chdb_client, AT - timedelta(hours=2), "early")
    through = sources.ingested_through(chdb_client)
    assert through > AT.replace(year=2000)  # the early row's ingest time, not 1970
    assert sources.late_minutes(chdb_client, through, AT) is None  # nothing since
    time.sleep(0.01)  # ingest times are milliseconds
    ROW[source.table](chdb_client, AT - timedelta(minutes=57, seconds=30), "late")
    assert sources.ingested_through(chdb_client) > through
    assert sources.late_minutes(chdb_client, through, AT) == AT - timedelta(minutes=58)
    assert sources.late_minutes(chdb_client, through, AT - timedelta(hours=1)) is None
