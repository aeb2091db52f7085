"""The Policy tuning page under AppTest, over decisions of known versions, modes, outcomes
and latencies in the last day, and analysts' verdicts on some of them:

- k8s.require-non-root v1 (enforce, 2 h ago): 10 decisions, 2 denies, all 1 ms;
  v2 (audit, 1 h ago): 20 decisions, 10 denies (6 on payments' Pod api, 4 on search's Pod
  web), 1 error, all 10 ms. Verdicts: v1 one deny false positive; v2 three api denies false
  positive, one web deny true positive;
- k8s.require-limits: 5 allows, enforced, no latency reported.
Percentiles are the histogram's, log-linear inside a bucket: all at 1 ms sit in (0.8, 1] ms,
so p50 = 0.8 x 1.25 ** 0.5 ms; all at 10 ms in (8, 10] ms.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from metrics import jobs
from metrics.windows import floor_minute
from tests.builders.dashboards import (
    dataframe_after,
    insert_decisions,
    figures,
    metrics,
    open_page,
    rerun,
    texts,
)
from tests.builders.rows import dec
import triage
from triage import Actor, SubjectRef, Verdict

pytestmark = pytest.mark.integration

P, Q = "k8s.require-non-root", "k8s.require-limits"
FP = Verdict("false_positive", "the workload runs as root by design")
TP = Verdict("true_positive")


def label(client, ids, verdict, start, end, now):
    """Label the decisions `ids` (timed in [start, end]) through the triage API, as the
    Triage page does: their verdicts carry the decision's version, mode and resource."""
    triage.label(client, Actor("ana", "analyst"), [SubjectRef("decision", i) for i in ids],
                 verdict, start=start, end=end + timedelta(seconds=1), now=now)


def ms(lower_ms: float, fraction: float) -> str:
    """The log-linear point `fraction` into the bucket (lower, 1.25 x lower] ms, as shown."""
    return f"{lower_ms * 1.25 ** fraction:.2f} ms"


@pytest.fixture
def seeded(chdb_client, dashboard_db):
    now = floor_minute(datetime.now(timezone.utc))
    old, new = now - timedelta(hours=2), now - timedelta(hours=1)

    def v1(i, outcome):
        return dec(old, outcome, event_id=f"v1-{i}", policy_id=P, latency_seconds=0.001,
                   resource_kind="Pod", resource_name="api")

    def v2(i, outcome, team="payments", resource="api"):
        return dec(new, outcome, event_id=f"v2-{i}", policy_id=P, latency_seconds=0.01,
                   team=team, resource_kind="Pod", resource_name=resource)

    rows = [v1(i, "deny" if i < 2 else "allow") for i in range(10)]
    rows += [v2(i, "deny") for i in range(6)]
    rows += [v2(i, "deny", "search", "web") for i in range(6, 10)]
    rows += [v2(10, "error")] + [v2(i, "allow") for i in range(11, 20)]
    for row in rows:
        row["policy_version"] = "v1" if row["event_id"].startswith("v1") else "v2"
        row["enforcement"] = "enforce" if row["policy_version"] == "v1" else "audit"
    rows += [dec(now - timedelta(minutes=30), "allow", policy_id=Q) for _ in range(5)]
    insert_decisions(chdb_client, rows)
    for ids, verdict in ((["v1-0", "v2-0", "v2-1", "v2-2"], FP), (["v2-6"], TP)):
        label(chdb_client, ids, verdict, old, now, now - timedelta(minutes=10))
    jobs.run_incremental(chdb_client, now)
    return dashboard_db


def test_every_policy_with_its_rates_latency_and_fp_rate(seeded):
    at = open_page("tuning.py")

    table = dataframe_after(at, "Policies")
    assert table.to_dict("records") == [
        # 10 at 1 ms and 20 at 10 ms: rank 15 is (15 - 10) / 20 into (8, 10] ms
        {"policy": P, "title": "", "owner": "", "decisions": 30, "runbook": "",
         "catalog": "not in catalog", "deny rate": "40.0%", "warn rate": "0.0%",
         "error rate": "3.3%", "FP rate": "80.0%", "p50": ms(8, 0.25),
         "p95": ms(8, (28.5 - 10) / 20), "p99": ms(8, (29.7 - 10) / 20)},
        {"policy": Q, "title": "", "owner": "", "decisions": 5, "runbook": "",
         "catalog": "not in catalog", "deny rate": "0.0%", "warn rate": "0.0%",
         "error rate": "0.0%", "FP rate": "—", "p50": "—", "p95": "—", "p99": "—"},
    ]
    assert "2 of 2 policies here are not in the policy catalog" in " ".join(texts(at))


