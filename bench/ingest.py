"""Ingest benchmark: pre-serialized OTLP/HTTP protobuf into `policyscope collector` on chDB.

What it measures (the issue's bar: >= 30k events/s durable on the 2-core machine):

* the real collector is started as a subprocess (`policyscope collector --dsn chdb:///<tmp>`);
* N distinct `ExportLogsServiceRequest` bodies of `--records-per-request` realistic
  `policy.decision` log records are built and serialized *before* the clock starts;
* separate load-generator process(es) POST them to `/v1/logs` (`application/x-protobuf`) over
  `--connections` keep-alive `http.client` connections, timing each request until its 200
  (the collector acknowledges only once the records are fsync'd to its spool: "durable");
* the collector's `/metrics` (`policyscope_writer_inserted_rows_total`) is polled until every
  row is in ClickHouse ("landed"), then `SELECT count() FROM policy_decisions` through the
  loopback admin API confirms the count;
* the collector's peak RSS (process + children) and CPU time are sampled with psutil;
* the baseline, in this process before and after each collector run on the same bodies: the
  rate at which one core parses them (`ExportLogsServiceRequest.FromString`) and routes their
  attributes into per-column lists of the decision table in plain Python, no PolicyScope code
  ("floor"); the collector's acked/s and landed/s are reported as multiples of it.

Run: `cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.ingest --help`
The figures go to stdout as JSON and into a section of `--output` (default bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import psutil
from bench.results import write_section
from bench import machine
from bench.machine import busy_seconds, cpu_model, wait_idle

ROOT = Path(__file__).resolve().parent.parent
BAR_EVENTS_PER_S = 30_000
RUN_ID = f"{os.getpid():x}{time.time_ns():x}"  # event ids are unique per invocation
SECTION_START = "<!-- bench:ingest:start -->"
SECTION_END = "<!-- bench:ingest:end -->"

# -- realistic policy.decision records ------------------------------------------------------

ENGINES = [("gatekeeper", 0.35), ("kyverno", 0.3), ("opa", 0.25), ("conftest", 0.1)]
OUTCOMES = [("allow", 0.86), ("deny", 0.09), ("warn", 0.04), ("error", 0.01)]
ENFORCEMENT = [("enforce", 0.7), ("audit", 0.2), ("dryrun", 0.05), ("warn", 0.05)]
SEVERITIES = [("critical", 0.05), ("high", 0.2), ("medium", 0.4), ("low", 0.25), ("info", 0.1)]
POLICIES = [
    "k8s.require-non-root", "k8s.disallow-privileged", "k8s.require-resource-limits",
    "k8s.disallow-host-path", "k8s.require-probes", "k8s.allowed-registries",
    "k8s.disallow-latest-tag", "k8s.require-labels", "k8s.restrict-seccomp",
    "k8s.disallow-capabilities", "k8s.require-network-policy", "k8s.block-nodeport",
    "iac.s3-encryption", "iac.no-public-ingress", "api.authz.rbac", "api.authz.tenant-scope",
]
RESOURCE_KINDS = ["Pod", "Deployment", "StatefulSet", "Job", "Service", "Ingress", "ConfigMap"]
TEAMS = ["payments", "checkout", "identity", "search", "platform", "data", "mobile-api"]
SERVICES = ["payments-api", "checkout-web", "auth-svc", "search-indexer", "ledger",
            "gateway", "notifications", "catalog", "orders", "admission-controller"]
NAMESPACES = ["payments", "checkout", "identity", "search", "platform", "data", "kube-system",
              "monitoring", "default"]
CLUSTERS = [("prod-eu-1", "production"), ("prod-us-1", "production"),
            ("staging-eu-1", "staging"), ("dev-1", "development")]


def _weighted(rng: random.Random, choices: list[tuple[str, float]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def build_requests(count: int, per_request: int, seed: int = 42, *,
                   progress=None) -> list[bytes]:
    """`count` distinct serialized ExportLogsServiceRequest bodies of `per_request` records."""
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

    rng = random.Random(seed)
    run_id = RUN_ID
    now_ns = time.time_ns()
    bodies = []
    for i in range(count):
        cluster, environment = CLUSTERS[i % len(CLUSTERS)]
        request = logs_service_pb2.ExportLogsServiceRequest()
        rl = request.resource_logs.add()
        for key, value in (("k8s.cluster.name", cluster),
                           ("deployment.environment.name", environment)):
            kv = rl.resource.attributes.add()
            kv.key, kv.value.string_value = key, value
        sl = rl.scope_logs.add()
        sl.scope.name, sl.scope.version = "policyscope.bench", "1.0"
        # Records of one request span the last ~10 minutes, like a batching exporter's would.
        base_ns = now_ns - rng.randrange(0, 600) * 10**9
        for j in range(per_request):
            rec = sl.log_records.add()
            t = base_ns + j * 1_000_000 + rng.randrange(0, 1_000_000)
            rec.time_unix_nano = t
            rec.observed_time_unix_nano = t + rng.randrange(100_000, 50_000_000)
            rec.severity_number = 9
            rec.severity_text = "INFO"
            rec.event_name = "policy.decision"
            if rng.random() < 0.3:
                rec.trace_id = rng.randbytes(16)
                rec.span_id = rng.randbytes(8)
            kind = rng.choice(RESOURCE_KINDS)
            ns = rng.choice(NAMESPACES)
            name = f"{rng.choice(SERVICES)}-{rng.randrange(16 ** 5):05x}"
            attrs: list[tuple[str, object]] = [
                ("policy.id", rng.choice(POLICIES)),
                ("policy.outcome", _weighted(rng, OUTCOMES)),
                ("policy.engine", _weighted(rng, ENGINES)),
                ("policy.version", f"v1.{rng.randrange(3)}.{rng.randrange(10)}"),
                ("policy.enforcement", _weighted(rng, ENFORCEMENT)),
                ("policy.severity", _weighted(rng, SEVERITIES)),
                ("policy.evaluation.duration", rng.lognormvariate(-6.5, 0.8)),
                ("policy.resource.kind", kind),
                ("policy.resource.name", name),
                ("policy.resource.id", f"{ns}/{kind.lower()}/{name}"),
                ("team.name", rng.choice(TEAMS)),
                ("service.name", rng.choice(SERVICES)),
                ("k8s.namespace.name", ns),
                ("enduser.id", f"system:serviceaccount:{ns}:deployer-{rng.randrange(40)}"),
                ("log.record.uid", f"bench-{run_id}-{i:06d}-{j:05d}"),
            ]
            for key, value in attrs:
                kv = rec.attributes.add()
                kv.key = key
                if isinstance(value, float):
                    kv.value.double_value = value
                else:
                    kv.value.string_value = value
        bodies.append(request.SerializeToString())
        if progress is not None:
            progress(i + 1)
    return bodies


# -- load generator (separate processes) ----------------------------------------------------

_BODIES: list[bytes] = []  # filled before the workers fork, so they inherit it for free


def _connection_loop(port: int, indexes: list[int], results: list, sent, errors: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {"Content-Type": "application/x-protobuf", "Connection": "keep-alive"}
    for index in indexes:
        body = _BODIES[index]
        retries = 0
        while True:
            t0 = time.monotonic()
            try:
                conn.request("POST", "/v1/logs", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"request {index}: {type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
                retries += 1
                if retries > 20:
                    break
                time.sleep(0.1)
                continue
            t1 = time.monotonic()
            if response.status in (429, 503):  # overloaded: back off briefly and retry
                retries += 1
                results.append((index, t0, t1, response.status))
                time.sleep(min(float(response.headers.get("Retry-After", "1")), 0.25))
                continue
            results.append((index, t0, t1, response.status))
            if response.status != 200:
                errors.append(f"request {index}: HTTP {response.status}: {payload[:200]!r}")
            elif payload:  # a partial_success would mean records were rejected
                errors.append(f"request {index}: 200 with a non-empty response "
                              f"({len(payload)} bytes): partial success?")
            break
        with sent.get_lock():
            sent.value += 1
    conn.close()


def _worker(port: int, connections: int, indexes: list[int], start, sent, out) -> None:
    """One load-generator process: `connections` keep-alive connections in threads."""
    shares = [indexes[k::connections] for k in range(connections)]
    results: list = []
    errors: list = []
    threads = [threading.Thread(target=_connection_loop,
                                args=(port, share, results, sent, errors))
               for share in shares if share]
    start.wait()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times = os.times()
    out.put((results, errors, times.user + times.system))


# -- collector process --------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def collector_command(args, dsn: str, spool_dir: Path, http_port: int,
                      grpc_port: int) -> list[str]:
    script = ROOT / ".venv" / "bin" / "policyscope"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "policyscope.cli"]
    return base + ["collector", "--dsn", dsn, "--spool-dir", str(spool_dir),
                   "--http-port", str(http_port), "--grpc-port", str(grpc_port),
                   "--log-level", args.collector_log_level]


def settings_env(pairs: list[str]) -> dict[str, str]:
    """--set name=value -> POLICYSCOPE_NAME=value for the collector's environment."""
    env = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        env["POLICYSCOPE_" + name.strip().upper().replace("-", "_")] = value
    return env


