"""Alert-evaluation benchmark: 100 SLOs x 20 dimension values over 30 days (target <= 1 s).

What it measures (issue 4, "Measure"):

* a fresh embedded store (`chdb://<tmp>`) is migrated and filled *inside ClickHouse* with
  `INSERT ... SELECT FROM numbers(N)`: `--events` `policy.decision` rows evenly over `--days`
  days up to `--end` (20 teams of unequal traffic, 5 services each, 12 policies in 2 engines,
  3 clusters in 2 environments; allow 94% / deny 5% / warn 1% / error 0.02%; log-normal
  latency), plus `deploy.gate` events (passed 95% / blocked 3% / overridden 2%). Three teams
  burn in the last hour (errors, slow decisions, blocked deploys) so alerts fire. The
  materialized views fill the rollups; `OPTIMIZE ... FINAL` then merges them as background
  merges would. Generation is untimed.
* 100 SLOs (`slo.spec.parse`): 40 on M1, 30 on L_under, 30 on M6, objectives from 0.9 to
  0.9995, `where` filters on engine / environment / cluster / policy, every one `by: [team]`
  (so 20 dimension values each, 2,000 evaluations per point), SRE Workbook windows, budget
  policies;
* `slo.evaluate.evaluate(client, slos, [at])`: the first call (cold: ClickHouse's mark and
  uncompressed caches dropped before it) and `--warm-runs` more (warm, median), with the time
  split into ClickHouse reads (`metrics.sources.rollups._read`), window sums (Polars) and the rest;
* `slo.alerting.AlertEvaluator.run(at)` with a real `Dispatcher` (a no-op notifier) and a
  router: the first run (alerts fire: lifecycle rows, events, notifications, budget-policy
  rows written) and the steady state a minute later;
* a cProfile of one warm `evaluate`, whose hotspots go into the report.

Run: `cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.alerts --help`
Figures go to stdout as JSON and into the alerts section of `--output` (bench/RESULTS.md).
Hand-written notes inside that section, between `<!-- bench:alerts:notes:start -->` and
`<!-- bench:alerts:notes:end -->`, survive a re-run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import platform
import pstats
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil

from bench.machine import busy_seconds, cpu_model
from bench.sli import CLUSTERS, GATEKEEPER_POLICIES, POLICIES, at_ms, u  # the same fleet
from bench.results import write_section
from bench import machine

ROOT = Path(__file__).resolve().parent.parent
SECTION_START = "<!-- bench:alerts:start -->"
SECTION_END = "<!-- bench:alerts:end -->"
NOTES_START = "<!-- bench:alerts:notes:start -->"
NOTES_END = "<!-- bench:alerts:notes:end -->"
TARGET_S = 1.0
DATABASE = "bench"

TEAMS = [f"team-{i:02d}" for i in range(20)]
SERVICES_PER_TEAM = 5
GATES_PER_HOUR = 200
# The last hour's incidents: (team index, what burns).
ERROR_BURN_TEAM, SLOW_TEAM, BLOCK_TEAM = 3, 7, 11


def _array(values: list[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- data (inside ClickHouse) -------------------------------------------------------------------

def generate(client, events: int, start_ms: int, end_ms: int) -> dict[str, int]:
    """Decisions and deploy gates over [start, end); returns row counts."""
    span = end_ms - start_ms
    burn_from = end_ms - 3_600_000  # the last hour
    team = f"{_array(TEAMS)}[g_t + 1]"
    service = f"concat({team}, '-svc-', toString(g_s))"
    policy = f"{_array(POLICIES)}[g_p + 1]"
    cluster = f"{_array(CLUSTERS)}[g_c + 1]"
    common = f"""toUInt32(floor({len(TEAMS)} * pow({u(1)}, 1.3))) AS g_t,
        toUInt32(floor({SERVICES_PER_TEAM} * {u(2)})) AS g_s,
        toUInt32(floor({len(POLICIES)} * pow({u(3)}, 1.4))) AS g_p,
        multiIf({u(4)} < 0.45, 0, {u(4)} < 0.85, 1, 2) AS g_c"""
    client.command(f"""
        INSERT INTO policy_decisions (event_id, event_time, observed_time, engine, policy_id,
            policy_version, rule, enforcement, severity, team, service, environment, cluster,
            namespace, resource_kind, resource_name, outcome, latency_seconds)
        SELECT concat('d-', toString(number)), {at_ms('g_ms')}, {at_ms('g_ms + 20')},
            if(g_p < {GATEKEEPER_POLICIES}, 'gatekeeper', 'kyverno'), {policy}, 'v1', 'rule-0',
            'enforce', 'high', {team}, {service},
            if(g_c < 2, 'production', 'staging'), {cluster}, {team}, 'Pod',
            concat({service}, '-', toString(number % 97)),
            multiIf(g_burn AND g_t = {ERROR_BURN_TEAM} AND {u(5)} < 0.08, 'error',
                    {u(5)} < 0.9398, 'allow', {u(5)} < 0.9898, 'deny', {u(5)} < 0.9998,
                    'warn', 'error'),
            if({u(6)} > 0.99, NULL,
               exp(-5.5 + 0.8 * sqrt(-2 * log(greatest({u(7)}, 1e-12))) * cos(2 * pi() * {u(8)}))
               * if(g_p < {GATEKEEPER_POLICIES}, 1.0, 1.5)
               * if(g_burn AND g_t = {SLOW_TEAM}, 40.0, 1.0))
        FROM (SELECT number, {start_ms} + toInt64((number + {u(0)}) * {span} / {events}) AS g_ms,
                     {common}, g_ms >= {burn_from} AS g_burn
              FROM numbers({events}))""")
    gates = GATES_PER_HOUR * span // 3_600_000
    client.command(f"""
        INSERT INTO policy_events (event_id, event_time, observed_time, event_kind, engine,
            team, service, namespace, cluster, environment, policy_id, deploy_id, gate_outcome)
        SELECT concat('gate-', toString(number)), {at_ms('g_ms')}, {at_ms('g_ms + 5')},
            'deploy.gate', 'conftest', {team}, {service}, {team}, {cluster},
            if(g_c < 2, 'production', 'staging'), if(g_o = 'passed', '', {policy}),
            concat('deploy-', toString(number)), g_o
        FROM (SELECT number, {start_ms} + toInt64((number + {u(0)}) * {span} / {gates}) AS g_ms,
                     {common},
                     multiIf(g_ms >= {burn_from} AND g_t = {BLOCK_TEAM} AND {u(5)} < 0.6,
                             'blocked', {u(5)} < 0.95, 'passed', {u(5)} < 0.98, 'blocked',
                             'overridden') AS g_o
              FROM numbers({gates}))""")
    for table in ("decisions_1m", "decisions_1h", "gates_1m", "gates_1h"):
        client.command(f"OPTIMIZE TABLE {table} FINAL")
    return {t: int(client.command(f"SELECT count() FROM {t}")) for t in (
        "policy_decisions", "policy_events", "decisions_1m", "decisions_1h", "gates_1m",
        "gates_1h")}


# -- the SLOs -------------------------------------------------------------------------------------

DECISION_FILTERS = [{}, {"engine": "gatekeeper"}, {"engine": "kyverno"},
                    {"environment": "production"}, {"cluster": "prod-eu-1"},
                    {"policy": "k8s.require-non-root"}, {"environment": "staging"},
                    {"cluster": "prod-us-1"}, {"policy": "k8s.disallow-privileged"},
                    {"engine": "gatekeeper", "environment": "production"}]
GATE_FILTERS = [{}, {"environment": "production"}, {"cluster": "prod-eu-1"},
                {"environment": "staging"}, {"cluster": "prod-us-1"}]


def slo_document(name: str, sli: str, target: float, where: dict[str, str]) -> dict:
    numerator = "bad" if sli == "M6" else "good"
    source = {"sli": sli, **({"where": where} if where else {})}
    return {
        "apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": name},
        "spec": {
            "service": "policy-platform",
            "indicator": {"metadata": {"name": f"{name}-sli"}, "spec": {"ratioMetric": {
                "counter": True,
                numerator: {"metricSource": {"type": "policyscope", "spec": source}},
                "total": {"metricSource": {"type": "policyscope", "spec": {
                    **source, "by": ["team"],
                    "budgetPolicies": [{"consumed": 0.5, "action": "review-ticket"},
                                       {"consumed": 1.0, "action": "freeze-enforce-rollouts"}],
                }}}}}},
            "timeWindow": [{"duration": "30d", "isRolling": True}],
            "budgetingMethod": "Occurrences",
            "objectives": [{"target": target}],
        },
    }


def build_slos(count: int) -> list:
    """40% M1, 30% L_under, 30% M6 (of `count`), objectives and filters cycling."""
    from slo.spec import parse

    plan = ([("M1", [0.999, 0.995, 0.99, 0.9995], DECISION_FILTERS)] * (count * 4 // 10)
            + [("L_under", [0.99, 0.95, 0.999], DECISION_FILTERS)] * (count * 3 // 10))
    plan += [("M6", [0.9, 0.85, 0.95], GATE_FILTERS)] * (count - len(plan))
    slos, seen = [], {}
    for sli, objectives, filters in plan:
        i = seen[sli] = seen.get(sli, -1) + 1
        name = f"{sli.lower().replace('_', '-')}-{i:02d}"
        slos.append(parse(slo_document(name, sli, objectives[i % len(objectives)],
                                       filters[i % len(filters)])))
    return slos


# -- the baseline: the same evaluations from raw rows ---------------------------------------------

RAW_COLUMNS = {"team": "team", "service": "service", "policy": "policy_id", "engine": "engine",
               "environment": "environment", "cluster": "cluster"}


def raw_scan_evaluate(client, slos, at: datetime, latency_threshold: float = 0.1) -> list:
    """The baseline: every SLO's (bad, total) per team and window counted from the raw rows
    (one scan of `policy_decisions` or the gate events per SLO, `countIf` per window), then
    the same burn-rate arithmetic (`slo.evaluate._evaluation`). No rollups, no window engine:
    what a plain implementation over the event tables would do."""
    from metrics.windows import window_start
    from slo.evaluate import _evaluation, _period_window, _windows

    out = []
    for slo in slos:
        windows = _windows(slo)
        starts = {w: window_start(at, w) for w in windows}
        if slo.sli == "M6":
            table, scope = "policy_events", "event_kind = 'deploy.gate'"
            total, bad = "1", "gate_outcome = 'blocked'"
        elif slo.sli == "M1":
            table, scope, total, bad = "policy_decisions", "1", "1", "outcome = 'error'"
        else:  # L_under: of decisions with a latency, those over the threshold are bad
            table, scope = "policy_decisions", "1"
            total = "latency_seconds IS NOT NULL"
            bad = f"latency_seconds > {float(latency_threshold)!r}"
        params = {"at": at, **{f"s{i}": starts[w] for i, w in enumerate(windows)}}
        where = [scope, "event_time < {at:DateTime64(3, 'UTC')}",
                 f"event_time >= {{s{windows.index(min(windows, key=lambda w: starts[w]))}"
                 ":DateTime64(3, 'UTC')}"]
        for i, (dimension, value) in enumerate(sorted(slo.where.items())):
            where.append(f"{RAW_COLUMNS[dimension]} = {{w{i}:String}}")
            params[f"w{i}"] = value
        counts = ", ".join(
            f"countIf(({total}) AND event_time >= {{s{i}:DateTime64(3, 'UTC')}}), "
            f"countIf(({total}) AND ({bad}) AND event_time >= {{s{i}:DateTime64(3, 'UTC')}})"
            for i in range(len(windows)))
        by = [RAW_COLUMNS[d] for d in slo.by]
        parts = [f"'{d}=', {c}" for d, c in zip(slo.by, by)]
        keys = "concat(" + ", ',', ".join(parts) + ")" if by else "''"
        rows = client.query(f"SELECT {keys} AS key, {counts} FROM {table} WHERE "
                            f"{' AND '.join(where)} GROUP BY key", parameters=params).result_rows
        counted = {}
        for key, *numbers in rows:
            for i, w in enumerate(windows):
                counted[(at, key, w)] = (int(numbers[2 * i + 1]), int(numbers[2 * i]))
        keys_seen = sorted({k for (_, k, _) in counted}) or [""]
        out += [_evaluation(slo, at, key, _period_window(slo), counted) for key in keys_seen]
    return out


def same_evaluations(ours: list, theirs: list) -> bool:
    """Both give every (SLO, dimension values) the same good, total and firing pairs."""
    def facts(evaluations):
        return {(e.slo, tuple(sorted(e.dimensions.items()))): (
            e.good, e.total, tuple(p.firing for p in e.pairs)) for e in evaluations}
    return facts(ours) == facts(theirs)


# -- measuring ------------------------------------------------------------------------------------

class Stages:
    """Wall time spent inside chosen functions (patched module attributes) while active."""

    def __init__(self, targets: dict[str, tuple[object, str]]):
        self.targets = targets
        self.seconds = dict.fromkeys(targets, 0.0)
        self.calls = dict.fromkeys(targets, 0)

    @contextmanager
    def measuring(self):
        originals = {}
        for label, (module, attr) in self.targets.items():
            original = getattr(module, attr)
            originals[label] = original

            def wrapper(*a, _f=original, _label=label, **kw):
                t0 = time.perf_counter()
                try:
                    return _f(*a, **kw)
                finally:
                    self.seconds[_label] += time.perf_counter() - t0
                    self.calls[_label] += 1
            setattr(module, attr, wrapper)
        try:
            yield self
        finally:
            for label, (module, attr) in self.targets.items():
                setattr(module, attr, originals[label])


def drop_caches(client) -> list[str]:
    dropped = []
    for what in ("MARK CACHE", "UNCOMPRESSED CACHE", "QUERY CACHE"):
        try:
            client.command(f"SYSTEM DROP {what}")
            dropped.append(what.lower())
        except Exception:  # noqa: BLE001 - chDB builds differ in what they allow; say what ran
            pass
    return dropped


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


@contextmanager
def timed(record: dict):
    """Wall seconds, own CPU seconds and other processes' cores over the block."""
    wall0, busy0, own0 = time.perf_counter(), busy_seconds(), own_cpu()
    yield
    wall = time.perf_counter() - wall0
    own = own_cpu() - own0
    record.update(seconds=round(wall, 3), cpu_seconds=round(own, 3),
                  other_cores=round(max(0.0, busy_seconds() - busy0 - own) / wall, 2))


