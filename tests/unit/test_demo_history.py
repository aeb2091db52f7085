"""The demo's generated history (policyscope/demo/timeline.py): deterministic per seed, the
whole period covered and nothing after its end, every outcome / enforcement mode / several
versions, violations opened then remediated with times to remediate ordered by severity,
the fleet's own flaws still open at the end, Rego evaluated once per workload state -- and
rows built from it equal to the rows the OTLP path builds from the same records."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import datetime, timezone

import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

from collector.normalize import Normalizer
from collector.rows import RowBuilder, SourceContext
from policyscope.demo import CATALOG, PolicyEngine, timeline
from policyscope.demo import workloads as wl
from schemas.events import ENFORCEMENT_MODES, OUTCOMES

pytestmark = pytest.mark.unit

UNTIL = int(datetime(2026, 3, 4, 15, 30, 12, tzinfo=timezone.utc).timestamp() * 1000)
DAY = timeline.DAY_MS


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine()


@pytest.fixture(scope="module")
def month(engine) -> timeline.History:
    return timeline.generate(30, 7, until_ms=UNTIL, engine=engine)


def _decisions(history: timeline.History):
    for e in history.events:
        if e.kind == "policy.decision":
            yield e, history.contexts[e.context]


def _key(e: timeline.Event) -> tuple:
    return e.time_ms, e.kind, e.context, sorted(e.attrs.items())


def test_same_seed_same_history_other_seed_another(engine):
    one = timeline.generate(3, 7, until_ms=UNTIL, engine=engine)
    two = timeline.generate(3, 7, until_ms=UNTIL, engine=engine)
    other = timeline.generate(3, 8, until_ms=UNTIL, engine=engine)
    assert [_key(e) for e in one.events] == [_key(e) for e in two.events]
    assert one.contexts == two.contexts and one.open_violations == two.open_violations
    assert [_key(e) for e in one.events] != [_key(e) for e in other.events]


def test_the_period_is_covered_and_nothing_is_in_the_future(month):
    times = [e.time_ms for e in month.events]
    assert times == sorted(times)
    assert month.start_ms == UNTIL - 30 * DAY
    assert month.start_ms <= min(times) and max(times) <= UNTIL
    days_with = Counter((e.time_ms - month.start_ms) // DAY for e, _ in _decisions(month))
    assert sorted(days_with) == list(range(30))  # decisions on every one of the 30 days
    assert min(days_with.values()) > 500
    for kind in ("workload.inventory", "agent.heartbeat", "deploy.gate"):
        kind_days = {(e.time_ms - month.start_ms) // DAY for e in month.events if e.kind == kind}
        assert kind_days == set(range(30)), kind


def test_outcomes_enforcement_modes_and_versions_over_time(month):
    outcomes = Counter(e.attrs["policy.outcome"] for e, _ in _decisions(month))
    modes = Counter(e.attrs["policy.enforcement"] for e, _ in _decisions(month))
    assert set(outcomes) == set(OUTCOMES) and set(modes) == set(ENFORCEMENT_MODES)
    assert outcomes["allow"] > 0.9 * sum(outcomes.values())  # a healthy fleet, mostly
    versions: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for e, base in _decisions(month):
        versions[base["policy.id"]][e.attrs["policy.version"]].append(e.time_ms)
    for spec in CATALOG:
        seen = versions[spec.id]
        assert len(seen) >= 2, (spec.id, sorted(seen))
        newest = max(seen, key=lambda v: max(seen[v]))
        assert newest in (spec.version, spec.staging_version)  # what the live demo runs
        assert min(seen[spec.version]) > month.start_ms  # rolled out during the period
    # production enforced the resource-limits policy only from its current version on
    limits = [(e.attrs["policy.version"], e.attrs["policy.enforcement"])
              for e, base in _decisions(month) if base["policy.id"] == wl.LIMITS
              and base["deployment.environment.name"] == "production"
              and base["k8s.namespace.name"] != "data-sandbox"]
    assert {m for v, m in limits if v != "1.0.3"} == {"audit"}
    assert {m for v, m in limits if v == "1.0.3"} == {"enforce"}


def test_gates_latencies_and_errors(month):
    gates = Counter(e.attrs["deploy.gate.outcome"] for e in month.events
                    if e.kind == "deploy.gate")
    assert set(gates) == {"passed", "blocked", "overridden"}
    assert 0.01 < (gates["blocked"] + gates["overridden"]) / sum(gates.values()) < 0.1
    latencies = sorted(e.attrs["policy.evaluation.duration"] for e, _ in _decisions(month))
    assert 0.0003 < statistics.median(latencies) < 0.003  # about regopy's millisecond
    assert latencies[int(len(latencies) * 0.99)] < 0.1 < latencies[-1]  # rare slow ones
    errors = Counter(e.attrs["policy.reason"] for e, _ in _decisions(month)
                     if e.attrs["policy.outcome"] == "error")
    assert month.storm is not None and errors[timeline.STORM_REASON] > 0
    # the fleet's non-numeric max-replicas annotation: a real Rego error, for its last hours
    assert any(r.startswith("rego evaluation error in data.k8s.max_replicas") for r in errors)


def test_violations_open_then_remediate_with_ttr_by_severity(month):
    events: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    severity = {}
    for e in month.events:
        if e.kind == "policy.violation":
            vid = e.attrs["policy.violation.id"]
            events[vid][e.attrs["policy.violation.status"]].append(e.time_ms)
            severity[vid] = e.attrs["policy.severity"]
    ttr: dict[str, list[float]] = defaultdict(list)
    for vid, by_status in events.items():
        assert len(by_status["opened"]) == 1 and len(by_status["remediated"]) <= 1
        if by_status["remediated"]:
            hours = (by_status["remediated"][0] - by_status["opened"][0]) / 3_600_000
            assert hours > 0
            ttr[severity[vid]].append(hours)
    assert sum(map(len, ttr.values())) > 50
    medians = {s: statistics.median(v) for s, v in ttr.items()}
    assert medians["critical"] < medians["high"] < medians["medium"] < medians["low"], medians
    # still open at the end: the fleet's own flaws, which the live demo goes on with
    fleet = wl.generate_fleet(__import__("random").Random(7))
    flaws = {(w.id, f) for w in fleet for f in w.flaws}
    assert month.open_violations and set(month.open_violations) <= flaws
    assert len(month.open_violations) >= len(flaws) // 2
    for (workload, policy), vid in month.open_violations.items():
        assert events[vid]["opened"] and not events[vid]["remediated"]


def test_inventory_sboms_and_agents(month):
    fleet = wl.generate_fleet(__import__("random").Random(7))
    inventory = [e for e in month.events if e.kind == "workload.inventory"]
    assert {e.attrs["workload.id"] for e in inventory} == {w.id for w in fleet}
    images = {e.attrs["artifact.image"] for e in inventory}
    sboms = {e.attrs["artifact.image"] for e in month.events if e.kind == "sbom.generated"}
    assert sboms < images  # some images have none
    # the last rollout of each workload ran the image the live demo starts from
    last = {w.id: w.image for w in fleet}
    final = {month.contexts[e.context]["policy.resource.id"]: e.attrs["artifact.image"]
             for e, _ in _decisions(month)}
    assert final == last
    beats = defaultdict(list)
    for e in month.events:
        if e.kind == "agent.heartbeat":
            beats[e.attrs["agent.id"]].append((e.time_ms, e.attrs["agent.status"]))
    assert {f"opa-admission-{c}" for c in wl.CLUSTERS} < set(beats)
    stale = beats.pop(f"opa-audit-{timeline.STALE_AGENT_CLUSTER}")
    assert UNTIL - stale[-1][0] > 12 * 3_600_000 and stale[-1][1] == "degraded"
    assert any(status == "degraded" for agent in beats.values() for _, status in agent)
    assert all(UNTIL - agent[-1][0] <= 2 * timeline.HEARTBEAT_S * 1000
               for agent in beats.values())  # the others are fresh at the end
    assert sum(e.kind == "drift.detected" for e in month.events) > 100


def test_rego_is_evaluated_once_per_workload_state(month):
    decisions = sum(1 for _ in _decisions(month))
    assert 0 < month.evaluations < decisions / 20
    # and what it said is what the decisions say: one deny reason per flaw policy
    reasons = {e.attrs["policy.reason"] for e, base in _decisions(month)
               if base["policy.id"] == wl.NON_ROOT and e.attrs["policy.outcome"] == "deny"}
    assert reasons and all("runAsNonRoot" in r for r in reasons)


def _any_value(value) -> common_pb2.AnyValue:
    if isinstance(value, bool):
        return common_pb2.AnyValue(bool_value=value)
    if isinstance(value, int):
        return common_pb2.AnyValue(int_value=value)
    if isinstance(value, float):
        return common_pb2.AnyValue(double_value=value)
    return common_pb2.AnyValue(string_value=value)


def test_rows_are_the_rows_the_otlp_path_builds(engine):
    """The history's rows (shared attributes in a SourceContext) equal the rows of the same
    records sent as OTLP by the demo traffic (cluster attributes on the resource, the
    workload's on each record) and normalized by the collector."""
    history = timeline.generate(1, 7, until_ms=UNTIL, engine=engine)
    sample = [next(e for e in history.events if e.kind == kind) for kind in
              ("policy.decision", "deploy.gate", "policy.violation", "workload.inventory",
               "sbom.generated", "agent.heartbeat", "drift.detected")]
    sample.append(next(e for e in history.events if e.kind == "policy.decision"
                       and e.attrs["policy.outcome"] != "allow"))
    rows = RowBuilder()
    ours = rows.batch(now_ms=UNTIL)
    resource_keys = ("service.name", "k8s.cluster.name", "deployment.environment.name")
    resource_logs = []
    for e in sample:
        base = history.contexts[e.context]
        ours.add(SourceContext(base), e.kind, e.attrs, time_ms=e.time_ms, observed_ms=e.time_ms)
        resource = {"service.name": "opa-admission-controller",
                    **{k: base[k] for k in resource_keys[1:]}}
        record = {k: v for k, v in base.items() if k not in resource_keys[1:]} | e.attrs
        resource_logs.append(logs_pb2.ResourceLogs(
            resource=resource_pb2.Resource(attributes=[
                common_pb2.KeyValue(key=k, value=_any_value(v)) for k, v in resource.items()]),
            scope_logs=[logs_pb2.ScopeLogs(log_records=[logs_pb2.LogRecord(
                time_unix_nano=e.time_ms * 10**6, observed_time_unix_nano=e.time_ms * 10**6,
                event_name=e.kind, attributes=[common_pb2.KeyValue(key=k, value=_any_value(v))
                                               for k, v in record.items()])])]))
    built = ours.finish()
    otlp = Normalizer(rows=rows).logs(
        logs_service_pb2.ExportLogsServiceRequest(resource_logs=resource_logs))
    assert built.accepted == otlp.accepted == len(sample) and not built.rejected
    assert set(built.tables) == set(otlp.tables) == {"policy_decisions", "policy_events"}
    for name, table in built.tables.items():
        assert table.to_pylist() == otlp.tables[name].to_pylist(), name
