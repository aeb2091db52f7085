"""Fuzz campaign (issue 11, "property-based fuzzing"): the properties of tests/fuzz/, run with
many examples, counted instead of asserted.

Targets (each `--examples` hypothesis examples, in chunks of `--chunk` with seeds derived from
`--seed`, generation only -- a crash is counted and kept, not shrunk):

* `protobuf`: OTLP logs/traces protobuf bodies (tests/builders/fuzz_protobuf.py) through
  `collector.normalize_pool.normalize_body`; plus `--mutants` byte-mutants of each body;
* `json`: OTLP/JSON bodies (tests/builders/fuzz_json.py) through the same; plus `--mutants`
  tree-mutants of each;
* `sql`: texts from the SQL grammar (tests/builders/fuzz_sql.py) through the admin API's
  guarded path against a scratch chDB store, with a canary file and a recording listener;
* `http`: requests POSTed to a running collector's /v1/logs (`--http-examples`).

A crash is what tests/builders/fuzz_verdicts.py calls one (an exception escaping, a 400 made by
the catch-all for a failure nobody foresaw, a batch breaking an invariant, a 5xx); for SQL also
every statement that wrote, read a file or reached the network. Each figure has a baseline:
the same inputs through `ParseFromString` / `json.loads` / ClickHouse's parser alone
(`formatQuerySingleLine`) / a bare local HTTP server answering 200, so that the speed is a
ratio (machines differ 3x).

Run: `cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.fuzz --examples 100000 --output bench/RESULTS.md`
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import shlex
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from hypothesis import given, seed, settings
from hypothesis import strategies as st

from bench import machine
from bench.results import write_section
from collector.normalize import Normalizer
from collector.service import CollectorService
from collector.signals import BY_NAME, JSON, PROTOBUF
from core.storage import connect
from policyscope.config import load_config
from schemas.migrations import migrate
from tests.builders.fuzz_json import json_bodies, json_mutants
from tests.builders.fuzz_protobuf import byte_mutants, protobuf_bodies
from tests.builders.fuzz_sql import ENGINE_REFUSED, ESCAPED, SqlSandbox, queries
from tests.builders.fuzz_verdicts import (
    ACCEPTED,
    CRASH,
    REFUSED,
    body_verdict,
    http_requests,
    http_send,
    http_verdict,
)
from tests.builders.processes import serving

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("bench.fuzz")


@dataclass
class Tally:
    """What one target saw."""

    target: str
    generated: int = 0
    derived: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    escapes: dict[str, int] = field(default_factory=lambda: {"wrote": 0, "read a file": 0,
                                                             "reached the network": 0})
    target_s: float = 0.0
    baseline_s: float = 0.0
    wall_s: float = 0.0
    found: list[str] = field(default_factory=list)  # the first crashes/escapes, for the report
    notes: list[str] = field(default_factory=list)

    @property
    def tried(self) -> int:
        return self.generated + self.derived

    def count(self, verdict, text: str) -> None:
        self.kinds[verdict.kind] = self.kinds.get(verdict.kind, 0) + 1
        for escape in verdict.escapes:
            for name in self.escapes:
                if escape.startswith(name):
                    self.escapes[name] += 1
        if verdict.kind in (CRASH, ESCAPED) and len(self.found) < 5:
            self.found.append(f"{text[:300]!r}: {verdict.detail[-700:]}")

    def summary(self) -> dict:
        refused = self.kinds.get(REFUSED, 0) + self.kinds.get(ENGINE_REFUSED, 0)
        return {"target": self.target, "tried": self.tried, "generated": self.generated,
                "derived": self.derived, "accepted": self.kinds.get(ACCEPTED, 0),
                "refused": refused, "engine_refused": self.kinds.get(ENGINE_REFUSED, 0),
                "crashes": self.kinds.get(CRASH, 0), "escaped": self.kinds.get(ESCAPED, 0),
                **{k.replace(" ", "_"): v for k, v in self.escapes.items()},
                "inputs_per_s": self.tried / self.target_s if self.target_s else 0.0,
                "baseline_per_s": self.tried / self.baseline_s if self.baseline_s else 0.0,
                "ratio": self.target_s / self.baseline_s if self.baseline_s else 0.0,
                "target_s": self.target_s, "baseline_s": self.baseline_s,
                "wall_s": self.wall_s, "found": self.found, "notes": self.notes}


def campaign(tally: Tally, strategy, check, inputs: int, chunk: int, base_seed: int,
             per_example: int = 1) -> None:
    """Run `check(example)` over hypothesis examples of `strategy` until `inputs` inputs were
    tried (an example and the mutants `check` derives from it, about `per_example` in all)."""
    start = time.perf_counter()
    rounds = 0
    while tally.tried < inputs:
        n = max(1, min(chunk, (inputs - tally.tried) // per_example))

        @seed(base_seed + rounds)
        @settings(settings.get_profile("fuzz-campaign"), max_examples=n)
        @given(strategy)
        def run(example):
            tally.generated += 1
            check(example)

        run()
        rounds += 1
        log.info("%s: %d inputs of %d (%d generated), %s", tally.target, tally.tried, inputs,
                 tally.generated, dict(tally.kinds))
    tally.wall_s = time.perf_counter() - start


def timed(tally: Tally, target, baseline, text: str):
    t0 = time.perf_counter()
    verdict = target()
    t1 = time.perf_counter()
    baseline()
    tally.target_s += t1 - t0
    tally.baseline_s += time.perf_counter() - t1
    tally.count(verdict, text)


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - the baseline's answer does not matter, its time does
        pass


def body_target(kind: str, args) -> Tally:
    tally = Tally(kind)
    normalizer = Normalizer()
    content_type = PROTOBUF if kind == "protobuf" else JSON
    bodies = protobuf_bodies if kind == "protobuf" else json_bodies
    strategy = st.sampled_from(["logs", "traces"]).flatmap(
        lambda signal: st.tuples(st.just(signal), bodies(signal)))

    def one(signal: str, body: bytes) -> None:
        request_type = BY_NAME[signal].request_type
        baseline = (lambda: request_type.FromString(body)) if kind == "protobuf" else \
            (lambda: json.loads(body))
        timed(tally, lambda: body_verdict(normalizer, signal, body, content_type),
              lambda: _quietly(baseline), body.decode("latin-1"))

    def check(example) -> None:
        signal, body = example
        one(signal, body)
        rng = random.Random(zlib.crc32(body) ^ args.seed)  # reproducible mutants
        mutants = byte_mutants(body, args.mutants, rng) if kind == "protobuf" else \
            json_mutants(body, args.mutants, rng)
        for mutant in mutants:
            tally.derived += 1
            one(signal, mutant)

    campaign(tally, strategy, check, args.examples, args.chunk, args.seed, 1 + args.mutants)
    return tally


def sql_target(args, client, database: str, scratch: Path) -> Tally:
    tally = Tally("sql")
    box = SqlSandbox(client, database, scratch / "sandbox")

    def check(text: str) -> None:
        query = box.fill(text)
        timed(tally, lambda: box.verdict(text), lambda: _quietly(lambda: client.query(
            "SELECT formatQuerySingleLine({q:String})", parameters={"q": query})), query)

    try:
        campaign(tally, queries(), check, args.sql_examples or args.examples, args.chunk,
                 args.seed)
    finally:
        box.close()
    tally.notes.append(f"{box.busy_retries} spurious 429s (the admin API's busy lock still held "
                       "for a moment after the previous answer) were retried")
    return tally


class _Bare(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def http_target(args, client, database: str, scratch: Path) -> Tally:
    tally = Tally("http")
    config = load_config(env={}, overrides={
        "dsn": client_dsn(scratch), "http_port": 0, "grpc_port": 0,
        "spool_dir": str(scratch / "spool"), "normalize_workers": 0,
        "max_request_size": 1024**2})
    service = CollectorService(config, client=client, database=database)
    service.start()
    try:
        with serving(_Bare) as bare:
            def check(request) -> None:
                body, content_type, encoding = request
                timed(tally, lambda: http_verdict(*http_send(service.http_port, *request)),
                      lambda: http_send(bare, *request), f"{content_type} {encoding} "
                      + body[:200].decode("latin-1"))

            campaign(tally, http_requests(), check, args.http_examples, args.chunk, args.seed)
    finally:
        service.shutdown()
    return tally


def client_dsn(scratch: Path) -> str:
    return f"chdb://{scratch / 'ch'}"


def report(rows: list[dict], args, argv: list[str], started: str) -> str:
    lines = ["<!-- bench:fuzz:start -->",
             "## Fuzz campaign: OTLP decoders + normalizer, the read-only SQL guard, /v1/logs",
             "", f"Measured {started} at commit `{machine.code_version('collector', 'core', 'tests')}` "
             f"on {len(os.sched_getaffinity(0))} CPU(s) ({machine.cpu_model()}), "
             f"Python {platform.python_version()}.", "", "```",
             "cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.fuzz "
             + " ".join(shlex.quote(a) for a in argv), "```", "",
             "The properties of `tests/fuzz/` (strategies and verdicts in `tests/builders/fuzz_*.py`), "
             f"hypothesis generation only, {args.chunk:,}-example chunks seeded from {args.seed}; "
             f"`protobuf`/`json` add {args.mutants} cheap mutants per generated body (byte flips, "
             "truncations, repeats / one JSON value replaced by an adversarial one). A crash is an "
             "exception escaping `normalize_body`, a 400 made by its catch-all for a failure no "
             "check foresaw, an accepted batch breaking an invariant (time outside 1970..2099, "
             "text not UTF-8, a non-finite number, extras over their bound, a record not "
             "accounted for), or a 5xx. Speed counts only the time in the target (for bodies: `normalize_body` and the invariant checks on its batch); the baseline "
             "is the same inputs through `ParseFromString` / `json.loads` / ClickHouse's parser "
             "alone (`formatQuerySingleLine`) / a bare local HTTP server answering 200.", "",
             "| target | inputs tried (generated + derived) | accepted | refused (4xx) | crashes "
             "| wrote | read a file | reached the network | inputs/s | baseline inputs/s "
             "| target ÷ baseline time | wall |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        refused = f"{r['refused']:,}" + (f" ({r['engine_refused']:,} by the engine)"
                                         if r["engine_refused"] else "")
        lines.append(
            f"| {r['target']} | {r['tried']:,} ({r['generated']:,} + {r['derived']:,}) "
            f"| {r['accepted']:,} | {refused} | **{r['crashes']}** | **{r['wrote']}** "
            f"| **{r['read_a_file']}** | **{r['reached_the_network']}** "
            f"| {r['inputs_per_s']:,.0f} | {r['baseline_per_s']:,.0f} | {r['ratio']:,.1f}x "
            f"| {r['wall_s'] / 60:.1f} min |")
    bad = sum(r["crashes"] + r["escaped"] for r in rows)
    lines += ["", f"Bar: 0 crashes, 0 5xx for bad data, 0 statements that write, read files or "
              f"reach the network -> **{'PASS' if bad == 0 else 'FAIL'}**."]
    for r in rows:
        for note in r.get("notes", []):
            lines += ["", f"- {r['target']}: {note}."]
        for found in r["found"]:
            lines += ["", f"- {r['target']}: `{found[:900]}`"]
    lines.append("<!-- bench:fuzz:end -->")
    return "\n".join(lines) + "\n"


def run_targets(targets: list[str], args) -> list[dict]:
    """The summaries of `targets`, run one after the other in this process (each written to
    `--json-out` as soon as it is done: a later failure keeps the earlier figures)."""
    tallies: list[Tally] = []

    def keep(tally: Tally) -> None:
        tallies.append(tally)
        if args.json_out:
            Path(args.json_out).write_text(json.dumps([t.summary() for t in tallies]))

    for target in ("protobuf", "json"):
        if target in targets:
            keep(body_target(target, args))
    if "sql" in targets or "http" in targets:
        with tempfile.TemporaryDirectory(prefix="policyscope-fuzz-") as tmp:
            scratch = Path(tmp)
            client, _ = connect(client_dsn(scratch), "fuzz")
            migrate(client, "fuzz")
            client.command("INSERT INTO fuzz.policy_decisions (event_id, event_time, policy_id, "
                           "outcome) VALUES ('a', now(), 'p', 'allow'), ('b', now(), 'p', 'deny')")
            if "sql" in targets:
                keep(sql_target(args, client, "fuzz", scratch))
            if "http" in targets:
                keep(http_target(args, client, "fuzz", scratch))
            client.close()
    return [t.summary() for t in tallies]


def run_in_processes(groups: list[list[str]], args) -> list[dict]:
    """Each group of targets in a process of its own (chDB allows one store per process, and
    the machine has more than one core); their summaries in the order given. `sql` may stand
    in several groups: each then tries its share of `--sql-examples` from a seed of its own,
    and the shares are added up."""
    import math
    import subprocess

    sql_groups = sum("sql" in g for g in groups)
    sql_total = args.sql_examples or args.examples
    with tempfile.TemporaryDirectory(prefix="policyscope-fuzz-jobs-") as tmp:
        outputs = [Path(tmp) / f"group{i}.json" for i in range(len(groups))]
        children = []
        for i, (group, out) in enumerate(zip(groups, outputs)):
            command = [sys.executable, "-m", "bench.fuzz", "--examples", str(args.examples),
                       "--sql-examples", str(math.ceil(sql_total / max(sql_groups, 1))),
                       "--http-examples", str(args.http_examples), "--mutants",
                       str(args.mutants), "--chunk", str(args.chunk), "--seed",
                       str(args.seed + 1_000_003 * i), "--no-write", "--targets",
                       ",".join(group), "--json-out", str(out)]
            children.append(subprocess.Popen(command, cwd=ROOT))
        codes = [child.wait() for child in children]
        rows: dict[str, dict] = {}
        for group, out, code in zip(groups, outputs, codes):
            if code:
                log.error("fuzz targets %s ended with exit code %d; keeping the figures of "
                          "those it finished", group, code)
            for row in json.loads(out.read_text()) if out.exists() else []:
                rows[row["target"]] = _added(rows[row["target"]], row) \
                    if row["target"] in rows else row
    order = [t for group in groups for t in group]
    return sorted(rows.values(), key=lambda r: order.index(r["target"]))


def _added(a: dict, b: dict) -> dict:
    """Two shares of one target's summary as one (rates from the summed times)."""
    out = {k: (a[k] + b[k] if isinstance(a[k], (int, float, list)) else a[k]) for k in a}
    out["inputs_per_s"] = out["tried"] / out["target_s"] if out["target_s"] else 0.0
    out["baseline_per_s"] = out["tried"] / out["baseline_s"] if out["baseline_s"] else 0.0
    out["ratio"] = out["target_s"] / out["baseline_s"] if out["baseline_s"] else 0.0
    out["wall_s"] = max(a["wall_s"], b["wall_s"])  # the shares ran side by side
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100_000,
                        help="inputs to try per target (protobuf, json: generated + mutants; "
                        "sql: generated)")
    parser.add_argument("--sql-examples", type=int, default=0, help="default: --examples")
    parser.add_argument("--http-examples", type=int, default=5_000)
    parser.add_argument("--mutants", type=int, default=9,
                        help="cheap mutants tried around each generated protobuf/JSON body")
    parser.add_argument("--chunk", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--targets", default="protobuf,json,http/sql/sql",
                        help="comma-separated targets; '/' separates groups run in parallel "
                        "processes (sql may be in several: each runs a share)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "RESULTS.md"))
    parser.add_argument("--no-write", action="store_true", help="print JSON only")
    parser.add_argument("--json-out", help="also write the summaries as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("collector").setLevel(logging.ERROR)  # the catch-all's one log per kind
    logging.getLogger("core.storage").setLevel(logging.WARNING)  # a reconnection per refusal
    logging.getLogger("schemas.migrations").setLevel(logging.WARNING)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    groups = [g.split(",") for g in args.targets.split("/")]
    rows = run_targets(groups[0], args) if len(groups) == 1 else run_in_processes(groups, args)
    print(json.dumps(rows, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows))
    if not args.no_write:
        write_section(Path(args.output), "fuzz", report(rows, args, argv, started))
    return 1 if any(r["crashes"] or r["escaped"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