def wait_idle(limit: float, max_wait: float) -> float:
    """Wait (up to `max_wait` s) until the other processes use < `limit` cores; the last
    measured figure."""
    deadline = time.monotonic() + max_wait
    while True:
        busy0, own0 = busy_seconds(), own_cpu()
        time.sleep(2.0)
        other = max(0.0, busy_seconds() - busy0 - (own_cpu() - own0)) / 2.0
        if other < limit or time.monotonic() > deadline:
            return round(other, 2)


def hotspots(profile: cProfile.Profile, limit: int = 14) -> dict[str, list[dict]]:
    """Top functions by own time (any code) and by cumulative time (this repository's)."""
    stats = pstats.Stats(profile, stream=io.StringIO())
    rows = []
    for (path, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():
        where = path
        ours = path.startswith(str(ROOT)) and "site-packages" not in path
        if ours:
            where = os.path.relpath(path, ROOT)
        elif "site-packages/" in path:
            where = path.split("site-packages/", 1)[1]
        rows.append({"function": f"{where}:{line}({name})", "calls": calls,
                     "tottime": round(tottime, 3), "cumtime": round(cumtime, 3),
                     "ours": ours})
    by_own = sorted(rows, key=lambda r: -r["tottime"])[:limit]
    by_cum = sorted((r for r in rows if r["ours"]), key=lambda r: -r["cumtime"])[:limit]
    return {"own": by_own, "cumulative": by_cum}


def code_version() -> str:
    return machine.code_version("slo", "metrics", "schemas")


def run(args) -> dict:
    # slo.alerting logs one warning per budget-policy action; thousands fire on the first run
    logging.getLogger("slo.alerting").setLevel(logging.ERROR)
    import metrics.sources
    import slo.counts
    import slo.evaluate
    from core.storage import connect
    from schemas.migrations import migrate
    from slo.alerting import AlertEvaluator
    from slo.notify import Dispatcher
    from slo.routing import Route, Router

    version_at_start = code_version()
    end = datetime.fromisoformat(args.end).replace(tzinfo=timezone.utc)
    start = end - timedelta(days=args.days)
    tmp = Path(tempfile.mkdtemp(prefix="policyscope-bench-alerts-"))
    result: dict = {"events": args.events, "days": args.days, "end": end.isoformat()}
    try:
        client, _ = connect(f"chdb://{tmp / 'ch'}", DATABASE)
        migrate(client, DATABASE)
        log(f"generating {args.events:,} decisions over {args.days} days in {tmp}")
        gen: dict = {}
        with timed(gen):
            result["rows"] = generate(client, args.events, int(start.timestamp() * 1000),
                                      int(end.timestamp() * 1000))
        result["generate_seconds"] = gen["seconds"]
        log(f"generated in {gen['seconds']} s: {result['rows']}")

        slos = build_slos(args.slos)
        result["slos"] = {sli: sum(s.sli == sli for s in slos) for sli in ("M1", "L_under", "M6")}
        at = end
        # the evaluator's reads go through the window-totals reader (`windowed._read`, the
        # rollups' `_read` as imported there)
        stages = Stages({"ClickHouse reads (sources._read)": (metrics.sources.windowed, "_read"),
                         "window sums, Polars (window_sums.asof_window_sums)": (
                             metrics.sources.windowed, "asof_window_sums"),
                         "counts() total": (slo.evaluate, "counts")})
        result["other_cores_before"] = wait_idle(args.idle_below, args.wait_idle) \
            if args.wait_idle else None

        # cold: the first evaluation in this process, ClickHouse caches dropped
        result["caches_dropped"] = drop_caches(client)
        cold: dict = {}
        with stages.measuring(), timed(cold):
            evaluations = slo.evaluate.evaluate(client, slos, [at])
        cold["stages"] = {k: round(v, 3) for k, v in stages.seconds.items()}
        result["cold"] = cold
        result["evaluations"] = len(evaluations)
        result["dimension_values"] = {s.name: sum(e.slo == s.name for e in evaluations)
                                      for s in slos}
        result["firing_pairs"] = sum(p.firing for e in evaluations for p in e.pairs)
        log(f"cold evaluate: {cold['seconds']} s, {len(evaluations)} evaluations")

        warm = []
        for _ in range(args.warm_runs):
            stages.seconds = dict.fromkeys(stages.targets, 0.0)
            stages.calls = dict.fromkeys(stages.targets, 0)
            record: dict = {}
            with stages.measuring(), timed(record):
                slo.evaluate.evaluate(client, slos, [at])
            record["stages"] = {k: round(v, 3) for k, v in stages.seconds.items()}
            record["calls"] = dict(stages.calls)
            warm.append(record)
        result["warm"] = warm
        median = statistics.median(r["seconds"] for r in warm)
        result["warm_seconds_median"] = round(median, 3)
        log(f"warm evaluate: {[r['seconds'] for r in warm]} s")

        baseline = []
        for _ in range(max(1, min(args.warm_runs, 3))):
            record = {}
            with timed(record):
                raw = raw_scan_evaluate(client, slos, at)
            baseline.append(record)
        result["baseline"] = baseline
        result["baseline_seconds_median"] = round(statistics.median(
            r["seconds"] for r in baseline), 3)
        result["baseline_agrees"] = same_evaluations(evaluations, raw)
        result["speedup_warm"] = round(result["baseline_seconds_median"] / median, 1)
        log(f"raw-scan baseline: {[r['seconds'] for r in baseline]} s, agrees: "
            f"{result['baseline_agrees']}, evaluate is {result['speedup_warm']}x faster")

        class NullNotifier:
            name = "null"

            def __init__(self):
                self.sent = 0

            def send(self, notification) -> None:
                self.sent += 1

        notifier = NullNotifier()
        dispatcher = Dispatcher({"null": notifier})
        dispatcher.start()
        router = Router([Route(match={}, notifiers=["null"])])
        evaluator = AlertEvaluator(client, slos, dispatcher=dispatcher, router=router)
        runs = []
        for k in range(args.alert_runs):
            record = {}
            with timed(record):
                report = evaluator.run(at + timedelta(minutes=k))
            if k == args.alert_runs - 1:  # where a steady-state run's time goes (profiled again)
                profile = cProfile.Profile()
                profile.enable()
                evaluator.run(at + timedelta(minutes=k))
                profile.disable()
                result["alert_run_profile"] = hotspots(profile)
            record.update(transitions=len(report.transitions), notified=report.notified,
                          budget_actions=report.budget_actions)
            runs.append(record)
            log(f"AlertEvaluator.run(at + {k} min): {record}")
        dispatcher.flush(10)
        dispatcher.shutdown(5)
        result["alert_runs"] = runs
        result["notifications_delivered"] = notifier.sent
        result["alerts_stored"] = int(client.command("SELECT count() FROM alerts FINAL"))

        profile = cProfile.Profile()
        profile.enable()
        slo.evaluate.evaluate(client, slos, [at])
        profile.disable()
        result["profile"] = hotspots(profile)
        if args.profile_out:
            profile.dump_stats(args.profile_out)

        result["verdict_warm"] = "PASS" if median <= TARGET_S else "FAIL"
        result["verdict_cold"] = "PASS" if cold["seconds"] <= TARGET_S else "FAIL"
        steady = statistics.median(r["seconds"] for r in runs[1:]) if len(runs) > 1 \
            else runs[0]["seconds"]
        result["alert_run_steady_seconds"] = round(steady, 3)
        result["verdict_run"] = "PASS" if steady <= TARGET_S else "FAIL"
        client.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.update(
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        code_version=version_at_start if code_version() == version_at_start
        else f"{version_at_start} (slo/, metrics/ or schemas/ changed during the run)",
        cpu_count=os.cpu_count(), cpu_model=cpu_model(),
        memory_gib=round(psutil.virtual_memory().total / 2**30, 1),
        python=platform.python_version(), load_avg_1m=round(os.getloadavg()[0], 2),
        versions=_versions(),
        command="cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.alerts "
                + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    return result


def _versions() -> dict[str, str]:
    out = {}
    for name in ("chdb", "clickhouse_connect", "polars"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - a missing package is just not listed
            pass
    return out


# -- the report -----------------------------------------------------------------------------------

def markdown(r: dict, notes: str) -> str:
    def stage_line(stages: dict) -> str:
        return " · ".join(f"{k} {v:.2f} s" for k, v in stages.items())

    warm = ", ".join(f"{x['seconds']}" for x in r["warm"])
    runs = "\n".join(
        f"| `run(at + {i} min)`{' (alerts fire)' if i == 0 else ' (steady state)'} | "
        f"{x['seconds']} s | {x['transitions']} | {x['notified']} | {x['budget_actions']} | "
        f"{x['other_cores']} |" for i, x in enumerate(r["alert_runs"]))
    own = "\n".join(f"| `{p['function']}` | {p['calls']:,} | {p['tottime']} | {p['cumtime']} |"
                    for p in r["profile"]["own"][:10])
    cum = "\n".join(f"| `{p['function']}` | {p['calls']:,} | {p['tottime']} | {p['cumtime']} |"
                    for p in r["profile"]["cumulative"][:12])
    dims = sorted(set(r["dimension_values"].values()))
    rows = r["rows"]
    return f"""{SECTION_START}
## Alert evaluation: {sum(r['slos'].values())} SLOs x 20 dimension values over {r['days']} days (chDB)

Measured {r['date']} at commit `{r['code_version']}` on {r['cpu_count']} CPU(s) \
({r['cpu_model']}), {r['memory_gib']} GiB RAM, Python {r['python']}, chDB \
{r['versions'].get('chdb', '?')}, polars {r['versions'].get('polars', '?')}; 1-min load average at \
the end {r['load_avg_1m']} (a shared machine: see "other cores" below).

```
{r['command']}
```

Data, generated inside ClickHouse (`INSERT ... SELECT FROM numbers()`, untimed,
{r['generate_seconds']} s): {rows['policy_decisions']:,} decisions and {rows['policy_events']:,}
deploy gates over {r['days']} days up to {r['end']} (20 teams, 100 services, 12 policies in 2
engines, 3 clusters in 2 environments); in the last hour team-03 errors at 8 %, team-07 decides
40x slower and team-11 has 60 % of its deploys blocked. Rollups after `OPTIMIZE FINAL`:
decisions_1m {rows['decisions_1m']:,} rows, decisions_1h {rows['decisions_1h']:,}, gates_1m
{rows['gates_1m']:,}, gates_1h {rows['gates_1h']:,}.

SLOs: {r['slos']['M1']} on M1, {r['slos']['L_under']} on L_under, {r['slos']['M6']} on M6 \
(objectives 0.85 to 0.9995, `where` on engine / environment / cluster / policy or none, all \
`by: [team]`, default SRE Workbook windows, 2 budget policies each) -> {r['evaluations']:,} \
evaluations per point (dimension values per SLO: {', '.join(map(str, dims))}); \
{r['firing_pairs']} pairs firing at `at`.

| figure | value | target | verdict |
|---|---|---|---|
| `slo.evaluate.evaluate(client, slos, [at])`, warm (median of {len(r['warm'])}: {warm} s) | **{r['warm_seconds_median']} s** | <= {TARGET_S:g} s | **{r['verdict_warm']}** |
| the same, cold (first call; ClickHouse caches dropped: {', '.join(r['caches_dropped']) or 'none'}) | {r['cold']['seconds']} s | <= {TARGET_S:g} s | {r['verdict_cold']} |
| `AlertEvaluator.run(at)` steady state (evaluate + lifecycle store + silences + budget policies) | **{r['alert_run_steady_seconds']} s** | <= {TARGET_S:g} s | **{r['verdict_run']}** |
| baseline, same run: the same evaluations from a raw scan per SLO (`countIf` per window over `policy_decisions` / gate events, then the same burn-rate arithmetic; median of {len(r['baseline'])}) | {r['baseline_seconds_median']} s (same answers: {'yes' if r['baseline_agrees'] else 'NO'}) | | |
| **ratio: baseline / warm `evaluate`** | **{r['speedup_warm']}x** | | |

Where the time goes (wall seconds inside each function; `counts()` includes the other two):
cold: {stage_line(r['cold']['stages'])}; warm (first warm run): \
{stage_line(r['warm'][0]['stages'])}, over {r['warm'][0]['calls']["ClickHouse reads (sources._read)"]} \
ClickHouse queries. Other processes used {r['cold']['other_cores']} cores during the cold run and \
{r['warm'][0]['other_cores']} during the first warm one; this process {r['warm'][0]['cpu_seconds']} \
CPU-s for {r['warm'][0]['seconds']} s of wall time.

Full runs (`Dispatcher` with a no-op notifier, every alert routed to it):

| run | wall | transitions | notifications | budget actions | other cores |
|---|---|---|---|---|---|
{runs}

{r['alerts_stored']} alerts stored; {r['notifications_delivered']} notifications delivered.

cProfile of one warm `evaluate` (seconds; profiling overhead included). By own time:

| function | calls | own | cumulative |
|---|---|---|---|
{own}

This repository's functions by cumulative time:

| function | calls | own | cumulative |
|---|---|---|---|
{cum}

{notes}
{SECTION_END}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--slos", type=int, default=100)
    parser.add_argument("--end", default="2026-11-02T12:00:00",
                        help="the evaluation time (UTC), end of the generated data")
    parser.add_argument("--warm-runs", type=int, default=5)
    parser.add_argument("--alert-runs", type=int, default=3,
                        help="AlertEvaluator.run at end, end + 1 min, ...")
    parser.add_argument("--wait-idle", type=float, default=0.0,
                        help="wait up to this many seconds for the machine to quiet down")
    parser.add_argument("--idle-below", type=float, default=0.3,
                        help="'quiet': other processes use fewer cores than this")
    parser.add_argument("--profile-out", help="also write the cProfile stats here")
    parser.add_argument("--output", default=str(ROOT / "bench" / "RESULTS.md"))
    parser.add_argument("--no-write", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=2, default=str))
    if not args.no_write:
        write_section(Path(args.output), "alerts",
                      markdown(result, f"{NOTES_START}\n{NOTES_END}"))
        log(f"wrote the alerts section of {args.output}")
    return 0 if result["verdict_warm"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
