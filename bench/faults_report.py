"""The `faults` section of bench/RESULTS.md, from a `bench.faults` result.

The hand-written notes block (NOTES) is written only when the section has none yet; after
that `bench.results.write_section` keeps the file's own notes across re-runs."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone

from bench import machine
from bench.results import markers

START, END, NOTES_START, NOTES_END = markers("faults")

NOTES = f"""{NOTES_START}
### What each fault does (hand-written; `bench/faults.py` keeps this block on re-runs)

* **Numbered events.** Event *n* carries `log.record.uid = fc-<run>-<n>` and
  `policy.resource.id = num-<n>`; afterwards the store is read in a process of its own and
  grouped by number. *Acknowledged* = in a request a client read a 200 for; *lost* = an
  acknowledged number with no row; *duplicated* = a number with more than one row (counted by
  number, not by event id); *phantom* = a row whose number was never sent. The table is a
  ReplacingMergeTree, whose merges collapse copies of a row sooner or later, so a row inserted
  twice is looked for where the copies stay: the rollups the materialized views fill at insert
  time must count each stored event once (`decisions_1m` and `decisions_1h` totals = distinct
  rows). Every 100th request is sent once and its connection closed unread: those events are
  never acknowledged and may or may not be stored.
* **SIGKILL** (`bench/faults_collector.py`): the collector's main process only, as the OOM
  killer would, at a moment its spool holds frames the writer has not released (the process
  is frozen with SIGSTOP while its spool files are looked at, then killed frozen), so every
  restart has something to replay. Then the campaign waits for it and its normalizer workers
  to exit (the chDB store lock frees with them) and restarts it on the same port and spool.
  Requests in flight fail with a connection error and are retried: a request fsync'd but not
  yet answered is sent again, so the spool replay and the retry both carry it, and the writer
  must store it once.
* **Torn spool tail** (`bench/faults_spool.py`, after the first kill, collector down): a crash
  in mid-write leaves the newest segment ending in part of a frame. Only an unacknowledged
  frame can be torn (an acknowledged one was fsync'd before its answer), so: if the last frame
  holds only requests no client saw acknowledged, it is cut in the middle of its payload (real
  rows torn away; their clients retry them); otherwise half a frame of 100 never-sent events
  is appended. The restarted collector must cut exactly those bytes (its log says so; checked)
  and replay every complete frame before them; the never-sent events must not appear.
* **Storage outage** (`bench/faults_launcher.py` starts the collector with its writer's
  client wrapped; no hook in the collector): while a flag file exists the writer's insert
  attempts fail in turn as "unreachable" (the first call raises clickhouse-connect's
  `OperationalError`) and as "answer lost" (every call runs, and the INSERT into the table
  raises only after the server stored the rows), so the retried batch must be deduplicated.
  A third into the outage comes the second SIGKILL: the restarted collector replays a full
  spool into a storage still down.
* **Spool limit**: `spool_max_size` is small (8 MiB of Arrow rows, ~33k events), so during
  the outage the backlog passes it and new requests get 503 + `Retry-After` (the clients wait
  at most 0.25 s, then retry). Without faults it is passed now and then too, when ingest
  outruns the writer's 1 s batches: those are the baseline's 503s.
* **Third SIGKILL** at 75% of the events, after the outage, while the writer drains the
  backlog it built.
* **Not covered: a storage that refuses instead of being unreachable.** The outage raises
  `OperationalError`, which the writer retries for as long as it lasts. A server that answers
  with an error of its own for a while -- `TOO_MANY_PARTS`, a memory limit, a read-only or
  full disk; on chDB every engine error is a `DatabaseError`, never an `OperationalError` --
  is taken for a poison batch after 5 tries (~3 s), bisected, and every row of it parked in
  `spool_dir/dead-letter/`: acknowledged rows out of the table until someone replays them
  (the same campaign with the outage raising `DatabaseError(... TOO_MANY_PARTS)`: lost 300 of
  3,600 in 8 s). Reported to the lead with a repro; not in the campaign until it is settled
  whether the writer should tell transient refusals apart.
* **Stop**: once every request is acknowledged and the spool's backlog is 0, SIGTERM; the
  collector must drain and exit 0.
* **The ratio** (events/s acknowledged with faults ÷ without -- the mean of a baseline before
  and one after the fault phase, so a machine busier during one phase shows as the two
  baselines disagreeing; same event set, same config, same run) is dominated by the time the
  faults take -- the 60 s outage, the writer's retry backoff after it (doubling from 0.2 s up
  to 30 s, so acknowledgements resume up to 30 s after storage is back: the timeline shows
  when) and three restarts -- so it measures how fast the collector gets back to work, not
  ingest speed; compare it only between runs of the same plan and size.
{NOTES_END}"""


def _cell(phase: dict | None, fn) -> str:
    return "–" if phase is None else fn(phase)


def markdown(result: dict) -> str:
    plan = result["plan"]
    faults = result["phases"]["faults"]
    bases = [result["phases"].get(n) for n in ("baseline", "baseline_after")]
    fr = faults["results"]

    def row(label: str, fn) -> str:
        return f"| {label} | {_cell(faults, fn)} | " + " | ".join(_cell(b, fn) for b in bases) \
            + " |"

    def c(p):
        return p["results"]["count"]

    def answers(p):
        s = p["results"]["statuses"]
        other = sum(v for k, v in s.items() if k not in ("200", "503", "429"))
        return (f"{s.get('200', 0):,} / {s.get('503', 0):,} / {s.get('429', 0):,} / {other:,}; "
                f"{p['results']['connection_errors']:,} connection errors")

    def starts(p):
        return "; ".join(f"#{i['number']} ready {i['ready_s']} s, {i['replayed_rows']:,} rows "
                         f"replayed" + (f", store locked {i['lock_waits']}x" if i['lock_waits']
                                        else "") for i in p["results"]["incarnations"])

    def leftovers(p):
        s = p["results"]["spool_leftovers"]
        return (f"{s['segments']} segment(s), {s['segment_rows']:,} rows; dead letters "
                f"{s['dead_letter_rows']:,} rows")

    timeline = "\n".join(f"| +{t:.1f} s | {text} |" for t, text in faults["timeline"])
    ratio = result.get("rate_ratio")
    verdict = "**PASS**: nothing acknowledged lost, nothing stored twice, every fault " \
        "exercised" if result["verdict"] == "PASS" else "**FAIL**: " + "; ".join(
            result["problems"])
    settings = ", ".join(f"`{k}: {v}`" for k, v in {
        "spool_max_size": plan["spool_max_size"], "retry_after": plan["retry_after"]}.items())
    return f"""{START}
