"""Importing a large PolicyReport list: `policyscope import policyreport FILE --dsn chdb://...`'s
work, in process and timed by phase, next to a plain `json.load` of the same file in the same
run (the floor any importer of the file pays).

* the file is a `kubectl get policyreports -A -o json` List of Kyverno per-Pod reports
  (tests/builders/reports.py: the real shape), `--results` results in all (10 per report,
  a fifth of them failing), written once before the clock;
* each pass imports it into a fresh database of one chDB store, as the CLI does: read and
  parse (importers.run.parse), diff against the (empty) snapshots and pack OTLP requests
  (run.prepare), the collector's normalizer + exactly-once insert
  (policyscope.cli.imports.DirectDelivery), then the snapshot save (run.finish);
* `json.load` of the same file is timed between the passes; the figure is the best pass of
  `--repeat`, and the ratio import ÷ json.load is what to compare across machines.

Run: `cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.imports --output bench/RESULTS.md`
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench import machine
from bench.machine import cpu_model
from bench.results import write_section

ROOT = Path(__file__).resolve().parent.parent
PER_REPORT = 10


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build(path: Path, results: int) -> int:
    from tests.builders.reports import KYVERNO_POLICIES, pod_report, report_list, result

    now = datetime.now(timezone.utc) - timedelta(hours=1)
    policies = list(KYVERNO_POLICIES)
    reports = []
    for i in range(results // PER_REPORT):
        entries = [result(policies[j % len(policies)], "fail" if (i + j) % 5 == 0 else "pass",
                          now - timedelta(seconds=i))
                   for j in range(PER_REPORT)]
        for j, entry in enumerate(entries):
            entry["rule"] = f"{entry['rule']}-{j}"  # distinct rules: one result each
        reports.append(pod_report(f"ns-{i % 50}", f"pod-{i}", entries))
    path.write_text(json.dumps(report_list(reports)))
    return len(reports) * PER_REPORT


def import_once(client, database: str, path: Path) -> dict:
    from collector.normalize import Normalizer
    from importers import run
    from importers.documents import Document
    from importers.facts import SourceFacts
    from importers.parsing import Options
    from importers.snapshots import SnapshotStore
    from policyscope.cli.imports import DirectDelivery

    options = Options(SourceFacts(cluster="bench"), int(time.time() * 1000))
    store = SnapshotStore(client, database)
    began = time.perf_counter()
    document = Document(str(path), path.read_text())
    parsed = run.parse("policyreport", document, options)
    parsed_at = time.perf_counter()
    plan = run.prepare("policyreport", parsed, options, store, source=document.name)
    planned = time.perf_counter()
    DirectDelivery(client, database, Normalizer()).deliver(plan.requests)
    delivered = time.perf_counter()
    run.finish(plan, store)
    done = time.perf_counter()
    report = plan.report()
    return {"seconds": done - began, "parse": parsed_at - began, "diff_pack": planned - parsed_at,
            "normalize_insert": delivered - planned, "snapshot": done - delivered,
            "decisions": report.events.get("policy.decision", 0), "opened": report.opened}


def markdown(r: dict) -> str:
    best = r["best"]
    return f"""<!-- bench:imports:start -->
## Importing a 100,000-result PolicyReport list (`--dsn`, chDB) ÷ `json.load` of the file

Measured {r['when']} at commit `{r['code']}` on {r['cpus']} CPU(s) ({r['cpu']}),
Python {r['python']}.

```
{r['command']}
```

{r['results']:,} results in {r['reports']:,} Kyverno per-Pod reports ({r['mb']:.1f} MB of
JSON); each pass imports them into a fresh database: {best['decisions']:,} decisions and
{best['opened']:,} opened violations stored (and their snapshot). Best of
{r['repeat']} passes; `json.load` of the same file timed between them (best
{r['json_load']:.3f} s).

| phase | seconds (best pass) |
|---|---|
| read + parse (importers) | {best['parse']:.2f} |
| diff + OTLP requests | {best['diff_pack']:.2f} |
| collector normalizer + exactly-once insert | {best['normalize_insert']:.2f} |
| snapshot save | {best['snapshot']:.2f} |
| **whole import** | **{best['seconds']:.2f}** ({r['results'] / best['seconds']:,.0f} results/s) |

Import ÷ `json.load`: **{r['ratio']:.1f}x**.
<!-- bench:imports:end -->
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=(
        "A PolicyReport list imported as `policyscope import --dsn` does, next to json.load"))
    parser.add_argument("--results", type=int, default=100_000, help="results (default 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="passes (default 3)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md",
                        help="markdown file whose imports section is replaced; '-' to skip")
    args = parser.parse_args(argv)
    from core.storage import connect
    from schemas.migrations import migrate

    work = Path(tempfile.mkdtemp(prefix="bench-imports-"))
    path = work / "policyreports.json"
    results = build(path, args.results)
    client, _ = connect(f"chdb://{work / 'ch'}", "default")
    passes, loads = [], []
    try:
        for i in range(args.repeat):
            began = time.perf_counter()
            with path.open() as f:
                json.load(f)
            loads.append(time.perf_counter() - began)
            database = f"bench_imports_{i}"
            client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
            migrate(client, database)
            client.database = database
            passes.append(import_once(client, database, path))
            log(f"pass {i + 1}: {passes[-1]['seconds']:.2f} s, json.load {loads[-1]:.3f} s")
    finally:
        client.close()
    best = min(passes, key=lambda p: p["seconds"])
    result = {
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "code": machine.code_version("importers", "collector", "bench/imports.py"),
        "cpus": len(os.sched_getaffinity(0)), "cpu": cpu_model(),
        "python": platform.python_version(), "results": results,
        "reports": results // PER_REPORT, "mb": path.stat().st_size / 1e6,
        "repeat": args.repeat, "best": best, "json_load": min(loads),
        "ratio": best["seconds"] / min(loads),
        "command": "cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.imports "
                   + shlex.join(argv if argv is not None else sys.argv[1:])}
    print(json.dumps(result, indent=2))
    if str(args.output) != "-":
        write_section(args.output, "imports", markdown(result))
        log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