def http_get(port: int, path: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read()


def scrape(port: int) -> dict[str, float]:
    metrics = {}
    for line in http_get(port, "/metrics").decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            metrics[name] = float(value)
    return metrics


def sql_count(port: int, query: str, dsn: str) -> int:
    """A count through the collector's admin API, with the token it published beside the
    embedded store of `dsn` (a server DSN's collector publishes none: no count then)."""
    from collector.admin import address_file, read_address

    path = address_file(dsn, "policyscope")
    published = read_address(path) if path is not None else None
    token = published[1] if published else ""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/sql",
                                     data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as r:
        body = json.loads(r.read())
    return int(next(iter(body["rows"][0].values())))


class RssSampler(threading.Thread):
    """Peak RSS (process + children) and CPU seconds of the collector, sampled every 50 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True, name="rss-sampler")
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.peak_pss = 0
        self.stop = threading.Event()

    def tree(self) -> list[psutil.Process]:
        try:
            return [self.proc] + self.proc.children(recursive=True)
        except psutil.Error:
            return []

    def rss(self) -> int:
        total = 0
        for p in self.tree():
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def pss(self) -> int:
        """Proportional set size: shared pages split among the processes (no double count)."""
        total = 0
        for p in self.tree():
            try:
                total += getattr(p.memory_full_info(), "pss", 0)
            except psutil.Error:
                pass
        return total

    def run(self) -> None:
        n = 0
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, self.rss())
            n += 1
            if n % 10 == 0:  # reading smaps is dearer: every 0.5 s
                self.peak_pss = max(self.peak_pss, self.pss())


def find_collector_pid(launcher: subprocess.Popen) -> int:
    """The Python collector process (under py-spy, the launcher's child)."""
    proc = psutil.Process(launcher.pid)
    for _ in range(100):
        for p in [proc] + proc.children(recursive=True):
            try:
                if "collector" in p.cmdline() and "py-spy" not in Path(p.cmdline()[0]).name:
                    return p.pid
            except psutil.Error:
                pass
        time.sleep(0.05)
    return launcher.pid


# -- baseline: plain-Python parse + route on one core -------------------------------------

def _floor_routes() -> tuple[dict[str, str], tuple[str, ...]]:
    """attribute key -> decision column, and the column names (data from schemas/events.py)."""
    from schemas.events import DECISIONS

    routes = {}
    for column in DECISIONS.columns:
        for key in column.attributes:
            routes.setdefault(key, column.name)
    return routes, DECISIONS.column_names


def parse_route_floor(bodies: list[bytes]) -> dict:
    """One pass, in this thread, over `bodies`: parse each request, walk resource / scope /
    records, build each record's attribute dict (record over scope over resource) and append
    its values to per-column lists of policy_decisions (a fresh set of lists per request, as
    the collector builds one batch per request). Rate = records / CPU seconds of this thread
    (one core, whatever else the machine runs); the wall-clock rate is kept too."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    routes, names = _floor_routes()
    skip = ("event.name", "log.record.uid")
    records = 0
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    for body in bodies:
        request = ExportLogsServiceRequest.FromString(body)
        columns: dict[str, list] = {name: [] for name in names}
        for rl in request.resource_logs:
            resource = {}
            for kv in rl.resource.attributes:
                v = kv.value
                which = v.WhichOneof("value")
                resource[kv.key] = getattr(v, which) if which else None
            for sl in rl.scope_logs:
                base = dict(resource)
                for kv in sl.scope.attributes:
                    v = kv.value
                    which = v.WhichOneof("value")
                    base[kv.key] = getattr(v, which) if which else None
                for rec in sl.log_records:
                    attrs = dict(base)
                    for kv in rec.attributes:
                        v = kv.value
                        which = v.WhichOneof("value")
                        attrs[kv.key] = getattr(v, which) if which else None
                    row = {"event_id": attrs.get("log.record.uid", ""),
                           "event_time": (rec.time_unix_nano or rec.observed_time_unix_nano)
                           // 1_000_000,
                           "observed_time": rec.observed_time_unix_nano // 1_000_000,
                           "trace_id": rec.trace_id.hex(), "span_id": rec.span_id.hex()}
                    extra = []
                    for key, value in attrs.items():
                        name = routes.get(key)
                        if name is not None:
                            row[name] = value
                        elif key not in skip:
                            extra.append((key, str(value)))
                    row["attributes"] = extra
                    for name in names:
                        columns[name].append(row.get(name))
                    records += 1
    cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    return {"records": records, "cpu_seconds": round(cpu, 3), "wall_seconds": round(wall, 3),
            "records_per_cpu_s": round(records / cpu) if cpu > 0 else None,
            "records_per_wall_s": round(records / wall) if wall > 0 else None}


def floor_fields(before: dict, after: dict, result: dict) -> dict:
    """The floor (the better of the passes before and after the run) and the ratios."""
    floor = max(before["records_per_cpu_s"] or 0, after["records_per_cpu_s"] or 0) or None
    landed = result.get("landed_events_per_s")
    return {
        "floor_records_per_s": floor,
        "floor_before_records_per_s": before["records_per_cpu_s"],
        "floor_after_records_per_s": after["records_per_cpu_s"],
        "floor_wall_records_per_s": max(before["records_per_wall_s"] or 0,
                                        after["records_per_wall_s"] or 0) or None,
        "ack_to_floor": round(result["ack_events_per_s"] / floor, 2) if floor else None,
        "landed_to_floor": round(landed / floor, 2) if floor and landed else None,
    }


def measure_floor(label: str) -> dict:
    floor = parse_route_floor(_BODIES)
    log(f"plain-Python parse+route floor ({label} the collector run): "
        f"{floor['records_per_cpu_s'] or 0:,} records/s on one core "
        f"({floor['records']:,} records in {floor['cpu_seconds']} CPU-s, "
        f"{floor['wall_seconds']} s wall)")
    return floor


# -- the run ------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def prepare(args) -> float:
    """Build and serialize the request bodies (before any clock starts); returns seconds."""
    global _BODIES, RUN_ID
    RUN_ID = f"{os.getpid():x}{time.time_ns():x}"
    expected = args.requests * args.records_per_request
    log(f"serializing {args.requests} requests x {args.records_per_request} records ...")
    t = time.monotonic()
    _BODIES = build_requests(args.requests, args.records_per_request, args.seed)
    build_s = time.monotonic() - t
    body_bytes = sum(len(b) for b in _BODIES)
    log(f"built {len(_BODIES)} bodies, {body_bytes / 1e6:.1f} MB "
        f"({body_bytes / expected:.0f} B/record) in {build_s:.1f}s")
    return build_s


def run(args, build_s: float) -> dict:
    """One measured run against a freshly started collector (fresh chDB unless --dsn)."""
    workdir = Path(tempfile.mkdtemp(prefix="policyscope-bench-"))
    dsn = args.dsn or f"chdb://{workdir / 'ch'}"
    http_port, grpc_port = free_port(), free_port()
    expected = args.requests * args.records_per_request
    body_bytes = sum(len(b) for b in _BODIES)
    load_at_start = round(os.getloadavg()[0], 2)

    command = collector_command(args, dsn, workdir / "spool", http_port, grpc_port)
    launch = command
    if args.py_spy:
        launch = [args.py_spy_bin, "record", "--rate", "100", "--subprocesses",
                  "--format", args.py_spy_format, "-o", args.py_spy, "--"] + command
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update(settings_env(args.set))
    stderr_path = workdir / "collector.stderr"
    stderr_file = open(stderr_path, "wb")
    log("starting: " + shlex.join(launch))
    launcher = subprocess.Popen(launch, cwd=ROOT, env=env, stdout=stderr_file,
                                stderr=stderr_file, start_new_session=True)
    result: dict = {}
    try:
        deadline = time.monotonic() + 120
        while True:
            if launcher.poll() is not None:
                raise RuntimeError(f"collector exited with {launcher.returncode}: "
                                   + stderr_path.read_text()[-3000:])
            try:
                http_get(http_port, "/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("collector did not answer /health within 120 s")
                time.sleep(0.1)
        pid = find_collector_pid(launcher)
        sampler = RssSampler(pid)
        rss_idle = sampler.rss()
        sampler.start()
        log(f"collector up (pid {pid}, RSS {rss_idle / 2**20:.0f} MiB), "
            f"HTTP :{http_port}")
        before = scrape(http_port).get("policyscope_writer_inserted_rows_total", 0.0)
        rows_before = sql_count(http_port, "SELECT count() FROM policy_decisions", dsn)

        ctx = mp.get_context("fork")  # workers inherit the serialized bodies
        start = ctx.Event()
        sent = ctx.Value("i", 0)
        out = ctx.Queue()
        processes = max(1, min(args.processes, args.connections))
        per_proc = [args.connections // processes + (1 if k < args.connections % processes
                                                     else 0) for k in range(processes)]
        indexes = list(range(args.requests))
        shares, pos = [], 0
        for k in range(processes):  # spread requests in proportion to connections
            n = round(args.requests * sum(per_proc[:k + 1]) / args.connections) - pos
            shares.append(indexes[pos:pos + n])
            pos += n
        workers = [ctx.Process(target=_worker, args=(http_port, per_proc[k], shares[k], start,
                                                     sent, out), daemon=True)
                   for k in range(processes)]
        for w in workers:
            w.start()
        time.sleep(0.5)  # let the workers reach the start line
        cpu_before = sampler.cpu_seconds()
        system_before = busy_seconds()
        t_start = time.monotonic()
        start.set()

        # Progress while sending: acknowledged requests and landed rows.
        landed_at = None
        inserted = 0.0
        last_log = 0.0
        collected: list = []
        errors: list = []
        finished = 0
        loadgen_cpu = 0.0
        metrics: dict[str, float] = {}
        while finished < processes:
            try:
                res, errs, cpu = out.get(timeout=0.25)
                loadgen_cpu += cpu
                collected.extend(res)
                errors.extend(errs)
                finished += 1
            except Exception:  # queue.Empty
                pass
            now = time.monotonic()
            if now - last_log >= args.progress_interval:
                last_log = now
                try:
                    metrics = scrape(http_port)
                    inserted = metrics.get("policyscope_writer_inserted_rows_total", 0.0) - before
                except OSError:
                    pass
                log(f"{now - t_start:6.1f}s  acked {sent.value}/{args.requests} requests  "
                    f"landed {int(inserted)}/{expected} rows  "
                    f"RSS {sampler.rss() / 2**20:.0f} MiB")
            if now - t_start > args.timeout:
                raise RuntimeError(f"sending did not finish within {args.timeout}s")
        for w in workers:
            w.join()
        acks = [r for r in collected if r[3] == 200]
        t_acked = max(r[2] for r in acks) if acks else time.monotonic()
        cpu_acked = sampler.cpu_seconds()
        system_acked = busy_seconds()
        log(f"all requests answered after {t_acked - t_start:.2f}s; waiting for rows to land")

        while True:
            now = time.monotonic()
            metrics = scrape(http_port)
            inserted = metrics.get("policyscope_writer_inserted_rows_total", 0.0) - before
            if inserted >= expected:
                landed_at = now
                break
            if now - last_log >= args.progress_interval:
                last_log = now
                log(f"{now - t_start:6.1f}s  landed {int(inserted)}/{expected} rows  "
                    f"spool backlog {metrics.get('policyscope_spool_backlog_bytes', 0) / 2**20:.0f}"
                    f" MiB")
            if now - t_start > args.timeout:
                break
            time.sleep(0.05)
        cpu_landed = sampler.cpu_seconds()
        sampler.stop.set()
        sampler.join()
        counted = sql_count(http_port, "SELECT count() FROM policy_decisions", dsn) - rows_before
        distinct = sql_count(http_port, "SELECT uniqExact(event_id) FROM policy_decisions "
                             f"WHERE event_id LIKE 'bench-{RUN_ID}-%'", dsn)

        latencies = [(r[2] - r[1]) * 1000 for r in acks]
        statuses: dict[str, int] = {}
        for r in collected:
            statuses[str(r[3])] = statuses.get(str(r[3]), 0) + 1
        acked_events = len({r[0] for r in acks}) * args.records_per_request
        ack_s = t_acked - t_start
        land_s = (landed_at - t_start) if landed_at else None
        result = {
            "requests": args.requests,
            "records_per_request": args.records_per_request,
            "connections": args.connections,
            "load_processes": processes,
            "events_sent": expected,
            "body_bytes_per_record": round(body_bytes / expected, 1),
            "events_acknowledged": acked_events,
            "ack_seconds": round(ack_s, 3),
            "ack_events_per_s": round(acked_events / ack_s),
            "landed_rows": counted,
            "landed_distinct_event_ids": distinct,
            "land_seconds": round(land_s, 3) if land_s else None,
            "landed_events_per_s": round(counted / land_s) if land_s else None,
            "ack_latency_ms_p50": round(percentile(latencies, 0.5), 1),
            "ack_latency_ms_p99": round(percentile(latencies, 0.99), 1),
            "ack_latency_ms_max": round(max(latencies), 1) if latencies else None,
            "ack_latency_ms_mean": round(statistics.fmean(latencies), 1) if latencies else None,
            "http_statuses": statuses,
            "errors": errors[:10],
            "error_count": len(errors),
            "collector_rss_idle_mib": round(rss_idle / 2**20, 1),
            "collector_rss_peak_mib": round(sampler.peak / 2**20, 1),
            "collector_pss_peak_mib": round(sampler.peak_pss / 2**20, 1),
            "collector_processes": len(sampler.tree()),
            "collector_cpu_seconds_until_acked": round(cpu_acked - cpu_before, 2),
            "collector_cpu_seconds_until_landed": round(cpu_landed - cpu_before, 2),
            "collector_cpu_cores_busy_while_sending": round((cpu_acked - cpu_before) / ack_s, 2),
            "loadgen_cpu_cores_busy_while_sending": round(loadgen_cpu / ack_s, 2),
            "machine_cpu_cores_busy_while_sending": round(
                (system_acked - system_before) / ack_s, 2),
            "other_processes_cpu_cores_busy_while_sending": round(max(
                0.0, (system_acked - system_before) - (cpu_acked - cpu_before) - loadgen_cpu)
                / ack_s, 2),
            "load_average_1m_at_start": load_at_start,
            "spool_fsyncs": int(metrics.get("policyscope_spool_fsyncs_total", 0)),
            "writer_duplicate_rows": int(metrics.get("policyscope_writer_duplicate_rows_total", 0)),
            "writer_failed_inserts": int(metrics.get("policyscope_writer_failed_inserts_total",
                                                     0)),
            "records_rejected": int(metrics.get("policyscope_records_logs_rejected_total", 0)),
            "serialize_seconds": round(build_s, 2),
            "bar_events_per_s": BAR_EVENTS_PER_S,
            "cpu_count": os.cpu_count(),
            "cpu_model": cpu_model(),
            "python": platform.python_version(),
            "code_version": code_version(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": args.command_line,
            "collector_command": shlex.join(command),
            "collector_settings": settings_env(args.set),
        }
        result["ack_verdict"] = "PASS" if result["ack_events_per_s"] >= BAR_EVENTS_PER_S \
            else "FAIL"
        result["landed_verdict"] = "PASS" if (result["landed_events_per_s"] or 0) >= \
            BAR_EVENTS_PER_S and counted == expected else "FAIL"
        return result
    finally:
        if launcher.poll() is None:
            # SIGINT: the collector (and py-spy, which then writes its profile) stop cleanly.
            os.killpg(launcher.pid, signal.SIGINT)
            try:
                launcher.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()
        stderr_file.close()
        tail = stderr_path.read_text(errors="replace").strip()
        if tail and args.show_collector_log:
            log("collector log (tail):\n" + tail[-4000:])
        if result is not None:
            result["collector_exit_code"] = launcher.returncode
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)




def code_version() -> str:
    return machine.code_version("collector", "policyscope", "schemas")




MEDIAN_KEYS = ("ack_events_per_s", "landed_events_per_s", "ack_seconds", "land_seconds",
               "ack_latency_ms_p50", "ack_latency_ms_p99", "ack_latency_ms_max",
               "ack_latency_ms_mean", "collector_cpu_cores_busy_while_sending",
               "collector_cpu_seconds_until_acked", "collector_cpu_seconds_until_landed",
               "loadgen_cpu_cores_busy_while_sending", "machine_cpu_cores_busy_while_sending",
               "other_processes_cpu_cores_busy_while_sending", "load_average_1m_at_start",
               "collector_rss_idle_mib", "floor_records_per_s", "floor_before_records_per_s",
               "floor_after_records_per_s", "floor_wall_records_per_s", "ack_to_floor",
               "landed_to_floor")
RUN_KEYS = ("ack_events_per_s", "landed_events_per_s", "ack_latency_ms_p50",
            "ack_latency_ms_p99", "collector_rss_peak_mib",
            "collector_cpu_cores_busy_while_sending", "other_processes_cpu_cores_busy_while_sending",
            "load_average_1m_at_start", "landed_rows", "error_count", "floor_records_per_s",
            "ack_to_floor", "landed_to_floor")


def summarize(results: list[dict]) -> dict:
    """One run as is; several: per-metric medians, the worst peak RSS, and every run."""
    if len(results) == 1:
        return dict(results[0], repeat=1)
    out = dict(sorted(results, key=lambda r: r["ack_events_per_s"])[len(results) // 2])
    for key in MEDIAN_KEYS:
        values = [r[key] for r in results if r.get(key) is not None]
        if values:
            m = statistics.median(values)
            out[key] = round(m) if all(isinstance(v, int) for v in values) else round(m, 3)
    out["collector_rss_peak_mib"] = max(r["collector_rss_peak_mib"] for r in results)
    out["collector_pss_peak_mib"] = max(r["collector_pss_peak_mib"] for r in results)
    out["error_count"] = sum(r["error_count"] for r in results)
    out["errors"] = [e for r in results for e in r["errors"]][:10]
    out["landed_rows"] = min(r["landed_rows"] for r in results)
    out["repeat"] = len(results)
    out["runs"] = [{k: r.get(k) for k in RUN_KEYS} for r in results]
    out["ack_verdict"] = "PASS" if out["ack_events_per_s"] >= BAR_EVENTS_PER_S else "FAIL"
    out["landed_verdict"] = "PASS" if (out["landed_events_per_s"] or 0) >= BAR_EVENTS_PER_S \
        and all(r["landed_rows"] == r["events_sent"] for r in results) else "FAIL"
    return out


def markdown(r: dict) -> str:
    landed = r["landed_events_per_s"]
    runs = ""
    if r.get("runs"):
        runs = ("\n\nPer run (headline figures above are the medians; peak RSS is the "
                "largest):\n\n| run | acked/s | landed/s | floor/s | landed ÷ floor | p50 ms | "
                "p99 ms | peak RSS MiB | collector cores | other processes' cores | "
                "load avg at start |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(
                    f"| {i + 1} | {x['ack_events_per_s']:,} | {x['landed_events_per_s'] or 0:,} | "
                    f"{x['floor_records_per_s'] or 0:,} | {x['landed_to_floor']} | "
                    f"{x['ack_latency_ms_p50']} | {x['ack_latency_ms_p99']} | "
                    f"{x['collector_rss_peak_mib']} | "
                    f"{x['collector_cpu_cores_busy_while_sending']} | "
                    f"{x['other_processes_cpu_cores_busy_while_sending']} | "
                    f"{x['load_average_1m_at_start']} |"
                    for i, x in enumerate(r["runs"])))
    floor = r.get("floor_records_per_s")
    return f"""{SECTION_START}
## Ingest: OTLP/HTTP protobuf -> `policyscope collector` -> chDB

Measured {r['date']} at commit `{r['code_version']}` on {r['cpu_count']} CPU(s) \
({r['cpu_model']}), Python {r['python']}.

```
{r['command']}
```

{r['requests']} pre-serialized `ExportLogsServiceRequest` bodies x {r['records_per_request']} \
`policy.decision` records ({r['body_bytes_per_record']} B/record on the wire), POSTed to \
`/v1/logs` from {r['load_processes']} separate process(es) over {r['connections']} keep-alive \
connections; the collector ran as `{r['collector_command']}`\
{f" with {' '.join(f'{k}={v}' for k, v in r['collector_settings'].items())}" if r['collector_settings'] else ""}
({r['repeat']} run(s), each against a freshly started collector and empty store).

| figure | value |
|---|---|
| events/s acknowledged (fsync'd to the spool = durable) | **{r['ack_events_per_s']:,}** ({r['events_acknowledged']:,} events in {r['ack_seconds']} s) |
| events/s landed in ClickHouse | **{f"{landed:,}" if landed else "n/a"}** ({r['landed_rows']:,} rows, {r['landed_distinct_event_ids']:,} distinct ids, in {r['land_seconds']} s from first send) |
| plain-Python parse+route floor, one core | **{f"{floor:,}" if floor else "n/a"} records/s** (the same bodies parsed and their attributes routed into per-column lists, no PolicyScope code, in the benchmark process; records per CPU-second of its thread, the better of the passes before and after the run: {r.get('floor_before_records_per_s') or 0:,} / {r.get('floor_after_records_per_s') or 0:,}; wall clock {r.get('floor_wall_records_per_s') or 0:,}) |
| collector landed/s ÷ floor | **{r.get('landed_to_floor')}x** |
| collector acked/s ÷ floor | **{r.get('ack_to_floor')}x** |
| ack latency p50 / p99 / max (per 1000-record request) | {r['ack_latency_ms_p50']} / {r['ack_latency_ms_p99']} / {r['ack_latency_ms_max']} ms |
| collector peak RSS, sum over its {r['collector_processes']} processes | {r['collector_rss_peak_mib']} MiB (idle {r['collector_rss_idle_mib']} MiB; peak PSS, shared pages counted once: {r['collector_pss_peak_mib']} MiB) |
| collector CPU while sending | {r['collector_cpu_cores_busy_while_sending']} cores busy ({r['collector_cpu_seconds_until_acked']} CPU-s until acked, {r['collector_cpu_seconds_until_landed']} until landed) |
| HTTP statuses / errors | {r['http_statuses']} / {r['error_count']} |
| load generator CPU / whole machine CPU while sending | {r['loadgen_cpu_cores_busy_while_sending']} / {r['machine_cpu_cores_busy_while_sending']} cores (other processes: {r['other_processes_cpu_cores_busy_while_sending']}; 1-min load at start {r['load_average_1m_at_start']}) |
| spool fsyncs (group commits) | {r['spool_fsyncs']} |{runs}

Bar: >= {r['bar_events_per_s']:,} events/s durable on this {r['cpu_count']}-core machine ->
acknowledged (durable in the spool): **{r['ack_verdict']}**; landed in ClickHouse:
**{r['landed_verdict']}**.
{SECTION_END}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description="Ingest benchmark: pre-serialized OTLP/HTTP protobuf requests from separate "
                    "processes over keep-alive into `policyscope collector` on chDB. Reports "
                    "events/s acknowledged and landed, p50/p99 ack latency and the collector's "
                    f"peak RSS against the bar of {BAR_EVENTS_PER_S:,} events/s.")
    parser.add_argument("--requests", type=int, default=300,
                        help="number of distinct requests to send (default 300)")
    parser.add_argument("--records-per-request", type=int, default=1000,
                        help="policy.decision records per request (default 1000)")
    parser.add_argument("--connections", type=int, default=4,
                        help="concurrent keep-alive connections (default 4)")
    parser.add_argument("--processes", type=int, default=1,
                        help="load-generator processes the connections are spread over "
                             "(default 1; each is separate from the collector)")
    parser.add_argument("--dsn", default=None,
                        help="storage DSN (default: a fresh chdb:///<tmpdir>/ch)")
    parser.add_argument("--seed", type=int, default=42, help="random seed for the records")
    parser.add_argument("--timeout", type=float, default=900,
                        help="give up after this many seconds (default 900)")
    parser.add_argument("--progress-interval", type=float, default=2.0,
                        help="seconds between progress lines on stderr (default 2)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md",
                        help="markdown file whose ingest section is replaced "
                             "(default bench/RESULTS.md); '-' to skip")
    parser.add_argument("--collector-log-level", default="WARNING",
                        help="collector --log-level (default WARNING)")
    parser.add_argument("--show-collector-log", action="store_true",
                        help="print the tail of the collector's log at the end")
    parser.add_argument("--py-spy", metavar="PATH", default=None,
                        help="run the collector under `py-spy record` and write the profile "
                             "here (figures are then slowed by sampling; not written to --output)")
    parser.add_argument("--py-spy-format", default="raw",
                        help="py-spy output format: raw, flamegraph, speedscope (default raw)")
    parser.add_argument("--py-spy-bin", default=str(ROOT / ".venv" / "bin" / "py-spy"),
                        help="py-spy executable")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a collector setting for this run, passed as POLICYSCOPE_<NAME> "
                             "(e.g. --set normalize_workers=1); repeatable")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="PERCENT",
                        help="before each run, wait until the machine's CPUs are at most this "
                             "busy (over 3 s) -- for shared machines (default 0: don't wait)")
    parser.add_argument("--wait-idle-timeout", type=float, default=600,
                        help="seconds --wait-idle waits at most (default 600)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measured runs, each against a freshly started collector; the "
                             "headline figures are the medians (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = parser.parse_args(argv)
    if min(args.requests, args.records_per_request, args.connections, args.processes,
           args.repeat) < 1:
        parser.error("--requests, --records-per-request, --connections, --processes and "
                     "--repeat must be >= 1")
    args.command_line = "cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.ingest " + \
        shlex.join(argv if argv is not None else sys.argv[1:])
    if args.py_spy:
        args.repeat = 1
    results = []
    build_s = prepare(args)
    for k in range(args.repeat):
        if k and args.dsn:  # a shared store would deduplicate re-sent ids: fresh ones
            build_s = prepare(args)
        if args.wait_idle:
            wait_idle(args.wait_idle, args.wait_idle_timeout, log)
        if args.repeat > 1:
            log(f"run {k + 1}/{args.repeat}")
        floor_before = measure_floor("before")
        r = run(args, build_s)
        r.update(floor_fields(floor_before, measure_floor("after"), r))
        results.append(r)
        log(f"run {k + 1}: {r['ack_events_per_s']:,} events/s acked, "
            f"{r['landed_events_per_s'] or 0:,} landed, p50/p99 {r['ack_latency_ms_p50']}/"
            f"{r['ack_latency_ms_p99']} ms, peak RSS {r['collector_rss_peak_mib']} MiB; "
            f"floor {r['floor_records_per_s'] or 0:,} records/s on one core "
            f"(acked {r['ack_to_floor']}x, landed {r['landed_to_floor']}x)")
    result = summarize(results)
    print(json.dumps(result, indent=2))
    if str(args.output) != "-" and not args.py_spy:
        write_section(args.output, "ingest", markdown(result))
        log(f"wrote {args.output}")
    ok = all(r["error_count"] == 0 and r["landed_rows"] == r["events_sent"] for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
