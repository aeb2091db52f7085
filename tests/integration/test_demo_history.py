"""The demo's first start on a real (chDB) store: a few days of history written through the
collector's row building and insert, analysts' verdicts, the SLIs backfilled over every day of
it -- and a second start that finds decisions stored and adds nothing."""

from __future__ import annotations

from pathlib import Path

from datetime import datetime, timedelta, timezone

import pytest

from metrics.windows import floor_minute
from policyscope.demo import history

pytestmark = pytest.mark.integration

DAYS = 3


def _count(client, sql: str) -> int:
    return int(client.command(sql))


def test_first_start_writes_history_and_backfills_slis_a_second_does_not(chdb_client,
                                                                         database):
    client = chdb_client
    until = floor_minute(datetime.now(timezone.utc)) - timedelta(minutes=7)
    run = history.ensure_history(client, days=DAYS, seed=7, until=until, progress=False,
                                 database=database)
    assert run is not None
    report = run.history
    decisions = _count(client, "SELECT count() FROM policy_decisions")
    events = _count(client, "SELECT count() FROM policy_events")
    assert decisions == report.events["policy.decision"] > 0
    assert decisions + events == report.rows == sum(report.events.values())
    bounds = client.query("SELECT min(event_time), max(event_time) FROM policy_decisions"
                          ).result_rows[0]
    first, last = (t.replace(tzinfo=timezone.utc) for t in bounds)
    assert until - timedelta(days=DAYS) <= first < until - timedelta(days=DAYS - 1)
    assert until - timedelta(hours=3) < last <= until  # up to the end, nothing after it
    # the staging tables of the history's writer are gone
    assert _count(client, "SELECT count() FROM system.tables WHERE database = currentDatabase()"
                          " AND name LIKE '%demohistory%'") == 0
    assert report.verdicts > 0 and report.verdicts == _count(
        client, "SELECT count() FROM triage_verdicts FINAL")

    # the backfill: hourly points over every day, with values for each of them
    assert run.backfill.points == DAYS * 24 and run.backfill.rows > 0
    per_day = client.query(
        "SELECT toDate(at) AS day, count() AS points, min(total) FROM sli_values FINAL "
        "WHERE sli = 'M1' AND window = '1h' AND dimension = '' AND at <= {until:DateTime('UTC')} "
        "GROUP BY day ORDER BY day", parameters={"until": until}).result_rows
    days = {row[0] for row in per_day}
    expected = {(until - timedelta(days=d)).date() for d in range(DAYS)}
    assert expected <= days, (expected, days)
    assert sum(row[1] for row in per_day) == DAYS * 24  # a value at every hourly point
    latest = {row[0]: row[1:] for row in client.query(
        "SELECT sli, total, value FROM sli_values FINAL WHERE at = {at:DateTime('UTC')} AND "
        "window = '1d' AND dimension = ''", parameters={"at": until}).result_rows}
    for sli in ("M1", "M2", "M6", "M8", "M9", "L_p95"):  # decisions, inventory, gates, agents
        total, value = latest[sli]
        assert total > 0 and value is not None, sli
    assert 0.99 < latest["M1"][1] <= 1.0 and latest["M6"][1] < 0.2
    watermark = client.query("SELECT max(last_at) FROM sli_watermark").result_rows[0][0]
    assert watermark.replace(tzinfo=timezone.utc) == until

    # the violations still open are the ones the live traffic continues
    still_open = history.open_violations(client, until - timedelta(days=90))
    assert still_open == report.open_violations and still_open

    # a second start: decisions stored, nothing generated or backfilled again
    sli_rows = _count(client, "SELECT count() FROM sli_values")
    assert history.ensure_history(client, days=DAYS, seed=7, progress=False,
                                  database=database) is None
    assert _count(client, "SELECT count() FROM policy_decisions") == decisions
    assert _count(client, "SELECT count() FROM policy_events") == events
    assert _count(client, "SELECT count() FROM sli_values") == sli_rows


def test_up_demo_opens_the_store_with_the_demo_and_collector_settings(chdb_client, config_factory):
    """`up --demo`'s store opening (policyscope/demo/start.py): `demo_history_days` of history
    on first start, built with the collector's own settings (its redaction patterns reach
    the history's rows) and the SLO standings an evaluator would have stored over it, hourly;
    nothing with `demo_history: false`."""
    from policyscope.demo.start import open_store

    name = f"demo_{chdb_client.database}"
    slo_dir = Path(__file__).resolve().parents[2] / "examples" / "slo"
    config = config_factory(database=name, demo_history_days=1, slo_dir=str(slo_dir),
                            redact_values=[r"[a-z]+@acme\.example"])
    client, database = open_store(config)
    try:
        assert database == name
        span = client.query("SELECT dateDiff('hour', min(event_time), max(event_time)), "
                            "countIf(actor LIKE '%@acme.example'), "
                            "countIf(actor = '[REDACTED]') FROM policy_decisions").result_rows[0]
        assert 20 <= span[0] <= 24  # one day of it
        assert span[1] == 0 < span[2]  # the humans' addresses redacted, as the collector would
        slos = len([f for f in slo_dir.iterdir() if f.suffix == ".yaml"])
        points, names = client.query("SELECT uniqExact(at), uniqExact(slo) "
                                     "FROM slo_standings").result_rows[0]
        assert (points, names) == (24, slos)
    finally:
        client.close()
    off = config_factory(database=f"{name}_off", demo_history=False)
    client, _ = open_store(off)
    try:
        assert _count(client, "SELECT count() FROM policy_decisions") == 0
    finally:
        client.close()


def test_the_demo_uses_the_shipped_catalog_unless_one_has_ones_own(config_factory, tmp_path):
    from policyscope.demo.start import EXAMPLE_CATALOG, use_example_catalog

    empty = config_factory(catalog_dir=str(tmp_path / "none"))
    use_example_catalog(empty)
    assert empty.catalog.catalog_dir == EXAMPLE_CATALOG
    assert any(EXAMPLE_CATALOG.glob("*.yaml"))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "p.yaml").write_text("policies: []\n")
    own = config_factory(catalog_dir=str(tmp_path / "mine"))
    use_example_catalog(own)
    assert own.catalog.catalog_dir == tmp_path / "mine"
