"""OPA decision-log endpoint throughput next to the OTLP protobuf path, one collector, one run.

What it measures:

* one real collector subprocess (`policyscope collector`, fresh chDB), as bench/ingest.py
  starts it (its `collector_command`, `scrape`, `free_port`);
* OPA's uploads: gzip'd JSON arrays of decision-log events, each batch filled up to OPA's
  default `upload_size_limit_bytes` (32 KiB compressed) as its chunk encoder does, of
  realistic admission-review events (an AdmissionReview input with a pod spec, labels,
  bundles, metrics, decision ids), POSTed to /opa/logs and built before the clock starts;
* the baseline: the same number of `policy.decision` records as OTLP/HTTP protobuf
  (bench/ingest.py's `build_requests`) POSTed to /v1/logs by the same load generator
  (`--connections` keep-alive connections) against the same collector, before and after the
  OPA phase (the machine's speed drifts; the ratio uses their mean);
* per phase: decisions acknowledged per second (every request answered 200, so durable in the
  spool) and landed per second (the writer's inserted-row counter reaching the phase's
  total); the ratio OPA / OTLP of both.

Run: `cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.opa --help`
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import random
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench import ingest
from bench.machine import code_version, cpu_model, wait_idle
from bench.results import write_section

ROOT = Path(__file__).resolve().parent.parent
UPLOAD_LIMIT = 32768  # OPA's default decision_logs.reporting.upload_size_limit_bytes
RESULTS = ROOT / "bench" / "RESULTS.md"


def decision_event(rng: random.Random, now_ns: int) -> dict:
    """One admission-review decision-log event, as OPA's logs plugin encodes it."""
    ns = rng.choice(ingest.NAMESPACES)
    app = rng.choice(ingest.SERVICES)
    name = f"{app}-{rng.randrange(16 ** 5):05x}"
    allowed = rng.random() > 0.1
    uid = str(uuid.UUID(int=rng.getrandbits(128)))
    t = now_ns - rng.randrange(0, 600) * 10**9
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 10**9)) + \
        f".{t % 10**9:09d}Z"
    response = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"message": f"container {app} must set "
                                         "securityContext.runAsNonRoot"}
    return {
        "labels": {"id": "3f1e0c52-9b5d-4c7a-8f6e-opa-bench", "version": "1.4.2",
                   "cluster": "prod-eu-1"},
        "decision_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "bundles": {"k8s": {"revision": f"v1.{rng.randrange(3)}.{rng.randrange(10)}"}},
        "path": "kubernetes/admission",
        "input": {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": name, "namespace": ns, "operation": "CREATE",
            "userInfo": {"username": f"system:serviceaccount:{ns}:deployer-{rng.randrange(40)}",
                         "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]},
            "object": {"metadata": {"name": name, "namespace": ns,
                                    "labels": {"app": app, "team": rng.choice(ingest.TEAMS)}},
                       "spec": {"containers": [{
                           "name": app, "image": f"registry.example.com/{app}:"
                                                 f"{rng.randrange(100)}.{rng.randrange(10)}",
                           "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                           "securityContext": {"runAsNonRoot": allowed}}]}},
            "dryRun": False}},
        "result": {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "response": response},
        "requested_by": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}:{rng.randrange(65536)}",
        "timestamp": stamp,
        "metrics": {"counter_server_query_cache_hit": 1,
                    "timer_rego_input_parse_ns": rng.randrange(20_000, 90_000),
                    "timer_rego_query_eval_ns": rng.randrange(100_000, 900_000),
                    "timer_server_handler_ns": rng.randrange(300_000, 1_500_000)},
        "req_id": rng.randrange(1, 10**6),
    }


def build_batches(decisions: int, seed: int) -> tuple[list[bytes], list[int]]:
    """gzip'd JSON arrays of at most UPLOAD_LIMIT bytes each, as OPA cuts them, holding
    `decisions` events in all; (bodies, events per body)."""
    rng = random.Random(seed)
    now_ns = time.time_ns()
    bodies, counts, pending = [], [], []
    encoded = [json.dumps(decision_event(rng, now_ns)).encode() for _ in range(decisions)]
    step = 8
    i = 0
    while i < len(encoded):
        pending = encoded[i:i + step]
        best = None
        while True:  # grow while the compressed batch fits
            body = gzip.compress(b"[" + b",".join(pending) + b"]")
            if len(body) > UPLOAD_LIMIT or i + len(pending) > len(encoded):
                break
            best = (body, len(pending))
            if i + len(pending) == len(encoded):
                break
            pending = encoded[i:i + len(pending) + step]
        if best is None:  # one event over the limit: OPA would send it alone
            best = (gzip.compress(b"[" + encoded[i] + b"]"), 1)
        bodies.append(best[0])
        counts.append(best[1])
        i += best[1]
    return bodies, counts


def send_all(port: int, path: str, content_type: str, bodies: list[bytes], connections: int,
             extra_headers: dict[str, str]) -> tuple[float, list[str]]:
    """POST every body over `connections` keep-alive connections; (seconds, errors)."""
    errors: list[str] = []
    shares = [list(range(k, len(bodies), connections)) for k in range(connections)]

    def loop(indexes: list[int]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        headers = {"Content-Type": content_type, **extra_headers}
        for index in indexes:
            for _ in range(50):
                conn.request("POST", path, body=bodies[index], headers=headers)
                response = conn.getresponse()
                payload = response.read()
                if response.status in (429, 503):
                    time.sleep(0.2)
                    continue
                if response.status != 200:
                    errors.append(f"{path} {index}: HTTP {response.status} {payload[:200]!r}")
                break
        conn.close()

    threads = [threading.Thread(target=loop, args=(share,)) for share in shares if share]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - t0, errors


def phase(port: int, name: str, path: str, content_type: str, bodies: list[bytes],
          records: int, connections: int, headers: dict[str, str]) -> dict:
    before = ingest.scrape(port).get("policyscope_writer_inserted_rows_total", 0.0)
    t0 = time.monotonic()
    acked_s, errors = send_all(port, path, content_type, bodies, connections, headers)
    while ingest.scrape(port).get("policyscope_writer_inserted_rows_total", 0.0) - before \
            < records:
        if time.monotonic() - t0 > 600:
            raise RuntimeError(f"{name}: rows did not land within 600 s")
        time.sleep(0.05)
    landed_s = time.monotonic() - t0
    result = {"phase": name, "records": records, "requests": len(bodies),
              "request_bytes": sum(len(b) for b in bodies), "acked_s": round(acked_s, 3),
              "landed_s": round(landed_s, 3), "acked_per_s": round(records / acked_s),
              "landed_per_s": round(records / landed_s), "errors": errors[:5]}
    ingest.log(f"{name}: {result['acked_per_s']:,} acked/s, {result['landed_per_s']:,} "
               f"landed/s ({len(bodies)} requests)")
    return result


def run(args) -> dict:
    ingest.log(f"building {args.decisions} OPA events in {UPLOAD_LIMIT}-byte gzip batches ...")
    opa_bodies, counts = build_batches(args.decisions, args.seed)
    per_request = max(1, round(sum(counts) / len(counts)))
    otlp_bodies = ingest.build_requests(len(opa_bodies), per_request, args.seed)
    otlp_records = len(otlp_bodies) * per_request
    ingest.log(f"{len(opa_bodies)} OPA batches, {sum(counts) / len(counts):.0f} events each; "
               f"{len(otlp_bodies)} OTLP requests of {per_request} records")
    wait_idle(args.max_busy, 120, ingest.log)
    workdir = Path(tempfile.mkdtemp(prefix="policyscope-bench-opa-"))
    http_port, grpc_port = ingest.free_port(), ingest.free_port()
    command = ingest.collector_command(argparse.Namespace(collector_log_level="WARNING"),
                                       f"chdb://{workdir / 'ch'}", workdir / "spool",
                                       http_port, grpc_port)
    ingest.log("starting: " + shlex.join(command))
    with open(workdir / "collector.log", "wb") as out:
        collector = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=out,
                                     start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                ingest.http_get(http_port, "/health", timeout=1)
                break
            except OSError:
                if collector.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("collector did not start: "
                                       + (workdir / "collector.log").read_text()[-2000:])
                time.sleep(0.1)
        otlp = ("/v1/logs", "application/x-protobuf", otlp_bodies, otlp_records, {})
        opa = ("/opa/logs", "application/json", opa_bodies, sum(counts),
               {"Content-Encoding": "gzip"})
        # Fresh ids for the second OTLP phase: its rows must be new to be inserted.
        ingest.RUN_ID = f"{ingest.RUN_ID}b"
        otlp_again = ingest.build_requests(len(opa_bodies), per_request, args.seed + 1)
        phases = [phase(http_port, "otlp (before)", *otlp[:2], otlp[2], otlp[3],
                        args.connections, otlp[4]),
                  phase(http_port, "opa", *opa[:2], opa[2], opa[3], args.connections, opa[4]),
                  phase(http_port, "otlp (after)", *otlp[:2], otlp_again, otlp[3],
                        args.connections, otlp[4])]
    finally:
        collector.terminate()
        collector.wait(60)
    base_acked = (phases[0]["acked_per_s"] + phases[2]["acked_per_s"]) / 2
    base_landed = (phases[0]["landed_per_s"] + phases[2]["landed_per_s"]) / 2
    return {"phases": phases, "events_per_batch": round(sum(counts) / len(counts), 1),
            "batch_bytes_mean": round(sum(len(b) for b in opa_bodies) / len(opa_bodies)),
            "ratio_acked": round(phases[1]["acked_per_s"] / base_acked, 2),
            "ratio_landed": round(phases[1]["landed_per_s"] / base_landed, 2),
            "connections": args.connections, "cpu": cpu_model(),
            "code": code_version("collector", "bench/opa.py")}


def markdown(r: dict, command: str) -> str:
    lines = ["<!-- bench:opa:start -->", "## OPA decision-log endpoint vs the OTLP protobuf path",
             "", f"`{command}` -- code {r['code']}, {r['cpu']}, {r['connections']} connections; "
             f"OPA batches of {r['events_per_batch']} admission-review events, "
             f"{r['batch_bytes_mean']:,} gzip bytes on average (OPA's 32 KiB upload limit); "
             "the OTLP baseline sends as many records per request, before and after.", "",
             "| phase | decisions | requests | acked/s | landed/s |", "|---|---|---|---|---|"]
    for p in r["phases"]:
        lines.append(f"| {p['phase']} | {p['records']:,} | {p['requests']:,} | "
                     f"{p['acked_per_s']:,} | {p['landed_per_s']:,} |")
    lines += ["", f"OPA / OTLP (mean of before and after): **{r['ratio_acked']}x** acked, "
                  f"**{r['ratio_landed']}x** landed.", "", "<!-- bench:opa:end -->"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=40_000,
                        help="OPA decision-log events sent (the OTLP phases send as many)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--max-busy", type=float, default=60.0,
                        help="wait until the machine's CPU is below this %% busy (0: don't)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=1))
    if result["phases"][1]["errors"] or any(p["errors"] for p in result["phases"]):
        print("errors: " + json.dumps([p["errors"] for p in result["phases"]]), file=sys.stderr)
        return 1
    if not args.no_write:
        command = "PYTHONPATH=. .venv/bin/python -m bench.opa " + shlex.join(
            argv if argv is not None else sys.argv[1:])
        write_section(args.output, "opa", markdown(result, command.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
