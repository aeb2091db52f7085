"""PolicyReports imported three times, as a CronJob would: the violations opened and
remediated between snapshots, their first-seen and resolved times, and the MTTR the SLI
batch computes from them (M3, metrics/sli/remediation.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from collector.normalize import Normalizer
from importers import run
from importers.documents import Document
from importers.facts import SourceFacts
from importers.parsing import Options
from importers.snapshots import SnapshotStore
from metrics import jobs
from policyscope.cli.imports import DirectDelivery
from tests.builders.reports import pod_report, report_list, result

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0, second=0, minute=0)
T0, T1, T2 = NOW - timedelta(days=3), NOW - timedelta(days=2), NOW - timedelta(days=1)
SEEN_A = T0 - timedelta(hours=5)  # the background scan that first failed web-1's labels
SEEN_B = T0 - timedelta(hours=2)


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def snapshots():
    """Three `kubectl get policyreports -A -o json` of one cluster:
    T0: web-1 fails require-labels (A) and disallow-latest-tag passes; web-2 fails
        disallow-privileged-containers (B); api-1 fails disallow-latest-tag with scored: false
        (a warning, never a violation).
    T1: A fixed (web-1 passes), api-1 now really fails disallow-latest-tag (C).
    T2: web-2 is deleted with its report (B gone: --prune diffs the missing report as empty);
        C still open."""
    t0 = report_list([
        pod_report("shop", "web-1", [result("require-labels", "fail", SEEN_A),
                                     result("disallow-latest-tag", "pass", SEEN_A)]),
        pod_report("shop", "web-2", [result("disallow-privileged-containers", "fail", SEEN_B)]),
        pod_report("payments", "api-1", [result("disallow-latest-tag", "fail", SEEN_B,
                                                scored=False)]),
    ])
    t1 = report_list([
        pod_report("shop", "web-1", [result("require-labels", "pass", T1 - timedelta(hours=1)),
                                     result("disallow-latest-tag", "pass", SEEN_A)]),
        pod_report("shop", "web-2", [result("disallow-privileged-containers", "fail", SEEN_B)]),
        pod_report("payments", "api-1", [result("disallow-latest-tag", "fail",
                                                T1 - timedelta(hours=3))]),
    ])
    t2 = report_list([
        pod_report("shop", "web-1", [result("require-labels", "pass", T1 - timedelta(hours=1)),
                                     result("disallow-latest-tag", "pass", SEEN_A)]),
        pod_report("payments", "api-1", [result("disallow-latest-tag", "fail",
                                                T1 - timedelta(hours=3))]),
    ])
    return [(T0, t0), (T1, t1), (T2, t2)]


def import_at(client, database, when, report, prune=True):
    options = Options(SourceFacts(team="storefront", cluster="prod"), ms(when), prune=prune)
    store = SnapshotStore(client, database)
    delivery = DirectDelivery(client, database, Normalizer())
    return run.run("policyreport", Document("reports.json", json.dumps(report)), options,
                   delivery, store)


def violations(client):
    return client.query(
        "SELECT policy_id, resource_name, violation_status, toUnixTimestamp64Milli(event_time),"
        " violation_id, attributes['policy.violation.first_seen'] FROM policy_events "
        "WHERE event_kind = 'policy.violation' ORDER BY event_time, policy_id").result_rows


def test_three_snapshots_open_and_remediate_violations_with_their_times(chdb_client, database):
    reports = [import_at(chdb_client, database, when, r) for when, r in snapshots()]

    assert [(r.opened, r.remediated) for r in reports] == [(2, 0), (1, 1), (0, 1)]
    rows = violations(chdb_client)
    assert [(p, n, s, t) for p, n, s, t, _, _ in rows] == [
        ("require-labels", "web-1", "opened", ms(SEEN_A)),
        ("disallow-privileged-containers", "web-2", "opened", ms(SEEN_B)),
        ("disallow-latest-tag", "api-1", "opened", ms(T1 - timedelta(hours=3))),
        ("require-labels", "web-1", "remediated", ms(T1)),
        ("disallow-privileged-containers", "web-2", "remediated", ms(T2)),
    ]
    ids = {(p, s): v for p, _, s, _, v, _ in rows}
    assert ids["require-labels", "opened"] == ids["require-labels", "remediated"]
    first_seen = {p: f for p, _, s, _, _, f in rows if s == "remediated"}
    assert first_seen["require-labels"] == SEEN_A.strftime("%Y-%m-%dT%H:%M:%SZ")
    # the unscored failure was a warning: a decision, never a violation; the failure listed
    # at T1 and again at T2 with the same timestamp is one evaluation, stored once
    assert chdb_client.query(
        "SELECT outcome, count() FROM policy_decisions WHERE resource_name = 'api-1' "
        "GROUP BY outcome ORDER BY outcome").result_rows == [("deny", 1), ("warn", 1)]
    assert chdb_client.command(
        "SELECT DISTINCT team FROM policy_events WHERE event_kind = 'policy.violation'") \
        == "storefront"


def test_the_sli_batch_computes_mttr_from_the_imported_lifecycle(chdb_client, database):
    for when, report in snapshots():
        import_at(chdb_client, database, when, report)

    frame = jobs.compute(chdb_client, [NOW], windows=["30d"])
    overall = {r["sli"]: r for r in frame.filter(frame["dimension"] == "").iter_rows(named=True)}
    mttr_a = (T1 - SEEN_A).total_seconds()
    mttr_b = (T2 - SEEN_B).total_seconds()
    assert overall["M3_mean"]["total"] == 2
    assert overall["M3_mean"]["value"] == pytest.approx((mttr_a + mttr_b) / 2)
    assert overall["M3_open"]["total"] == 1  # C, opened at T1 - 3h, still open


def test_importing_the_same_snapshot_again_changes_nothing(chdb_client, database):
    (when, report), *_ = snapshots()
    first = import_at(chdb_client, database, when, report)
    count = chdb_client.command("SELECT count() FROM policy_events")
    decisions = chdb_client.command("SELECT count() FROM policy_decisions")
    again = import_at(chdb_client, database, when + timedelta(minutes=5), report)
    assert (first.opened, again.opened, again.remediated) == (2, 0, 0)
    assert chdb_client.command("SELECT count() FROM policy_events") == count
    assert chdb_client.command("SELECT count() FROM policy_decisions") == decisions


def test_without_prune_a_missing_report_keeps_its_violations_open(chdb_client, database):
    t0, t1, t2 = snapshots()
    import_at(chdb_client, database, *t0)
    import_at(chdb_client, database, *t1)
    last = import_at(chdb_client, database, *t2, prune=False)
    assert (last.opened, last.remediated) == (0, 0)  # web-2's report is simply not in it


def test_the_snapshot_survives_a_new_store_object(chdb_client, database):
    """The diff state is in ClickHouse, not in the process: a fresh store sees it."""
    (when, report), *_ = snapshots()
    import_at(chdb_client, database, when, report)
    stored = SnapshotStore(chdb_client, database).open_sources("policyreport:prod/")
    assert len(stored) == 2
    loaded = SnapshotStore(chdb_client, database).load(stored)
    assert sorted(f.attributes["policy.id"] for s in loaded.values() for f in s.open.values()) \
        == ["disallow-privileged-containers", "require-labels"]
