"""Dashboard page-render benchmark: every page of the dashboard rendered server side over a
store of 10M decisions, next to one plain aggregate scan of the raw decisions on the same store
in the same run (issue 12, "Measure").

The bar: pages read rollups and `sli_values`, not raw rows, so each page's p95 render time
must stay under the time of one raw scan,

    SELECT team, policy_id, outcome, count() FROM policy_decisions GROUP BY ALL

The figure is the ratio page p95 / raw scan (machines here differ 3x in speed from one day to
the next, so seconds alone say little); every page's ratio < 1 -> PASS, else FAIL.

What it does:

* the store: `bench.sli`'s generator (`bench.sli.generate`: `INSERT ... SELECT FROM numbers()`,
  the materialized views filling the rollups, then `OPTIMIZE FINAL`) writes `--decisions`
  decisions over `--days` days and the lifecycle events the other SLIs read; then every SLI is
  backfilled (`metrics.jobs.backfill`, hourly points), and the rest the pages read is added
  through the packages' own write paths: the example SLOs (examples/slo/) evaluated by the
  alert evaluator (`slo.alerting.AlertEvaluator`: alerts fire, budget policies act), a
  silence on a firing alert and an expired one (`slo.silences`), triage verdicts
  (`triage.verdicts`: false positives with reasons, a sticky rule, benign with expiry, a bulk
  true-positive label) and the collector's own counters (`collector_metrics`, a snapshot
  every 10 s over the span, as `collector.self_metrics` records them). All of it runs in a
  child process (`--build-into`), so the measuring process opens the store afresh;
* `--store DIR` keeps the store there and reuses it on the next run when it holds the same
  `--decisions` / `--days` and its data end at most `--max-gap` ago; otherwise (and without
  `--store`: a temporary directory) it is built;
* before the raw scans and before each page's loads, the store is brought up to the current
  minute as a running worker would (untimed): the decisions and agent heartbeats of the
  minutes since its data end, at the store's rate, collector snapshots, one incremental SLI
  run (`metrics.jobs.run_incremental`) and one alert evaluation -- pages compute their ranges
  from the wall clock, so a store that stopped minutes ago would show other sections;
* the raw scan: one warm-up, then `--raw-runs` runs before the pages, one after each measured
  page load (interleaved: the speed of this machine changes within minutes) and `--raw-runs`
  after the pages. A page's ratio is against the median of the scans between its own loads;
  the run's median of all scans is reported beside it;
* the measuring process is prepared as the dashboard server prepares itself before its first
  request (`dashboards.serve.prepare_process`: every page's code imported, the objects
  allocated so far frozen out of the garbage collector's passes), and the collector's full
  passes are held as the server holds them (`dashboards.serve.IdleCollector`): the server
  runs them while no page runs, the benchmark between a load and its raw scan, untimed (the
  server's thread would run them during a scan);
* each page (read from `dashboards/app.py`'s PAGES at run time, so pages added later are
  measured too) at each `--ranges` value: a fresh `streamlit.testing.v1.AppTest` per load,
  switched to the page, run to the end (all its queries, charts and elements, as the server
  renders them). Before every load the Streamlit data cache is cleared
  (`st.cache_data.clear()`), so each load really queries (a user's first view of a page
  within the loaders' TTL; reruns inside the TTL would cost less). The first load of each
  (page, range) is reported apart as *cold*: before it the resource cache (the storage
  client) and ClickHouse's mark / uncompressed / query caches are dropped too (the OS page
  cache is not); then `--loads` (20) measured loads give p50 / p95. Each load's time inside
  each query (`dashboards.loaders.load`, patched to time its calls) is recorded, so a page over
  the bar names the query that costs it;
* the demo's first start, when `policyscope.demo.history` exists: `ensure_history(days=30)` on
  an empty store in a process of its own, next to a baseline of the same run: the same event
  rows inserted again by `INSERT ... SELECT` into a second empty database plus the same
  backfill (`--skip-demo` skips it).

Run: `cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.pages --help`
Figures go to stdout as JSON and into the pages section of `--output` (bench/RESULTS.md);
hand-written notes between `<!-- bench:pages:notes:start -->` and `...:notes:end -->` survive.
"""

from __future__ import annotations

import argparse
import ast
import atexit
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil

from bench import machine
from bench.machine import busy_seconds, cpu_model
from bench.results import markers, write_section
from dashboards.filters import DEFAULT_RANGE, RANGES

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboards" / "app.py"
SLO_DIR = ROOT / "examples" / "slo"
SECTION = "pages"
SECTION_START, SECTION_END, NOTES_START, NOTES_END = markers(SECTION)
DATABASE = "bench"
RAW_SCAN = "SELECT team, policy_id, outcome, count() FROM policy_decisions GROUP BY ALL"
META = "store.json"
STORE_FORMAT = 2  # bump when what a built store holds changes: older stores are rebuilt
COLLECTOR_INTERVAL_MS = 10_000  # collector.self_metrics_interval's default
ALERT_RUNS = 3  # evaluator runs a minute apart at the end of the data (past pending)
ANALYST = ("bench-analyst", "analyst")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def parse_count(text: str) -> int:
    return int(text.replace("_", "").replace(",", ""))


def floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc)


# -- the pages --------------------------------------------------------------------------------

def app_pages(app: Path = APP) -> dict[str, tuple[str, str]]:
    """page id -> (title, module under pages/), from the PAGES literal of the app script
    (parsed, not imported: importing it would run the app)."""
    for node in ast.parse(app.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "PAGES" for t in targets):
            value = ast.literal_eval(node.value)
            return {pid: (entry[0], entry[-1]) for pid, entry in value.items()}
    raise SystemExit(f"no PAGES literal in {app}")


def page_params(client, page: str, end: datetime) -> dict[str, str]:
    """URL parameters that make a page render its sections rather than its prompts: the
    Debug page's searches get values that exist (a recent deny's resource, an image with an
    SBOM). Other pages open as a user opens them (defaults)."""
    if page != "debug":
        return {}
    bounds = "event_time >= {s:DateTime64(3, 'UTC')} AND event_time < {e:DateTime64(3, 'UTC')}"
    resource = client.query(
        f"SELECT resource_name FROM policy_decisions WHERE {bounds} AND outcome = 'deny' "
        "ORDER BY event_time DESC LIMIT 1",
        parameters={"s": end - timedelta(hours=1), "e": end}).result_rows
    image = client.query(
        f"SELECT image FROM policy_events WHERE event_kind = 'sbom.generated' AND {bounds} "
        "ORDER BY event_time DESC LIMIT 1",
        parameters={"s": end - timedelta(days=7), "e": end}).result_rows
    params = {"field": "resource", "latency_by": "policy"}
    if resource:
        params.update(q=resource[0][0], resource=resource[0][0])
    if image:
        params["image"] = image[0][0]
    return params


# -- building the store (in a child process) --------------------------------------------------