## Fault campaign: acknowledged means stored, through SIGKILLs, a storage outage, a full spool and a torn spool tail

Measured {result.get("date") or f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"} at commit \
`{machine.code_version("collector", "core", "schemas", "policyscope")}` on {os.cpu_count()} \
CPU(s) ({machine.cpu_model()}), Python {platform.python_version()}; {result['wall_seconds']} s \
in all.

```
{result['command']}
```

{plan['events']:,} `policy.decision` events, numbered, in {fr['requests']:,} OTLP/HTTP protobuf \
requests of {plan['per_request']:,}, sent by {plan['threads']} client threads that retry each \
request until a 200 (after connection errors, and after 503/429 following Retry-After capped \
at {plan['retry_cap']} s); every {plan['abandon_every']}th request is sent once and never read. \
Each phase runs a fresh collector on a scratch chDB store and spool: \
`{fr['collector_command']}`, config {settings} (defaults otherwise). Faults: \
{plan['kills']} SIGKILLs, a {plan['outage_s']:g} s storage outage, the spool limit, \
{"a torn spool tail after the first kill" if plan['tear'] else "no torn tail"}.

| figure | with faults | baseline before (no faults) | baseline after (no faults) |
|---|---|---|---|
{row("events acknowledged (of those sent)", lambda p: f"{c(p)['acknowledged']:,} of {c(p)['sent']:,}")}
{row("acknowledged events stored", lambda p: f"{c(p)['stored_acknowledged']:,}")}
{row("**lost** (acknowledged, no row)", lambda p: f"**{c(p)['lost']:,}**")}
{row("**duplicated** (numbers with more than one row)", lambda p: f"**{c(p)['duplicated']:,}**")}
{row("events counted twice by the rollup views (`decisions_1m` / `decisions_1h`)", lambda p: " / ".join(f"{v:+,}" if v else "0" for v in c(p)['rollup_excess'].values()))}
{row("unacknowledged events stored / unacknowledged", lambda p: f"{c(p)['unacknowledged_stored']:,} / {c(p)['unacknowledged']:,}")}
{row("phantom rows (numbers never sent) / id mismatches / other rows", lambda p: f"{c(p)['phantom_rows']:,} / {c(p)['mismatched_rows']:,} / {c(p)['foreign_rows'] + c(p)['event_table_rows']:,}")}
{row("answers 200 / 503 / 429 / other", answers)}
{row("SIGKILLs", lambda p: str(p['kills']))}
{row("collector starts", starts)}
{row("run time: to the last acknowledgement / to the spool drained", lambda p: f"{p['results']['ack_seconds']} s / {p['results']['landed_seconds']} s")}
{row("events/s acknowledged", lambda p: f"{p['results']['events_per_s_acknowledged'] or 0:,}")}
{row("SIGTERM exit code", lambda p: str(p['results']['rc']))}
{row("machine's 1-min load average at the phase's start (2 cores, shared)", lambda p: str(p['results']['load_average_1m_at_start']))}
{row("spool after the stop", leftovers)}

**Events/s acknowledged with faults ÷ without: {f"{ratio:.3f}" if ratio is not None else "n/a"}** \
({fr['events_per_s_acknowledged'] or 0:,} ÷ {result.get('baseline_events_per_s') or 0:,}, the \
mean of the baselines before and after; same event set, config and clients, same run).

Timeline of the fault phase (seconds since its traffic started):

| t | event |
|---|---|
{timeline}

{verdict}.

{NOTES}
{END}
"""