def test_the_policy_catalog_names_owns_and_links_each_policy_and_flags_the_rest(
        seeded, chdb_client):
    from catalog.load import load_text

    load_text(chdb_client, f"""policies:
  - id: {P}
    title: Containers run as non-root <b>now</b>
    owner: platform
    category: workload-hardening
    severity: high
    controls: [{{framework: SOC 2, control: CC6.1}}, {{framework: NIST SP 800-53, control: AC-6}}]
    runbook: https://runbooks.example/non-root
""")
    at = open_page("tuning.py")

    rows = dataframe_after(at, "Policies")[["policy", "title", "owner", "runbook", "catalog"]]
    assert rows.to_dict("records") == [
        {"policy": P, "title": "Containers run as non-root <b>now</b>", "owner": "platform",
         "runbook": "https://runbooks.example/non-root", "catalog": "yes"},
        {"policy": Q, "title": "", "owner": "", "runbook": "", "catalog": "not in catalog"}]
    shown = " ".join(texts(at))
    assert "1 of 2 policies here are not in the policy catalog" in shown
    # the chosen policy's entry, Markdown-escaped: its title shows as typed, not as HTML
    (entry,) = [e.value for e in at.caption if "owner platform" in e.value]
    assert r"\<b\>now\<\/b\>" in entry and r"SOC 2 CC6\.1\; NIST SP 800\-53 AC\-6" in entry


def test_a_policy_by_version_with_each_versions_fp_rate(seeded):
    at = open_page("tuning.py")

    assert at.selectbox(key="tuning_policy").value == P
    table = dataframe_after(at, "By version").drop(columns=["first_seen", "last_seen"])
    assert table.to_dict("records") == [
        {"version": "v1", "decisions": 10, "triaged": 1, "false_positives": 1,
         "deny rate": "20.0%", "warn rate": "0.0%", "error rate": "0.0%", "FP rate": "100.0%",
         "p50": ms(0.8, 0.5), "p95": ms(0.8, 0.95), "p99": ms(0.8, 0.99)},
        {"version": "v2", "decisions": 20, "triaged": 4, "false_positives": 3,
         "deny rate": "50.0%", "warn rate": "0.0%", "error rate": "5.0%", "FP rate": "75.0%",
         "p50": ms(8, 0.5), "p95": ms(8, 0.95), "p99": ms(8, 0.99)},
    ]


def test_two_versions_side_by_side_with_their_changes(seeded):
    at = open_page("tuning.py")

    assert at.selectbox(key="tuning_version_a").value == "v1"
    assert at.selectbox(key="tuning_version_b").value == "v2"
    compared = dataframe_after(at, "Compare two versions")
    p50_change = (8 * 1.25 ** 0.5 - 0.8 * 1.25 ** 0.5)
    assert compared.to_dict("records")[:6] == [
        {"measure": "decisions per day", "version v1": "10.0", "version v2": "20.0",
         "change": "+10.0"},
        {"measure": "deny rate", "version v1": "20.0%", "version v2": "50.0%",
         "change": "+30.0 pp"},
        {"measure": "warn rate", "version v1": "0.0%", "version v2": "0.0%",
         "change": "+0.0 pp"},
        {"measure": "error rate", "version v1": "0.0%", "version v2": "5.0%",
         "change": "+5.0 pp"},
        {"measure": "FP rate", "version v1": "100.0%", "version v2": "75.0%",
         "change": "-25.0 pp"},
        {"measure": "latency p50", "version v1": ms(0.8, 0.5), "version v2": ms(8, 0.5),
         "change": f"+{p50_change:.2f} ms"},
    ]
    (series,) = [f for f in figures(at) if "by version" in f["layout"]["title"]["text"]]
    assert sorted(t["name"] for t in series["data"]) == ["v1", "v2"]


def test_audit_mode_denies_are_what_enforcing_would_block(seeded):
    at = open_page("tuning.py")

    shown = metrics(at)
    assert {k: shown[k] for k in ("Would block per day", "Would block in range",
                                  "Known false positives")} == {
        "Would block per day": "10.0", "Would block in range": "10",
        "Known false positives": "3"}
    assert f"Enforcing {P} would block 10.0/day, 3 known FPs." in [t.value for t in at.text]
    table = dataframe_after(at, "Audit → enforce impact")
    assert table.to_dict("records") == [
        {"team": "payments", "resource_kind": "Pod", "resource_name": "api",
         "would_block": 6, "known_fps": 3},
        {"team": "search", "resource_kind": "Pod", "resource_name": "web",
         "would_block": 4, "known_fps": 0}]