def collector_snapshots(client, start_ms: int, end_ms: int, started_ms: int,
                        decisions_per_ms: float) -> int:
    """`collector_metrics` rows of one collector run (started at `started_ms`) for every
    snapshot time in [start_ms, end_ms) on the 10 s grid, as `collector.self_metrics` records
    them: cumulative counters (accepted by receiver, rejects by reason, writer rows, insert
    latency) and gauges (spool backlog, memory, uptime). Returns the rows written."""
    first = -(-(start_ms - started_ms) // COLLECTOR_INTERVAL_MS)
    count = (end_ms - started_ms - 1) // COLLECTOR_INTERVAL_MS + 1 - first
    if count <= 0:
        return 0
    r = decisions_per_ms
    # metric, kind, source, label, value as a function of the run's elapsed ms `g_e`
    series = [
        ("uptime_seconds", "gauge", "", "", "g_e / 1000"),
        ("records_accepted", "counter", "grpc_logs", "", f"floor(g_e * {r * 0.7!r})"),
        ("records_accepted", "counter", "http_logs", "", f"floor(g_e * {r * 0.3!r})"),
        ("records_ignored", "counter", "http_logs", "", f"floor(g_e * {r * 0.001!r})"),
        ("records_rejected", "counter", "http_logs", "missing_event_name",
         f"floor(g_e * {r * 0.0005!r})"),
        ("records_rejected", "counter", "grpc_logs", "bad_attribute_type",
         f"floor(g_e * {r * 0.0002!r})"),
        ("requests_refused", "counter", "", "requests", "floor(g_e / 3600000)"),
        ("requests_refused", "counter", "", "bytes", "0"),
        ("requests_refused", "counter", "", "memory", "0"),
        ("normalizer_restarts", "counter", "", "", "0"),
        ("writer_inserted_rows", "counter", "", "", f"floor(g_e * {r!r})"),
        ("writer_duplicate_rows", "counter", "", "", f"floor(g_e * {r * 0.0001!r})"),
        ("writer_failed_inserts", "counter", "", "", "0"),
        ("writer_dead_letter_rows", "counter", "", "", "0"),
        ("insert_seconds_count", "counter", "", "", "floor(g_e / 2000)"),
        ("insert_seconds_sum", "counter", "", "", "g_e / 2000 * 0.035"),
        ("insert_seconds_max", "gauge", "", "", "0.02 + (intHash64(g_n) % 100) / 1000"),
        ("spool_backlog_bytes", "gauge", "", "", "(intHash64(g_n + 1) % 200) * 625"),
        ("spool_backlog_rows", "gauge", "", "", "intHash64(g_n + 1) % 200"),
        ("memory_bytes", "gauge", "", "", "6.5e8 + (intHash64(g_n + 2) % 1000) * 1e5"),
    ]
    arms = " UNION ALL ".join(
        f"SELECT g_n, '{m}' AS metric, '{k}' AS kind, '{s}' AS source, '{lab}' AS label, "
        f"toFloat64({v}) AS value FROM base" for m, k, s, lab, v in series)
    before = int(client.command("SELECT count() FROM collector_metrics"))
    client.command(f"""
        INSERT INTO collector_metrics (at, instance, hostname, started_at, seq, metric, kind,
                                       source, label, value)
        WITH base AS (SELECT number + {first} AS g_n, g_n * {COLLECTOR_INTERVAL_MS} AS g_e
                      FROM numbers({count}))
        SELECT fromUnixTimestamp64Milli(toInt64({started_ms} + g_n * {COLLECTOR_INTERVAL_MS}),
                                        'UTC'),
               'collector-bench-0', 'bench-host',
               fromUnixTimestamp64Milli(toInt64({started_ms}), 'UTC'),
               toUInt32(g_n + 1), metric, kind, source, label, value
        FROM ({arms})""")
    return int(client.command("SELECT count() FROM collector_metrics")) - before


ROLLOUT_VERSION = "v2.0.0"
ROLLOUT_HOURS = 12


def rollout_version(client, end: datetime) -> dict:
    """A rollout, so the tuning page has two versions to compare: the busiest policy's
    decisions of the last ROLLOUT_HOURS carry a new version (the generator gives each policy
    one; the rollups keep no version, so nothing else changes)."""
    (policy,), = client.query("SELECT policy_id FROM policy_decisions GROUP BY policy_id "
                              "ORDER BY count() DESC, policy_id LIMIT 1").result_rows
    since = end - timedelta(hours=ROLLOUT_HOURS)
    client.command("ALTER TABLE policy_decisions UPDATE policy_version = {v:String} WHERE "
                   "policy_id = {p:String} AND event_time >= {s:DateTime64(3, 'UTC')}",
                   parameters={"v": ROLLOUT_VERSION, "p": policy, "s": since},
                   settings={"mutations_sync": 2})
    rows = int(client.command(
        "SELECT count() FROM policy_decisions WHERE policy_version = {v:String}",
        parameters={"v": ROLLOUT_VERSION}))
    return {"policy": policy, "version": ROLLOUT_VERSION, "hours": ROLLOUT_HOURS,
            "decisions": rows}


def triage_labels(client, end: datetime) -> dict[str, int]:
    """Verdicts as analysts give them, through `triage.verdicts` (history + latest view):
    a page of the last day's queue labelled group by group (false positives with a reason,
    one made sticky, benign with an expiry, true positives), a sticky-rule pass, and one bulk
    true-positive label of the busiest policy's subjects of the last 3 days."""
    from triage import sticky, verdicts
    from triage.access import Actor
    from triage.model import Filters, Verdict
    from triage.queue import queue

    actor = Actor(*ANALYST)
    start = end - timedelta(days=1)
    page = queue(client, start, end, limit=40, now=end)
    counts = {"false_positive": 0, "true_positive": 0, "benign": 0, "sticky_rules": 0}
    for i, group in enumerate(page.groups):
        if i % 4 == 0:
            verdict = Verdict("false_positive", "the workload is allowed to run as root here")
        elif i % 4 == 1:
            verdict = Verdict("benign", "accepted risk until the migration",
                              expires_at=end + timedelta(days=14))
        else:
            verdict = Verdict("true_positive")
        result = verdicts.label_group(client, actor, group.fingerprint, verdict, start=start,
                                      end=end, sticky_rule=i in (0, 4), now=end)
        counts[verdict.kind.value] += result.labelled
        counts["sticky_rules"] += bool(result.rule_id)
    counts["propagated"] = sticky.apply_rules(client, end - timedelta(days=7), end,
                                              now=end).labelled
    busiest = client.query("SELECT policy_id FROM policy_decisions WHERE outcome IN "
                           "('deny', 'warn') GROUP BY policy_id ORDER BY count() DESC "
                           "LIMIT 1").result_rows
    if busiest:
        counts["bulk_true_positive"] = verdicts.label_matching(
            client, actor, Verdict("true_positive"), start=end - timedelta(days=3), end=end,
            filters=Filters(policy=busiest[0][0]), now=end).labelled
    return counts


def evaluator(client):
    """The alert evaluator over the example SLOs, as the worker runs it every minute (no
    notifier: nothing is sent; the rows are written)."""
    from metrics.config import BatchConfig
    from slo import spec
    from slo.alerting import AlertEvaluator

    return AlertEvaluator(client, spec.load_dir(SLO_DIR),
                          latency_threshold=BatchConfig().latency_threshold)


def alerts_and_silences(client, end: datetime) -> dict[str, int]:
    """Evaluate the example SLOs a few minutes up to `end` (alerts fire), silence one firing
    alert (by its SLO and dimension values, a day long) and keep one silence expired, then
    evaluate once more so the silenced alert is marked."""
    from slo import silences

    evaluate = evaluator(client)
    fired = 0
    for k in range(ALERT_RUNS, 0, -1):
        fired += sum(1 for *_, kind in evaluate.run(end - timedelta(minutes=k)).transitions
                     if kind == "firing")
    firing = client.query("SELECT slo, severity, dimensions FROM alerts FINAL "
                          "WHERE state = 'firing' ORDER BY slo, severity LIMIT 1").result_rows
    made = 0
    if firing:
        slo, severity, dimensions = firing[0]
        silences.add(client, {"slo": slo, "severity": severity, **dict(dimensions)},
                     end - timedelta(minutes=30), end + timedelta(days=1),
                     "known: rollout in progress", ANALYST[0])
        made += 1
    old = silences.add(client, {"slo": "admission-eval-success"}, end - timedelta(days=3),
                       end + timedelta(days=1), "maintenance window", ANALYST[0])
    silences.expire(client, old.silence_id, end - timedelta(days=2))
    evaluate.run(end)
    return {"firing_transitions": fired, "silences": made + 1,
            "alerts": int(client.command("SELECT count() FROM alerts FINAL")),
            "alerts_firing": int(client.command(
                "SELECT count() FROM alerts FINAL WHERE state = 'firing'"))}


def standings_history(client, end: datetime, days: int) -> dict:
    """The SLO standings the alert evaluator would have stored over the store's history (it
    runs every minute; stored here hourly, what the SLO page's burndown and the Executive
    page's week-ago compliance need): `slo.report.backfill_standings`."""
    from metrics.config import BatchConfig
    from slo import spec
    from slo.report import backfill_standings

    t = time.perf_counter()
    points = [end - timedelta(hours=h) for h in range(days * 24, 0, -1)]
    rows = backfill_standings(client, spec.load_dir(SLO_DIR), points,
                              latency_threshold=BatchConfig().latency_threshold,
                              computed_at=end)
    return {"points": len(points), "rows": rows, "seconds": round(time.perf_counter() - t, 1)}


def build(workdir: Path, decisions: int, days: int, end: datetime, tag: str) -> dict:
    """Make the store in `workdir` (see the module docstring); returns its metadata, also
    written to `workdir`/store.json."""
    from bench import sli
    from core.storage import connect
    from metrics import jobs

    span = timedelta(days=days)
    start = end - span
    t0 = time.perf_counter()
    made = sli.generate(workdir, decisions, end, span, tag)
    client, _ = connect(f"chdb://{workdir / 'ch'}", DATABASE)
    rollout = rollout_version(client, end)
    log(f"  rollout: {rollout}")
    log(f"backfill of every SLI, hourly points over {days} days ...")
    t = time.perf_counter()

    def progress(done: int, total: int) -> None:
        log(f"  backfill {done}/{total} steps  {time.perf_counter() - t:6.1f}s")

    report = jobs.backfill(client, span, until=end, progress=progress)
    backfill_s = time.perf_counter() - t
    log(f"  {report.rows:,} SLI values in {backfill_s:.1f}s")
    t = time.perf_counter()
    snapshots = collector_snapshots(client, to_ms(start), to_ms(end), to_ms(start),
                                    decisions / (span / timedelta(milliseconds=1)))
    log(f"  {snapshots:,} collector_metrics rows in {time.perf_counter() - t:.1f}s")
    t = time.perf_counter()
    alerting = alerts_and_silences(client, end)
    log(f"  alerts {alerting} in {time.perf_counter() - t:.1f}s")
    standings = standings_history(client, end, days)
    log(f"  SLO standings over the history: {standings}")
    t = time.perf_counter()
    triage = triage_labels(client, end)
    log(f"  triage verdicts {triage} in {time.perf_counter() - t:.1f}s")
    rows = {r[0]: int(r[1]) for r in client.query(
        "SELECT table, sum(rows) FROM system.parts WHERE database = currentDatabase() AND "
        "active GROUP BY table").result_rows}
    client.close()
    meta = {"format": STORE_FORMAT, "decisions": decisions, "days": days,
            "start_ms": to_ms(start), "through_ms": to_ms(end), "tag": tag,
            "topped_up_decisions": 0,
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "build": {"seconds": round(time.perf_counter() - t0, 1),
                      "generate_decisions_s": round(made["decisions_s"], 1),
                      "generate_lifecycle_s": round(made["life_s"], 1),
                      "optimize_s": round(made["optimize_s"], 1),
                      "backfill_s": round(backfill_s, 1), "sli_values": report.rows,
                      "lifecycle": made["counts"], "rollout": rollout,
                      "collector_metrics": snapshots,
                      "alerting": alerting, "standings": standings, "triage": triage,
                      "rows": rows}}
    (workdir / META).write_text(json.dumps(meta, indent=2))
    return meta


def build_in_child(workdir: Path, decisions: int, days: int, end: datetime, tag: str) -> dict:
    """`build` in a process of its own: the bulk load's memory leaves with it, and the
    measuring process opens the stored data afresh (as `bench.sli` does, for the same
    reason)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.pages", "--build-into", str(workdir), "--decisions",
         str(decisions), "--days", str(days), "--end", end.isoformat(), "--tag", tag],
        stdout=subprocess.PIPE, text=True, check=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(done.stdout)


def open_store(args) -> tuple[Path, dict, bool]:
    """(the store directory, its metadata, whether it was reused)."""
    now = floor_minute(datetime.now(timezone.utc))
    workdir = args.store or Path(tempfile.mkdtemp(prefix="policyscope-bench-pages-"))
    meta_file = workdir / META
    if args.store and meta_file.exists():
        meta = json.loads(meta_file.read_text())
        gap = now - from_ms(meta["through_ms"])
        same = (meta.get("format"), meta.get("decisions"), meta.get("days")) == (
            STORE_FORMAT, args.decisions, args.days)
        if same and gap <= args.max_gap:
            log(f"reusing the store in {workdir} (built {meta['built_at']}, data end "
                f"{gap.total_seconds() / 60:.0f} min ago)")
            if "standings" not in meta["build"]:  # built before they were part of a store
                from core.storage import connect

                client, _ = connect(f"chdb://{workdir / 'ch'}", DATABASE)
                meta["build"]["standings"] = standings_history(
                    client, from_ms(meta["through_ms"]), meta["days"])
                client.close()
                log(f"  SLO standings over the history: {meta['build']['standings']}")
                meta_file.write_text(json.dumps(meta, indent=2))
            return workdir, meta, True
        log(f"the store in {workdir} does not fit (format/decisions/days {meta.get('format')}/"
            f"{meta.get('decisions')}/{meta.get('days')}, data end {gap} ago): rebuilding")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid():x}{time.time_ns():x}"
    log(f"building a store of {args.decisions:,} decisions over {args.days} days in {workdir} "
        "(a child process) ...")
    return workdir, build_in_child(workdir, args.decisions, args.days, now, tag), False


class Worker:
    """Brings the store up to the current minute as the running worker would (untimed):
    the minutes' decisions and heartbeats since the data end (at the store's rate), collector
    snapshots, one incremental SLI run, one alert evaluation."""

    def __init__(self, client, workdir: Path, meta: dict):
        self.client, self.workdir, self.meta = client, workdir, meta
        self.memo: dict = {}
        self.evaluator = evaluator(client)
        span_minutes = meta["days"] * 1440
        self.per_minute = meta["decisions"] / span_minutes

    def catch_up(self) -> int:
        from bench.sli import Generator
        from metrics import jobs

        meta = self.meta
        now = floor_minute(datetime.now(timezone.utc))
        through = meta["through_ms"]
        minutes = (to_ms(now) - through) // 60_000
        if minutes <= 0:
            return 0
        # ids from a tag of their own and first=0: `Generator.decisions(first=k)` offsets
        # the row number its times are computed from too (the alias shadows `number`), which
        # would put these rows k rows' worth of time in the future
        meta["catch_ups"] = meta.get("catch_ups", 0) + 1
        gen = Generator(self.client, meta["start_ms"], to_ms(now),
                        f"{meta['tag']}c{meta['catch_ups']}")
        n = max(1, round(self.per_minute * minutes))
        added = gen.decisions(n, start_ms=through, span_ms=to_ms(now) - through)
        gen.heartbeats((through - meta["start_ms"]) // 60_000, minutes)
        collector_snapshots(self.client, through, to_ms(now), meta["start_ms"],
                            meta["decisions"] / (meta["days"] * 86_400_000))
        jobs.run_incremental(self.client, now, memo=self.memo)
        self.evaluator.run(now)
        meta.update(through_ms=to_ms(now),
                    topped_up_decisions=meta["topped_up_decisions"] + added)
        (self.workdir / META).write_text(json.dumps(meta, indent=2))
        return added


# -- measuring --------------------------------------------------------------------------------

def drop_caches(client) -> list[str]:
    from bench.alerts import drop_caches as drop

    return drop(client)


def raw_scan(client, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        client.query(RAW_SCAN).result_rows
        out.append(time.perf_counter() - t)
    return out


class QueryTimes:
    """While active: the wall time of each query a page load ran (`module.function`, summed
    over its calls; reads a page runs at once overlap) and the wall time the page spent
    waiting for reads (`WAITED`: inside `loaders.load` and for each result of reads run at
    once, `loaders.Reads` -- what `load_all` and `reading` hand over --, cache hashing and
    pickling included). The attributes are patched and restored."""

    WAITED = "(waiting for reads)"

    def __init__(self):
        self.current: dict[str, float] = {}
        self._lock = threading.Lock()

    def _add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.current[name] = self.current.get(name, 0.0) + seconds

    @contextmanager
    def active(self):
        import dashboards.loaders as loaders

        originals = {name: getattr(loaders, name) for name in ("_load", "load")}
        result = loaders.Reads.__getitem__

        def per_query(key, query, args, kwargs):
            t = time.perf_counter()
            try:
                return originals["_load"](key, query, args, kwargs)
            finally:
                self._add(f"{query.__module__.rsplit('.', 1)[-1]}.{query.__qualname__}",
                          time.perf_counter() - t)

        def waited(function):
            def timed(*args, **kwargs):
                t = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    self._add(self.WAITED, time.perf_counter() - t)
            return timed

        loaders._load = per_query
        loaders.load = waited(originals["load"])
        loaders.Reads.__getitem__ = waited(result)
        try:
            yield self
        finally:
            for name, function in originals.items():
                setattr(loaders, name, function)
            loaders.Reads.__getitem__ = result

    def take(self) -> dict[str, float]:
        with self._lock:
            taken, self.current = self.current, {}
        return taken


def p95(values: list[float]) -> float:
    """The 95th percentile (linear interpolation between closest ranks, as numpy's default)."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * 0.95
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


_COMPONENTS = None


def fresh_apptest(script: Path, timeout: float):
    """A fresh AppTest of `script` holding the process's one component registry and script
    cache, as the sessions of one server share them.

    A Streamlit server scans the installed packages for custom components once, when it
    starts (`Runtime.__init__` -> `discover_and_register_components`); AppTest does it again
    for every new instance, reading the metadata of every installed distribution: 0.15-0.45 s
    on this machine, more than a whole page's queries, and no part of rendering a page. So the
    registry is discovered once (untimed, as at server start) and handed to each instance."""
    global _COMPONENTS
    from streamlit.components.v2.component_manager import BidiComponentManager
    from streamlit.testing.v1 import AppTest, app_test, local_script_runner

    if _COMPONENTS is None:
        _COMPONENTS = BidiComponentManager()
        _COMPONENTS.discover_and_register_components(start_file_watching=False)
        # A server's Runtime keeps one ScriptCache (compiled page scripts) for all sessions;
        # AppTest makes a new one per run, so every load would parse and compile app.py and
        # the page again. One is shared instead (a page edited during a run is not
        # recompiled: as on a server without its file watcher).
        shared = app_test.ScriptCache()
        app_test.ScriptCache = local_script_runner.ScriptCache = lambda: shared
    at = AppTest.from_file(str(script), default_timeout=timeout)
    at._bidi_component_manager = _COMPONENTS  # noqa: SLF001 - see the docstring
    return at


def one_load(module: str, params: dict[str, str], timeout: float):
    """A fresh AppTest of the app at `pages/<module>` with URL parameters, run once: (seconds,
    the AppTest after the run)."""
    at = fresh_apptest(APP, timeout)
    at.query_params.update(params)
    at.switch_page(f"pages/{module}")
    t = time.perf_counter()
    at.run()
    return time.perf_counter() - t, at


FLOOR_SCRIPT = "import streamlit as st\n\nst.title('floor')\nst.metric('n', 1)\n"


def apptest_floor(loads: int, timeout: float, workdir: Path) -> dict:
    """What AppTest and Streamlit cost on their own: a two-element script, run as the pages
    are (fresh AppTest, data cache cleared), `loads` times after a first run."""
    import streamlit as st

    script = workdir / "floor_page.py"
    script.write_text(FLOOR_SCRIPT)
    seconds = []
    for k in range(loads + 1):
        st.cache_data.clear()
        at = fresh_apptest(script, timeout)
        t = time.perf_counter()
        at.run()
        if k:
            seconds.append(time.perf_counter() - t)
    return {"p50_s": round(statistics.median(seconds), 4), "p95_s": round(p95(seconds), 4)}


def rendered(at) -> dict:
    """What a load showed: counts of its elements, exceptions, and the info / warning /
    error texts (empty states), cut short."""
    def count(kind: str) -> int:
        try:
            return len(at.get(kind))
        except Exception:  # noqa: BLE001 - an element kind this Streamlit lacks: none shown
            return 0
    return {"metrics": len(at.metric), "tables": len(at.dataframe),
            "charts": count("plotly_chart"), "subheaders": len(at.subheader),
            "exceptions": [str(e.value)[:300] for e in at.exception],
            "notices": [f"{kind}: {str(e.value)[:110]}" for kind in ("error", "warning", "info")
                        for e in getattr(at, kind)]}


def measure_page(page: str, title: str, module: str, params: dict[str, str], loads: int,
                 timeout: float, client, times: QueryTimes, progress, interleave: bool,
                 between_loads=lambda: None) -> dict:
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    dropped = drop_caches(client)
    times.take()
    cold_s, at = one_load(module, params, timeout)
    between_loads()
    cold_queries = times.take()
    cold_queries.pop(times.WAITED, None)
    seconds, per_query, scans, waited = [], [], [], []
    busy0, own0, load_s = busy_seconds(), own_cpu(), 0.0
    for k in range(loads):
        st.cache_data.clear()
        s, at = one_load(module, params, timeout)
        between_loads()
        seconds.append(s)
        taken = times.take()
        waited.append(taken.pop(times.WAITED, 0.0))
        per_query.append(taken)
        progress(k + 1, loads, s)
        load_s += s
        if interleave:  # the baseline of the same minutes, load by load
            scans += raw_scan(client, 1)
    spent = load_s + sum(scans)
    other = max(0.0, busy_seconds() - busy0 - (own_cpu() - own0)) / spent if spent else 0.0
    names = sorted({n for q in per_query for n in q})
    queries = sorted(({"query": n, "median_s": round(statistics.median(
        q.get(n, 0.0) for q in per_query), 4), "max_s": round(max(
            q.get(n, 0.0) for q in per_query), 4)} for n in names),
        key=lambda q: -q["median_s"])
    return {"page": page, "title": title, "module": module, "params": params,
            "cold_s": round(cold_s, 4), "cold_queries": {k: round(v, 4) for k, v in sorted(
                cold_queries.items(), key=lambda kv: -kv[1])},
            "caches_dropped_before_cold": dropped, "seconds": [round(s, 4) for s in seconds],
            "p50_s": round(statistics.median(seconds), 4), "p95_s": round(p95(seconds), 4),
            "max_s": round(max(seconds), 4), "queries": queries,
            "in_queries_median_s": round(statistics.median(waited), 4),
            "other_cores": round(other, 2), "rendered": rendered(at),
            "raw_scans_s": [round(x, 4) for x in scans],
            "raw_scan_median_s": round(statistics.median(scans), 4) if scans else None}


def progress_line(label: str):
    tty = sys.stderr.isatty()

    def show(done: int, total: int, seconds: float) -> None:
        if tty:
            bar = "#" * (20 * done // total)
            print(f"\r[bench]   {label} [{bar:<20}] {done}/{total} last {seconds:.3f}s",
                  end="" if done < total else "\n", file=sys.stderr, flush=True)
        elif done % 5 == 0 or done == total:
            log(f"  {label}: {done}/{total} loads, last {seconds:.3f}s")
    return show


DEMO_DAYS = 30
DEMO_COPIED = ("policy_decisions", "policy_events")  # the generated events


def demo_measure(workdir: Path, days: int) -> dict:
    """In a child process (`--demo-into`): the demo's first start on an empty store
    (`policyscope.demo.history.ensure_history`: `days` of history generated, built into rows
    and stored as the collector stores them, analysts' verdicts, the SLI backfill), then the
    baseline: the same event rows inserted again into a second empty database by `INSERT ...
    SELECT` (no generation, no row building; the materialized views fill the rollups), plus
    the same backfill's time."""
    from core.storage import connect
    from policyscope.demo.history import ensure_history
    from schemas.migrations import migrate

    dsn = f"chdb://{workdir / 'ch'}"
    client, _ = connect(dsn, "demo")
    migrate(client, "demo")
    log(f"demo first start: {days} days of history + SLI backfill on an empty store ...")
    t = time.perf_counter()
    first = ensure_history(client, days=days, progress=False)
    total_s = time.perf_counter() - t
    if first is None:
        raise RuntimeError("ensure_history skipped: the fresh store held decisions")
    rows = {table: int(client.command(f"SELECT count() FROM {table}")) for table in DEMO_COPIED}
    log(f"  {total_s:.1f}s: {rows}")
    copy, _ = connect(dsn, "demo_copy")
    migrate(copy, "demo_copy")
    t = time.perf_counter()
    for table in DEMO_COPIED:
        copy.command(f"INSERT INTO demo_copy.{table} SELECT * FROM demo.{table}")
    insert_s = time.perf_counter() - t
    log(f"  baseline: the same {sum(rows.values()):,} rows by INSERT ... SELECT in {insert_s:.1f}s")
    history, backfill = first.history, first.backfill
    baseline_s = insert_s + backfill.seconds
    return {"available": True, "days": days, "seconds": round(total_s, 2),
            "reported_seconds": round(first.seconds, 2),
            "generate_s": round(history.generate_seconds, 2),
            "store_s": round(history.write_seconds, 2),
            "verdicts_s": round(history.verdict_seconds, 2),
            "backfill_s": round(backfill.seconds, 2), "backfill_points": backfill.points,
            "sli_values": backfill.rows, "events": dict(history.events), "rows": rows,
            "verdicts": history.verdicts, "evaluations": history.evaluations,
            "insert_select_s": round(insert_s, 2), "baseline_s": round(baseline_s, 2),
            "ratio": round(total_s / baseline_s, 2) if baseline_s else None}


def demo_first_start(args) -> dict:
    """The demo's first start next to its baseline (`demo_measure`, in a child process, on a
    store of its own), when the demo can generate history; else why not."""
    import importlib.util

    if importlib.util.find_spec("policyscope.demo.history") is None:
        return {"available": False, "skipped": "no history generation in policyscope/demo/ "
                                               "(no generate_history) at the time of the run"}
    if args.skip_demo:
        return {"available": True, "skipped": "--skip-demo"}
    workdir = Path(tempfile.mkdtemp(prefix="policyscope-bench-demo-"))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.pages", "--demo-into", str(workdir), "--days",
             str(DEMO_DAYS)], stdout=subprocess.PIPE, text=True, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        if done.returncode:
            return {"available": True, "skipped": f"the demo's first start failed (exit "
                                                  f"{done.returncode}; see the log above)"}
        return json.loads(done.stdout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args) -> dict:
    version = machine.code_version("dashboards", "metrics", "slo", "triage", "schemas")
    pages = app_pages()
    wanted = [p for p in pages if not args.pages or p in args.pages]
    unknown = sorted(set(args.pages or []) - set(pages))
    if unknown:
        raise SystemExit(f"no page {', '.join(unknown)} in {APP}; pages: {', '.join(pages)}")
    workdir, meta, reused = open_store(args)
    result: dict = {"store_reused": reused, "store": str(workdir) if args.store else None,
                    "pages_registered": list(pages), "build": meta["build"],
                    "built_at": meta["built_at"]}
    try:
        from core.storage import connect

        for key in [k for k in os.environ if k.startswith("POLICYSCOPE_")]:
            del os.environ[key]
        config = workdir / "policyscope.yaml"
        config.write_text(json.dumps({
            "storage": {"dsn": f"chdb://{workdir / 'ch'}", "database": DATABASE},
            "alerting": {"slo_dir": str(SLO_DIR)}}))  # JSON is YAML
        os.environ["POLICYSCOPE_CONFIG"] = str(config)
        # handed to the pages as `policyscope up` hands it (`dashboards.serve`), not read
        # from the file on every call
        from dashboards import config as dashboard_config
        from policyscope.config import load_config

        dashboard_config.use(load_config(config))
        # quiet the "no runtime" warnings of cache clears outside a script run (AppTest sets
        # Streamlit's log level from its config on every run, so through the config)
        os.environ["STREAMLIT_LOGGER_LEVEL"] = "error"
        from dashboards.serve import IdleCollector, prepare_process

        prepare_process()  # as `dashboards.serve` does before serving the first request
        # and the garbage collector's full passes are held as the server holds them; the
        # server's thread would run them whenever no page runs -- here that is during a raw
        # scan, which they would slow -- so they run between a load and its scan, untimed
        collector = IdleCollector()
        collector.hold()
        client, _ = connect(f"chdb://{workdir / 'ch'}", DATABASE)
        # a reused store gets the migrations added since it was built, as `policyscope up`
        # applies them at start
        from schemas.migrations import migrate

        for name in migrate(client, DATABASE):
            log(f"migration applied to the store: {name}")
        worker = Worker(client, workdir, meta)
        log(f"catching up to now: {worker.catch_up():,} decisions added")
        machine.wait_idle(args.wait_idle, args.wait_idle_timeout, log)
        result["load_avg_1m_at_start"] = round(os.getloadavg()[0], 2)
        raw_scan(client, 1)  # warm-up: the process's first queries are slow
        before = raw_scan(client, args.raw_runs)
        log(f"raw scan before the pages: median {statistics.median(before):.3f}s "
            f"({', '.join(f'{s:.3f}' for s in before)})")
        floor = apptest_floor(args.loads, args.timeout, workdir)
        log(f"AppTest floor (a two-element script): p50 {floor['p50_s']:.3f}s")
        times = QueryTimes()
        measured: list[dict] = []
        failed: list[dict] = []
        missing: list[str] = []
        with times.active():
            for page in wanted:
                # read again: the app may have changed since the run started (pages are
                # being added and renamed while benchmarks run)
                current = app_pages()
                if page not in current:
                    log(f"page {page}: no longer registered in {APP}, skipped")
                    failed.append({"page": page, "range": "", "error": "unregistered"})
                    continue
                title, module = current[page]
                if not (ROOT / "dashboards" / "pages" / module).exists():
                    log(f"page {page}: {module} does not exist, skipped")
                    missing.append(page)
                    continue
                for chosen in args.ranges:
                    added = worker.catch_up()
                    params = {**page_params(client, page, from_ms(meta["through_ms"])),
                              **({"range": chosen} if chosen != DEFAULT_RANGE else {})}
                    label = f"{page} ({chosen})"
                    log(f"page {label}: cold load, then {args.loads} loads"
                        + (f" ({added} new decisions first)" if added else ""))
                    try:
                        record = measure_page(page, title, module, params, args.loads,
                                              args.timeout, client, times, progress_line(label),
                                              not args.no_interleave, collector.collect_if_due)
                    except Exception as exc:  # noqa: BLE001 - reported, the others still run
                        log(f"  {label}: could not be loaded: {type(exc).__name__}: {exc}")
                        failed.append({"page": page, "range": chosen,
                                       "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
                        continue
                    record["range"] = chosen
                    measured.append(record)
                    log(f"  {label}: cold {record['cold_s']:.3f}s, p50 {record['p50_s']:.3f}s, "
                        f"p95 {record['p95_s']:.3f}s; top query "
                        + (f"{record['queries'][0]['query']} {record['queries'][0]['median_s']:.3f}s"
                           if record["queries"] else "(none)"))
        after = raw_scan(client, args.raw_runs)
        log(f"raw scan after the pages: median {statistics.median(after):.3f}s")
        interleaved = [x for record in measured for x in record["raw_scans_s"]]
        baseline = statistics.median(before + interleaved + after)
        for record in measured:
            own = record["raw_scan_median_s"] or baseline  # its own minutes' scans, if any
            record["baseline_s"] = own
            record["ratio_p95"] = round(record["p95_s"] / own, 3)
            record["ratio_p50"] = round(record["p50_s"] / own, 3)
            record["ratio_p95_run_baseline"] = round(record["p95_s"] / baseline, 3)
            record["verdict"] = "ERROR" if record["rendered"]["exceptions"] else \
                "PASS" if record["ratio_p95"] < 1 else "FAIL"
        rows = int(client.command("SELECT count() FROM policy_decisions"))
        result.update(
            raw_scan={"before_s": [round(s, 4) for s in before],
                      "after_s": [round(s, 4) for s in after],
                      "median_before_s": round(statistics.median(before), 4),
                      "median_after_s": round(statistics.median(after), 4),
                      "interleaved": len(interleaved),
                      "median_interleaved_s": round(statistics.median(interleaved), 4)
                      if interleaved else None,
                      "min_s": round(min(before + interleaved + after), 4),
                      "max_s": round(max(before + interleaved + after), 4),
                      "median_s": round(baseline, 4)},
            pages=measured, decisions_stored=rows, apptest_floor=floor,
            topped_up_decisions=meta["topped_up_decisions"],
            missing_pages=missing, failed_pages=failed,
            verdict="PASS" if measured and not failed
            and all(r["verdict"] == "PASS" for r in measured) else "FAIL",
            demo_first_start=demo_first_start(args))
        client.close()
    finally:
        if not args.store and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
            # and again at exit: chDB's background merges may still write a part after it
            atexit.register(shutil.rmtree, workdir, True)
    result.update(
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        code_version=version, cpu_count=os.cpu_count(), cpu_model=cpu_model(),
        memory_gib=round(psutil.virtual_memory().total / 2**30, 1),
        python=platform.python_version(), load_avg_1m_at_end=round(os.getloadavg()[0], 2),
        versions=_versions(), decisions=args.decisions, days=args.days, loads=args.loads,
        ranges=args.ranges, command=args.command_line)
    return result


def _versions() -> dict[str, str]:
    out = {}
    for name in ("chdb", "streamlit", "polars", "plotly"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - a missing package is just not listed
            pass
    return out


# -- the report -------------------------------------------------------------------------------

def _standings(build: dict) -> str:
    done = build.get("standings")
    return "none: a store built before they were" if not done else \
        f"{done['rows']:,} rows at {done['points']:,} hourly points, {done['seconds']} s"


def markdown(r: dict) -> str:
    raw = r["raw_scan"]
    ms = lambda s: f"{s * 1000:,.0f} ms"  # noqa: E731 - a local formatter
    table = "\n".join(
        f"| {p['title']} (`{p['module']}`) | {p['range']} | {ms(p['cold_s'])} | "
        f"{ms(p['p50_s'])} | **{ms(p['p95_s'])}** | {ms(p['baseline_s'])} | "
        f"**{p['ratio_p95']:.2f}** | {p['ratio_p95_run_baseline']:.2f} | **{p['verdict']}** | "
        + (f"`{p['queries'][0]['query']}` {ms(p['queries'][0]['median_s'])}"
           if p["queries"] else "—") + " |" for p in r["pages"])
    breakdown = "\n".join(
        f"| {p['title']} | {p['range']} | {ms(p['p50_s'])} | {ms(p['in_queries_median_s'])} | "
        + "; ".join(f"`{q['query']}` {ms(q['median_s'])}" for q in p["queries"][:4])
        + f" | {p['rendered']['tables']} / {p['rendered']['charts']} / "
          f"{p['rendered']['metrics']} | {len(p['rendered']['notices'])} |"
        for p in r["pages"])
    over = [p for p in r["pages"] if p["verdict"] != "PASS"]
    params = "; ".join(f"{p['page']}: " + ", ".join(f"{k}={v}" for k, v in p["params"].items())
                       for p in r["pages"] if p["params"] and p["range"] == r["ranges"][0])
    b = r["build"]
    covered = ", ".join(sorted({p["title"] for p in r["pages"]}, key=lambda t: [
        p["title"] for p in r["pages"]].index(t)))
    missing = (f" Registered but not measured (no module yet): {', '.join(r['missing_pages'])}."
               if r["missing_pages"] else "")
    missing += "".join(f" Could not be measured: {f['page']} ({f['range'] or 'any range'}): "
                       f"{f['error']}." for f in r["failed_pages"])
    expected = [p for p in ("oncall", "triage") if p not in r["pages_registered"]]
    pending = (f" Not registered in `dashboards/app.py` at the time of the run (so not "
               f"measured): {', '.join(expected)}." if expected else "")
    life = ", ".join(f"{k} {v:,}" for k, v in b["lifecycle"].items())
    demo = r["demo_first_start"]
    over_md = "" if not over else "\n**Over the bar:** " + "; ".join(
        f"{p['title']} ({p['range']}) p95 {ms(p['p95_s'])} = {p['ratio_p95']:.2f}x the raw scan"
        f" (p50 {ms(p['p50_s'])}: {ms(p['in_queries_median_s'])} in queries"
        + (f", the largest `{p['queries'][0]['query']}` {ms(p['queries'][0]['median_s'])}"
           if p["queries"] else "") + ")"
        + (f"; exception: {p['rendered']['exceptions'][0][:200]}"
           if p["rendered"]["exceptions"] else "") for p in over) + ".\n"
    if demo.get("seconds") is None:
        demo_md = ("**Demo first start**: not measured: " + demo["skipped"] + ".")
    else:
        events = sum(demo["rows"].values())
        demo_md = f"""**Demo first start** (`policyscope.demo.history.ensure_history(days={demo['days']})` on an empty
store, in a process of its own, after the pages: history generated, built into rows and stored as
the collector stores them, analysts' verdicts, the SLI backfill), next to its baseline in the same
run: the same {events:,} event rows inserted again into a second empty database by `INSERT ...
SELECT` (no generation, no row building; the views fill the rollups) plus the same backfill.

| figure | value |
|---|---|
| demo first start, {demo['days']} days: {demo['rows']['policy_decisions']:,} decisions + {demo['rows']['policy_events']:,} other events, {demo['verdicts']:,} verdicts, {demo['backfill_points']} backfill points ({demo['sli_values']:,} SLI values) | **{demo['seconds']} s** |
| of which: generation (timeline, {demo['evaluations']:,} Rego evaluations) / row building + store / verdicts / SLI backfill | {demo['generate_s']} / {demo['store_s']} / {demo['verdicts_s']} / {demo['backfill_s']} s |
| baseline: the same rows by `INSERT ... SELECT` ({demo['insert_select_s']} s) + the same backfill ({demo['backfill_s']} s) | {demo['baseline_s']} s |
| **ratio: first start ÷ baseline** | **{demo['ratio']}x** |"""
    return f"""{SECTION_START}
## Dashboard pages: server-side render time over {r['decisions_stored']:,} decisions vs one raw scan (chDB)

Measured {r['date']} at commit `{r['code_version']}` on {r['cpu_count']} CPU(s) \
({r['cpu_model']}), {r['memory_gib']} GiB RAM, Python {r['python']}, chDB \
{r['versions'].get('chdb', '?')}, Streamlit {r['versions'].get('streamlit', '?')}; 1-min load \
average {r['load_avg_1m_at_start']} at the start, {r['load_avg_1m_at_end']} at the end.

```
{r['command']}
```

Store ({'reused, built ' + r['built_at'] if r['store_reused'] else 'built for this run'}, in a child
process, {b['seconds']} s): `bench.sli`'s generator, {r['decisions']:,} decisions over
{r['days']} days ({b['generate_decisions_s']} s) and lifecycle events ({life};
{b['generate_lifecycle_s']} s), `OPTIMIZE FINAL` ({b['optimize_s']} s), every SLI backfilled at
hourly points ({b['sli_values']:,} `sli_values` rows, {b['backfill_s']} s), {b['collector_metrics']:,}
`collector_metrics` rows (a snapshot every 10 s), the example SLOs (`examples/slo/`) evaluated
by `AlertEvaluator` ({b['alerting']['alerts']} alerts, {b['alerting']['alerts_firing']} firing,
{b['alerting']['silences']} silences), the standings the evaluator would have stored over the
history ({_standings(b)}), triage verdicts through `triage.verdicts`
({', '.join(f'{k} {v:,}' for k, v in b['triage'].items())}). Before the scans and each page,
the store is caught up to the current minute as the worker would (decisions at the store's
rate, heartbeats, collector snapshots, an incremental SLI run, an alert evaluation; untimed):
{r['topped_up_decisions']:,} decisions added in all.

Each load: a fresh `AppTest` of `dashboards/app.py` switched to the page and run to the end (all
its queries, charts and elements; the custom-component registry a server scans for once at its
start is scanned once for the run and shared, where AppTest alone rescans every installed
package per instance, 0.15-0.45 s a load that is no part of a page), with the **Streamlit data cache cleared before every load**
(`st.cache_data.clear()`), so every load queries (a first view within the loaders' 60 s TTL;
a rerun inside it costs less). **Cold** = the first load of each page and range, after the
resource cache (the storage client) and ClickHouse's caches were dropped too (the OS page
cache was not; the first page's cold load also pays the process's first imports), reported
apart; p50 / p95 over the {r['loads']} loads after it. The garbage collector's full passes are
held as the server holds them (`dashboards.serve.IdleCollector`, which runs them while no page
runs) and run between a load and its raw scan when due, untimed.
Pages covered: {covered}.{missing}{pending}
URL parameters beyond the defaults: {params or 'none'} (the Debug page's searches filled with a
recent deny's resource and an image that has an SBOM, so it runs its searches).

| figure | value |
|---|---|
| raw scan `{RAW_SCAN}`: median of all {len(raw['before_s']) + raw['interleaved'] + len(raw['after_s'])} runs of the run, after a warm-up (min – max) | **{ms(raw['median_s'])}** ({ms(raw['min_s'])} – {ms(raw['max_s'])}) |
| the same: {len(raw['before_s'])} runs before the pages / {raw['interleaved']} interleaved, one after each measured page load / {len(raw['after_s'])} after the pages (medians) | {ms(raw['median_before_s'])} / {ms(raw['median_interleaved_s']) if raw['median_interleaved_s'] else '—'} / {ms(raw['median_after_s'])} |
| AppTest floor: a script of a title and a metric, loaded as the pages are (p50 / p95 of {r['loads']}) | {ms(r['apptest_floor']['p50_s'])} / {ms(r['apptest_floor']['p95_s'])} |

| page | range | cold | p50 | p95 | raw scan, same minutes | **p95 ÷ raw scan** | p95 ÷ the run's raw scan | bar (< 1) | costliest query (median per load) |
|---|---|---|---|---|---|---|---|---|---|
{table}

"Raw scan, same minutes" is the median of the scans run between that page's own loads (one
after each), the baseline its ratio is taken against; the ratio to the whole run's median is
shown beside it.

**Verdict: {r['verdict']}** (every page's p95 under one raw scan of the same store, same run).
{over_md}
Where a load's time goes (medians over the loads; "in queries" = inside `dashboards.loaders.load`,
cache hashing and pickling included; the rest is the page's own code, charts, and AppTest /
Streamlit script running):

| page | range | p50 | in queries | largest queries | tables / charts / metrics | notices |
|---|---|---|---|---|---|---|
{breakdown}

{demo_md}

{NOTES_START}
{NOTES_END}
{SECTION_END}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pages",
        description="Dashboard page-render benchmark: renders every page of dashboards/app.py "
                    "server side (AppTest, data cache cleared per load) over a store of "
                    "--decisions decisions, p50 / p95 per page, against one raw aggregate scan "
                    "of policy_decisions on the same store in the same run. Bar: every page's "
                    "p95 / raw scan < 1.")
    parser.add_argument("--decisions", type=parse_count, default=10_000_000,
                        help="decisions in the store (default 10_000_000; e.g. 200_000 while "
                             "developing)")
    parser.add_argument("--days", type=int, default=30, help="span of the data (default 30)")
    parser.add_argument("--loads", type=int, default=20,
                        help="measured loads per page and range, after the cold one (default 20)")
    parser.add_argument("--ranges", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                        default=["1d", "30d"],
                        help="time ranges (the global filter) each page is measured at, "
                             "comma-separated (default 1d,30d: the pages' default and the "
                             "widest)")
    parser.add_argument("--pages", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                        default=None, help="only these page ids (default: every page of PAGES)")
    parser.add_argument("--raw-runs", type=int, default=5,
                        help="raw scans before the pages and again after them (default 5)")
    parser.add_argument("--no-interleave", action="store_true",
                        help="no raw scan after each page load (default: one after each, and "
                             "each page's ratio is against the median of the scans between its "
                             "own loads)")
    parser.add_argument("--store", type=Path, default=None, metavar="DIR",
                        help="keep the store in DIR and reuse it when it fits (same --decisions "
                             "and --days, data end at most --max-gap ago); default: a temporary "
                             "store, deleted at the end")
    parser.add_argument("--max-gap", type=lambda s: timedelta(minutes=float(s)),
                        default=timedelta(hours=2), metavar="MINUTES",
                        help="reuse a --store whose data end at most this long ago; the gap is "
                             "filled with decisions and heartbeats only (default 120)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary store (without --store)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds one page load may take (default 600)")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="PERCENT",
                        help="before measuring, wait until the machine's CPUs are at most this "
                             "busy (default 0: don't wait)")
    parser.add_argument("--wait-idle-timeout", type=float, default=600)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md",
                        help="markdown file whose pages section is replaced "
                             "(default bench/RESULTS.md)")
    parser.add_argument("--no-write", action="store_true", help="print the JSON only")
    parser.add_argument("--skip-demo", action="store_true",
                        help="do not measure the demo's first start")
    parser.add_argument("--build-into", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--demo-into", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--end", type=datetime.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.demo_into:
        print(json.dumps(demo_measure(args.demo_into, args.days)))
        return 0
    if args.build_into:
        if args.end is None or not args.tag:
            parser.error("--build-into (the store, in a child process) needs --end and --tag")
        print(json.dumps(build(args.build_into, args.decisions, args.days, args.end, args.tag)))
        return 0
    if args.decisions < 1 or args.days < 1 or args.loads < 1 or args.raw_runs < 1:
        parser.error("--decisions, --days, --loads and --raw-runs must be >= 1")
    bad = [r for r in args.ranges if r not in RANGES]
    if bad or not args.ranges:
        parser.error(f"--ranges: {', '.join(bad) or 'none'}; expected some of "
                     f"{', '.join(RANGES)}")
    args.command_line = "cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.pages " + \
        shlex.join(argv if argv is not None else sys.argv[1:])
    result = run(args)
    print(json.dumps(result, indent=2, default=str))
    if not args.no_write:
        write_section(args.output, SECTION, markdown(result))
        log(f"wrote the pages section of {args.output}")
    return 0 if result["verdict"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
