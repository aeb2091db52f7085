"""Value redaction's cost on the ingest hot path: the normalizer with `redact_values` at its
defaults against `[]` (off), on the same realistic OTLP batches, in the same run.

* the batches are bench/ingest.py's `build_requests` (the ingest benchmark's `policy.decision`
  records, 15 attributes each), decoded before the clock starts; a second set adds to every
  record a `policy.reason` naming its resource (so mostly distinct) and two extra attributes
  (`http.route`, `k8s.pod.uid`); a third also puts a secret (one of the kinds the default
  patterns know) in the reason of 1 % of the records;
* each pass normalizes every request with a fresh `Normalizer` (so the cache of redacted values
  starts cold, as after a collector start, and unique values are never served from it);
  passes alternate on / off; the figure is rows per CPU-second of this process, best of
  `--repeat` passes each after an unmeasured one; the ratio on ÷ off is what to compare
  across machines;
* the "on" passes are checked to have redacted every planted secret and nothing else.

Run: `cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.redaction --output bench/RESULTS.md`
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import machine
from bench.ingest import build_requests
from bench.machine import cpu_model, wait_idle
from bench.results import write_section

ROOT = Path(__file__).resolve().parent.parent
BAR = 0.9  # on ÷ off
SECRETS = ["key AKIAIOSFODNN7EXAMPLE", "dsn postgres://app:Pw-{n}@db:5432/app",
           "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ7bn0ifQ.c2lnbmF0dXJl{n}",
           "token ghp_wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pI{n:03d}", "password={n}-hunter"]
REASONS = ["container {name} runs as root; set securityContext.runAsNonRoot: true",
           "image of {name} is not from an allowed registry (registry.example.com)",
           "{name} has no resource limits", "{name} allowed by policy"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def with_reasons(bodies: list[bytes], seed: int, secrets: float) -> tuple[list, int]:
    """The requests of `bodies` with a reason and two extras per record, a share `secrets`
    of the reasons with a secret; and how many secrets were planted."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    rng = random.Random(seed)
    requests, planted = [], 0
    for body in bodies:
        request = ExportLogsServiceRequest.FromString(body)
        for rec in request.resource_logs[0].scope_logs[0].log_records:
            name = next(kv.value.string_value for kv in rec.attributes
                        if kv.key == "policy.resource.name")
            reason = rng.choice(REASONS).format(name=name)
            if rng.random() < secrets:
                reason += "; " + rng.choice(SECRETS).format(n=rng.randrange(1000))
                planted += 1
            for key, value in (("policy.reason", reason), ("http.route", "/v1/admit"),
                               ("k8s.pod.uid", f"{rng.getrandbits(64):016x}")):
                kv = rec.attributes.add()
                kv.key, kv.value.string_value = key, value
        requests.append(request)
    return requests, planted


def rows_per_cpu_second(requests: list, redact: bool) -> tuple[float, int]:
    """One pass: (rows per CPU-second, reasons that hold [REDACTED])."""
    from collector.normalize import Normalizer
    from collector.redaction import DEFAULT_VALUE_PATTERNS, REDACTED

    normalizer = Normalizer(redact_values=DEFAULT_VALUE_PATTERNS if redact else ())
    rows, redacted = 0, 0
    start = time.process_time()
    batches = [normalizer.logs(request) for request in requests]
    elapsed = time.process_time() - start
    for batch in batches:
        rows += batch.accepted
        reasons = batch.tables["policy_decisions"].column("reason").to_pylist()
        redacted += sum(REDACTED in r for r in reasons)
    return rows / elapsed, redacted


def measure(label: str, requests: list, repeat: int) -> dict:
    passes: dict[str, list[float]] = {"on": [], "off": []}
    redacted = 0
    for mode in (True, False):  # unmeasured: first-call costs (imports, regex compilation)
        rows_per_cpu_second(requests[:2], mode)
    for k in range(repeat):
        for mode in ("on", "off") if k % 2 == 0 else ("off", "on"):
            rate, count = rows_per_cpu_second(requests, mode == "on")
            passes[mode].append(rate)
            if mode == "on":
                redacted = count
        log(f"{label}: pass {k + 1}/{repeat}: on {passes['on'][-1]:,.0f} rows/s, "
            f"off {passes['off'][-1]:,.0f} rows/s")
    on, off = max(passes["on"]), max(passes["off"])
    paired = statistics.median(a / b for a, b in zip(passes["on"], passes["off"]))
    return {"batch": label, "on_rows_per_s": round(on), "off_rows_per_s": round(off),
            "ratio": round(on / off, 3), "paired_ratio": round(paired, 3),
            "redacted_reasons": redacted,
            "passes": {m: [round(v) for v in values] for m, values in passes.items()}}