def test_a_link_to_one_policy_opens_it_and_says_it_has_one_version(seeded):
    at = open_page("tuning.py", {"policy": Q})

    assert at.selectbox(key="tuning_policy").value == Q
    shown = texts(at)
    assert any("has one version in this range" in t for t in shown)
    assert any("is in audit, dryrun or warn mode" in t for t in shown)
    assert at.query_params["policy"] == Q


def test_choosing_the_other_policy_updates_the_url(seeded):
    at = open_page("tuning.py")

    at.selectbox(key="tuning_policy").select(Q)
    rerun(at)
    assert at.query_params["policy"] == Q
    assert dataframe_after(at, "By version")["decisions"].tolist() == [5]


def test_no_decisions_says_what_to_send(dashboard_db):
    at = open_page("tuning.py")

    assert at.info[0].value.startswith("No decisions in this range.")
    assert len(at.dataframe) == 0 and figures(at) == []


def test_versions_and_audit_impact_over_partial_hours_equal_the_raw_decisions(
        chdb_client, dashboard_db):
    """Over a range starting and ending inside an hour, the rollups' whole hours and the raw
    decisions at the edges add up to what the raw decisions in the range count: the ones just
    outside the range are left out, the ones in its partial hours are in."""
    from dashboards.queries import tuning

    hour = datetime(2026, 11, 2, 8, tzinfo=timezone.utc)
    start, end = hour + timedelta(minutes=20), hour + timedelta(hours=8, minutes=10)
    minutes = [5, 30, 59, 120, 300, 485, 489, 490, 495]  # 5 and 490, 495: outside the range
    rows = []
    for i, m in enumerate(minutes * 3):
        rows.append(dec(hour + timedelta(minutes=m, seconds=i), ["deny", "allow", "warn"][i % 3],
                        event_id=f"e{i}", policy_id=P, policy_version=["v1", "v2"][i % 2],
                        enforcement=["audit", "enforce", "dryrun", "warn"][i // 2 % 4],
                        latency_seconds=0.002 * (1 + i % 4), resource_kind="Pod",
                        resource_name=f"r{i % 2}"))
    insert_decisions(chdb_client, rows)
    denies = [r for r in rows if r["outcome"] == "deny"]
    fps = [denies[0], *[r for r in denies if start <= r["event_time"] < end][::2]]
    label(chdb_client, [r["event_id"] for r in fps], FP, hour, hour + timedelta(hours=9), end)
    inside = [r for r in rows if start <= r["event_time"] < end]
    fp_ids = {r["event_id"] for r in fps}

    versions, _, impact = tuning.chosen_policy(chdb_client, P, start, end, {})
    assert versions[["version", "decisions", "triaged", "false_positives"]].sort_values(
        "version").to_dict("records") == [
        {"version": v, "decisions": sum(r["policy_version"] == v for r in inside),
         "triaged": sum(r["policy_version"] == v and r["event_id"] in fp_ids for r in inside),
         "false_positives": sum(r["policy_version"] == v and r["event_id"] in fp_ids
                                for r in inside)} for v in ("v1", "v2")]
    assert versions["false_positives"].min() > 0
    assert versions["last_seen"].max() == max(r["event_time"] for r in inside).replace(
        tzinfo=None)  # shown as stored, UTC

    audit = [r for r in inside if r["enforcement"] != "enforce"]
    blocked = [r for r in audit if r["outcome"] == "deny"]
    assert (impact["not_enforced"], impact["would_block"], impact["known_fps"]) == (
        len(audit), len(blocked), sum(r["event_id"] in fp_ids for r in blocked))
    assert 0 < impact["known_fps"] < impact["would_block"] < impact["not_enforced"]
    assert {(r["resource_name"], r["would_block"], r["known_fps"])
            for r in impact["by_resource"].to_dict("records")} == {
        (name, sum(r["resource_name"] == name for r in blocked),
         sum(r["resource_name"] == name and r["event_id"] in fp_ids for r in blocked))
        for name in {r["resource_name"] for r in blocked}}


def test_a_runbook_that_is_not_http_is_never_offered_as_a_link(chdb_client, dashboard_db):
    """The loader refuses such a catalog; a row written into the table some other way still
    shows no javascript: link."""
    from catalog import store
    from catalog.model import Catalog, Policy
    from dashboards.queries.catalog import policies

    bad = Policy(id="k8s.x", title="x", owner="o", category="c", severity="low", controls=(),
                 runbook="javascript:alert(1)")
    store.insert_version(chdb_client, Catalog((bad,)), source="test", token="t")
    assert policies(chdb_client)["runbook"].tolist() == [""]
