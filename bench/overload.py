"""Overload campaign: twice the sustainable rate for a minute, against `policyscope collector`.

1. Calibrate (the baseline, same run, same machine): closed-loop clients send pre-serialized
   OTLP/HTTP protobuf requests as fast as the collector acknowledges them for `--calibrate`
   seconds; the acknowledged events/s is the sustainable rate R.
2. Overload: open-loop clients offer 2 x R (`--factor`) for `--duration` seconds -- a request
   is due every 1/(rate/records) seconds whether or not earlier ones were answered. A refused
   request (429 / 503) is sent again after its Retry-After (capped at 1 s), as an OTLP
   exporter would; what is still unacknowledged at the end is counted, not hidden.
3. Meanwhile the collector's resident memory (process + normalizer workers) is sampled every
   50 ms against its configured `memory_limit`.
4. Afterwards every acknowledged request's events are looked up in ClickHouse: lost (acked,
   not stored) and duplicated (stored twice) must both be 0.

Run: `PYTHONPATH=. .venv/bin/python -m bench.overload --output bench/RESULTS.md`
(`--duration 10 --calibrate 5` for a quick look).
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench import ingest
from bench.machine import code_version, cpu_model
from bench.results import write_section
from core.units import parse_size

SECTION = "overload"


def format_size(n: float) -> str:
    return f"{n / 1024**2:,.0f} MiB"


def describe_machine() -> str:
    import os
    return f"{cpu_model()}, {os.cpu_count()} cores, code {code_version('collector', 'bench')}"


class Sender(threading.Thread):
    """Takes request indexes from `due`, POSTs them on one keep-alive connection, records
    acknowledgements; a refused request goes back to `due` after its Retry-After."""

    def __init__(self, port: int, bodies: list[bytes], due: queue.Queue, state: dict):
        super().__init__(daemon=True)
        self.port, self.bodies, self.due, self.state = port, bodies, due, state
        self.conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> tuple[int, float]:
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                self.conn.request("POST", "/v1/logs", body,
                                  {"Content-Type": "application/x-protobuf"})
                response = self.conn.getresponse()
                response.read()
                retry = float(response.headers.get("Retry-After") or 1)
                if response.headers.get("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return response.status, retry
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
        return 0, 1.0  # connection refused or reset: try again later

    def run(self) -> None:
        state = self.state
        while True:
            item = self.due.get()
            if item is None:
                if self.conn is not None:
                    self.conn.close()
                return
            index, not_before = item
            wait = not_before - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            status, retry_after = self.post(self.bodies[index])
            with state["lock"]:
                state["answers"][status] += 1
                if status == 200:
                    state["acked"].add(index)
                elif not state["closing"]:
                    self.due.put((index, time.monotonic() + min(retry_after, 1.0)))
                else:
                    state["unacked"].add(index)


def new_state() -> dict:
    return {"lock": threading.Lock(), "answers": Counter(), "acked": set(), "unacked": set(),
            "closing": False}


def closed_loop(port: int, bodies: list[bytes], indexes: range, seconds: float,
                connections: int) -> tuple[dict, float]:
    """Send as fast as acknowledged; returns the state and the elapsed seconds."""
    state, due = new_state(), queue.Queue()
    senders = [Sender(port, bodies, due, state) for _ in range(connections)]
    for s in senders:
        s.start()
    feed = iter(indexes)
    start = time.monotonic()
    for _ in range(connections * 2):
        due.put((next(feed), 0.0))
    while time.monotonic() - start < seconds:
        with state["lock"]:
            outstanding = due.qsize()
        while outstanding < connections:
            try:
                due.put((next(feed), 0.0))
            except StopIteration:
                break
            outstanding += 1
        time.sleep(0.005)
    elapsed = time.monotonic() - start
    with state["lock"]:
        state["closing"] = True
    drain(due, senders, state)
    return state, elapsed


def drain(due: queue.Queue, senders: list[Sender], state: dict) -> None:
    """Stop feeding; what is queued is still sent once, then the senders stop."""
    for _ in senders:
        due.put(None)
    for s in senders:
        s.join(120)
    while True:
        try:
            item = due.get_nowait()
        except queue.Empty:
            break
        if item is not None:
            state["unacked"].add(item[0])


def open_loop(port: int, bodies: list[bytes], indexes: range, seconds: float,
              requests_per_s: float, connections: int) -> tuple[dict, float, int]:
    state, due = new_state(), queue.Queue()
    senders = [Sender(port, bodies, due, state) for _ in range(connections)]
    for s in senders:
        s.start()
    start, offered = time.monotonic(), 0
    for index in indexes:
        at = start + offered / requests_per_s
        if at - start >= seconds:
            break
        now = time.monotonic()
        if at > now:
            time.sleep(at - now)
        due.put((index, 0.0))
        offered += 1
    elapsed = time.monotonic() - start
    with state["lock"]:
        state["closing"] = True
    drain(due, senders, state)
    return state, elapsed, offered


def stored_per_request(port: int, dsn: str, run_id: str) -> dict[int, tuple[int, int]]:
    """request index -> (stored rows, distinct event ids), from the event ids (the records'
    `log.record.uid`, `bench-<run>-<request>-<record>`)."""
    query = ("SELECT toUInt32(splitByChar('-', event_id)[3]) AS r, "
             "count(), uniqExact(event_id) FROM policy_decisions "
             f"WHERE startsWith(event_id, 'bench-{run_id}-') GROUP BY r")
    from collector.admin import address_file, read_address
    import urllib.request

    published = read_address(address_file(dsn, "policyscope"))
    token = published[1] if published else ""
    out: dict[int, tuple[int, int]] = {}
    for limit_offset in range(0, 10**7, 90_000):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/sql", data=json.dumps(
                {"query": f"{query} ORDER BY r LIMIT 90000 OFFSET {limit_offset}"}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=120) as r:
            rows = json.loads(r.read())["rows"]
        for row in rows:
            r_, count, distinct = row.values()
            out[int(r_)] = (int(count), int(distinct))
        if len(rows) < 90_000:
            return out
    return out


def wait_landed(port: int, expected_min: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = ingest.scrape(port)
        if m.get("policyscope_spool_backlog_bytes", 1) == 0 and \
                m.get("policyscope_writer_inserted_rows_total", 0) >= expected_min:
            return
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="overload seconds")
    parser.add_argument("--calibrate", type=float, default=20.0,
                        help="seconds of closed-loop sending that measure the sustainable rate")
    parser.add_argument("--factor", type=float, default=2.0, help="offered rate ÷ sustainable")
    parser.add_argument("--records-per-request", type=int, default=200)
    parser.add_argument("--connections", type=int, default=48,
                        help="closed-loop connections while calibrating (4x as many after)")
    parser.add_argument("--memory-limit", default="2GiB",
                        help="the collector's memory_limit for the run")
    parser.add_argument("--output", type=Path, default=None,
                        help="write the section into this RESULTS.md")
    parser.add_argument("--collector-log-level", default="WARNING")
    args = parser.parse_args(argv)
    limit = parse_size(args.memory_limit)

    work = Path(tempfile.mkdtemp(prefix="policyscope-overload-"))
    dsn = f"chdb://{work / 'ch'}"
    port, grpc_port = ingest.free_port(), ingest.free_port()
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYSCOPE_")}
    env.update({"POLICYSCOPE_MEMORY_LIMIT": str(limit), "PYTHONPATH": str(ingest.ROOT)})
    proc = subprocess.Popen(ingest.collector_command(args, dsn, work / "spool", port,
                                                     grpc_port), env=env)
    try:
        for _ in range(600):
            try:
                ingest.http_get(port, "/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit("collector exited during start-up")
                time.sleep(0.1)
        # enough distinct bodies for both phases at up to ~60k events/s
        budget = int((args.calibrate + args.duration * args.factor) * 60_000
                     / args.records_per_request) + 100
        print(f"building {budget} requests of {args.records_per_request} records...",
              file=sys.stderr)
        bodies = ingest.build_requests(budget, args.records_per_request)
        run_id = ingest.RUN_ID
        sampler = ingest.RssSampler(proc.pid)
        sampler.start()

        calibrate_state, calibrate_s = closed_loop(port, bodies, range(0, budget),
                                                   args.calibrate, args.connections)
        calm_peak = sampler.peak
        sustainable = len(calibrate_state["acked"]) * args.records_per_request / calibrate_s
        print(f"sustainable: {sustainable:,.0f} events/s", file=sys.stderr)
        first = max(calibrate_state["acked"] | calibrate_state["unacked"], default=-1) + 1
        target = args.factor * sustainable / args.records_per_request
        sampler.peak = 0
        over_state, over_s, offered = open_loop(port, bodies, range(first, budget),
                                                args.duration, target, args.connections * 4)
        over_peak = sampler.peak
        sampler.stop.set()
        acked = calibrate_state["acked"] | over_state["acked"]
        wait_landed(port, len(acked) * args.records_per_request)
        stored = stored_per_request(port, dsn, run_id)
        lost = sum(args.records_per_request - stored.get(i, (0, 0))[1] for i in acked)
        duplicated = sum(count - distinct for count, distinct in stored.values())
        unacked_stored = sum(1 for i in stored if i not in acked)
        metrics = ingest.scrape(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(120)
        shutil.rmtree(work, ignore_errors=True)

    answers = over_state["answers"]
    result = {
        "sustainable_events_per_s": round(sustainable),
        "offered_events_per_s": round(offered * args.records_per_request / over_s),
        "acked_events_per_s_under_overload": round(
            len(over_state["acked"]) * args.records_per_request / over_s),
        "answers": {str(k): v for k, v in sorted(answers.items())},
        "memory_limit_bytes": limit,
        "peak_rss_calibration": calm_peak,
        "peak_rss_overload": over_peak,
        "acked_requests": len(acked), "lost_events": lost, "duplicated_events": duplicated,
        "unacked_requests_stored": unacked_stored,
        "unacked_at_end": len(over_state["unacked"]),
        "refused_by_limit": {k.split('"')[1]: int(v) for k, v in metrics.items()
                             if k.startswith("policyscope_refused_requests_total")},
        "collector_exit": rc,
    }
    print(json.dumps(result, indent=2))
    ok = lost == 0 and duplicated == 0 and over_peak < limit and rc == 0
    if args.output is not None:
        command = ("PYTHONPATH=. .venv/bin/python -m bench.overload"
                   + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])))
        refused = ", ".join(f"{k} {v}" for k, v in result["refused_by_limit"].items())
        section = "\n".join([
            f"<!-- bench:{SECTION}:start -->", "## Overload: 2x the sustainable rate", "",
            f"`{command}` — {describe_machine()}", "",
            "| figure | value |", "| --- | --- |",
            f"| sustainable rate (closed loop, {args.calibrate:g} s: the baseline) | "
            f"{result['sustainable_events_per_s']:,} events/s |",
            f"| offered for {args.duration:g} s | {result['offered_events_per_s']:,} events/s "
            f"(**{result['offered_events_per_s'] / max(1, sustainable):.2f}x** sustainable) |",
            f"| acknowledged under overload | {result['acked_events_per_s_under_overload']:,} "
            f"events/s (**{result['acked_events_per_s_under_overload'] / max(1, sustainable):.2f}x**"
            " sustainable) |",
            f"| answers under overload | {', '.join(f'{k}: {v}' for k, v in result['answers'].items())}"
            " (0 = connection closed) |",
            f"| refused, by limit | {refused} |",
            f"| peak RSS, collector + workers | calibration {format_size(calm_peak)}, overload "
            f"{format_size(over_peak)} = **{over_peak / limit:.2f}x** of `memory_limit` "
            f"{format_size(limit)} |",
            f"| acknowledged requests | {len(acked):,} ({args.records_per_request} events each) |",
            f"| lost / duplicated events | **{lost} / {duplicated}** |",
            f"| unacknowledged at the end (stored anyway) | {result['unacked_at_end']} "
            f"({unacked_stored}) |",
            f"| collector exit after SIGTERM | {rc} |",
            f"| verdict | {'PASS' if ok else 'FAIL'} (0 lost, 0 duplicated, memory under the limit, exit 0) |",
            "", f"<!-- bench:{SECTION}:notes:start -->", f"<!-- bench:{SECTION}:notes:end -->",
            f"<!-- bench:{SECTION}:end -->", ""])
        write_section(args.output, SECTION, section)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