def markdown(result: dict) -> str:
    rows = "\n".join(
        f"| {r['batch']} | {r['off_rows_per_s']:,} | {r['on_rows_per_s']:,} | "
        f"**{r['ratio']:.2f}** | {r['paired_ratio']:.2f} | "
        f"{', '.join(f'{v:,}' for v in r['passes']['off'])} / "
        f"{', '.join(f'{v:,}' for v in r['passes']['on'])} |" for r in result["results"])
    worst = min(r["ratio"] for r in result["results"])
    return f"""<!-- bench:redaction:start -->
## Value redaction: the normalizer with `redact_values` on ÷ off

Measured {result['when']} at commit `{result['code']}` on {result['cpus']} CPU(s)
({result['cpu']}), Python {result['python']}.

```
{result['command']}
```

{result['requests']} requests x {result['records_per_request']} `policy.decision` records from
bench/ingest.py's builder, decoded before the clock; each pass normalizes all of them with a
fresh `Normalizer` (cold cache), on and off alternating; rows per CPU-second of the benchmark
process, best of {result['repeat']} passes each after an unmeasured one (and, less disturbed by
a machine whose speed drifts, the median ratio of the on and off passes run next to each
other). The second batch adds
to every record a mostly distinct `policy.reason` (naming its resource) and two extra
attributes; the third also puts a secret in 1 % of the reasons ({result['planted']} planted,
{result['redacted']} redacted in the "on" passes; in the second, {result['clean_redacted']}
reasons changed).

| batch | off rows/s | on rows/s | on ÷ off (best) | on ÷ off (median of adjacent pairs) | passes off / on |
|---|---|---|---|---|---|
{rows}

Bar: on ÷ off >= {BAR} -> **{"PASS" if worst >= BAR else "FAIL"}** (worst batch {worst:.2f}).
<!-- bench:redaction:end -->
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.redaction",
        description="Value redaction's cost: normalizer rows/s with redact_values on and off "
                    f"on the same OTLP batches, and the ratio (bar {BAR}).")
    parser.add_argument("--requests", type=int, default=40, help="requests (default 40)")
    parser.add_argument("--records-per-request", type=int, default=1000,
                        help="records per request (default 1000)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="passes per mode and batch (default 5)")
    parser.add_argument("--seed", type=int, default=42, help="random seed for the records")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="PERCENT",
                        help="first wait until the machine's CPUs are at most this busy "
                             "(default 0: don't wait)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md",
                        help="markdown file whose redaction section is replaced "
                             "(default bench/RESULTS.md); '-' to skip")
    args = parser.parse_args(argv)
    if min(args.requests, args.records_per_request, args.repeat) < 1:
        parser.error("--requests, --records-per-request and --repeat must be >= 1")
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    bodies = build_requests(args.requests, args.records_per_request, args.seed)
    plain = [ExportLogsServiceRequest.FromString(body) for body in bodies]
    clean, _ = with_reasons(bodies, args.seed, 0.0)
    reasons, planted = with_reasons(bodies, args.seed, 0.01)
    if args.wait_idle:
        wait_idle(args.wait_idle, 600, log)
    results = [measure("ingest bench's decisions", plain, args.repeat),
               measure("+ a reason and 2 extra attributes each", clean, args.repeat),
               measure("the same, 1 % of reasons with a secret", reasons, args.repeat)]
    result = {
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "code": machine.code_version("collector", "schemas", "bench/redaction.py"),
        "cpus": len(os.sched_getaffinity(0)), "cpu": cpu_model(),
        "python": platform.python_version(), "requests": args.requests,
        "records_per_request": args.records_per_request, "repeat": args.repeat,
        "planted": planted, "redacted": results[2]["redacted_reasons"],
        "clean_redacted": results[1]["redacted_reasons"], "results": results,
        "command": "cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.redaction "
                   + shlex.join(argv if argv is not None else sys.argv[1:])}
    print(json.dumps(result, indent=2))
    if str(args.output) != "-":
        write_section(args.output, "redaction", markdown(result))
        log(f"wrote {args.output}")
    return 0 if result["planted"] == result["redacted"] and not result["clean_redacted"] else 1


if __name__ == "__main__":
    sys.exit(main())
