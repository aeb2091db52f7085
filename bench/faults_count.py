"""Counting the stored table against what was acknowledged, number by number.

`python -m bench.faults_count DSN OUT` reads a stopped collector's store -- in a process of its
own, since chDB opens one store per process and the caller (a test session) may hold another --
and writes its decision rows grouped by (`resource_id`, `event_id`) to OUT, an Arrow IPC file.
`tally_store` runs it; `check` compares the groups with the event set and the requests the
clients saw acknowledged.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench.faults_traffic import DIGITS, NUMBER_PREFIX, EventSet

ROOT = Path(__file__).resolve().parents[1]
_NUMBER = f"^{NUMBER_PREFIX}[0-9]{{{DIGITS}}}$"
# Rollups the materialized views fill at insert time: a row inserted twice is counted twice
# there even after the table's ReplacingMergeTree merges have collapsed the copies.
ROLLUPS = ("decisions_1m", "decisions_1h")


@dataclass
class Count:
    sent: int  # events in the set
    acknowledged: int  # events of requests a client read a 200 for
    stored_acknowledged: int  # acknowledged events with at least one row
    lost: int  # acknowledged events with no row: must be 0
    duplicated: int  # event numbers with more than one row: must be 0
    extra_rows: int  # rows beyond one per number
    unacknowledged: int  # events of requests never acknowledged (abandoned, given up)
    unacknowledged_stored: int  # of those, stored (allowed either way)
    phantom_rows: int  # rows of numbers never sent (a torn frame's, say): must be 0
    mismatched_rows: int  # rows whose event_id is not the one of their number: must be 0
    foreign_rows: int  # decision rows without a campaign number at all: must be 0
    event_table_rows: int  # rows in policy_events (the set has only decisions): must be 0
    stored_rows: int
    # events the rollups counted minus distinct rows stored: must be 0 (> 0: some row was
    # inserted more than once, whatever the table's merges collapsed since)
    rollup_excess: dict = field(default_factory=dict)
    lost_examples: list = field(default_factory=list)
    duplicate_examples: list = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        out = []
        for name in ("lost", "duplicated", "phantom_rows", "mismatched_rows", "foreign_rows",
                     "event_table_rows"):
            if getattr(self, name):
                out.append(f"{name} = {getattr(self, name)}")
        out += [f"{rollup} counted {excess:+,} events beyond the distinct rows stored"
                for rollup, excess in self.rollup_excess.items() if excess]
        return out

    def as_dict(self) -> dict:
        return asdict(self)


def tally_store(dsn: str, out: Path, timeout: float = 300.0) -> tuple[pa.Table, dict]:
    """(rows grouped by resource_id, event_id; {policy_events_rows, rollup: events counted})
    of a stopped store."""
    done = subprocess.run([sys.executable, "-m", "bench.faults_count", dsn, str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"counting the store {dsn} failed (rc={done.returncode}): "
                           f"{done.stderr[-2000:]}")
    with pa.OSFile(str(out), "rb") as source:
        table = pa.ipc.open_file(source).read_all()
    return table, {k.decode(): int(v) for k, v in table.schema.metadata.items()}


def check(groups: pa.Table, totals: dict, event_set: EventSet,
          acknowledged_requests: bytearray) -> Count:
    """Compare the stored groups with the set: every acknowledged number exactly once."""
    n = event_set.events
    resource_ids, event_ids = groups.column("resource_id"), groups.column("event_id")
    rows = groups.column("rows").to_numpy().astype(np.int64)
    numbered = pc.match_substring_regex(resource_ids, _NUMBER).to_numpy(zero_copy_only=False)
    digits = pc.utf8_slice_codeunits(pc.filter(resource_ids, numbered), len(NUMBER_PREFIX))
    numbers = pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False)
    expected_ids = pc.binary_join_element_wise(event_set.id_prefix, digits, "")
    mismatched = ~pc.equal(pc.filter(event_ids, numbered), expected_ids).to_numpy(
        zero_copy_only=False)
    numbered_rows = rows[numbered]
    in_set = numbers < n
    per_number = np.bincount(numbers[in_set], weights=numbered_rows[in_set], minlength=n)
    per_number = per_number.astype(np.int64)
    acked = np.repeat(np.frombuffer(bytes(acknowledged_requests), dtype=np.uint8).astype(bool),
                      event_set.per_request)[:n]
    stored = per_number > 0
    lost = acked & ~stored
    duplicated = per_number > 1
    return Count(
        sent=n, acknowledged=int(acked.sum()), stored_acknowledged=int((acked & stored).sum()),
        lost=int(lost.sum()), duplicated=int(duplicated.sum()),
        extra_rows=int((per_number[duplicated] - 1).sum()),
        unacknowledged=int((~acked).sum()), unacknowledged_stored=int((~acked & stored).sum()),
        phantom_rows=int(numbered_rows[~in_set].sum()),
        mismatched_rows=int(numbered_rows[mismatched].sum()),
        foreign_rows=int(rows[~numbered].sum()), event_table_rows=totals["policy_events_rows"],
        stored_rows=int(rows.sum()),
        rollup_excess={r: totals[r] - groups.num_rows for r in ROLLUPS},
        lost_examples=np.flatnonzero(lost)[:10].tolist(),
        duplicate_examples=np.flatnonzero(duplicated)[:10].tolist())


def main(argv: list[str]) -> int:
    from core.storage import connect

    dsn, out = argv
    client, _ = connect(dsn, "policyscope", create_database=False)
    try:
        table = client.query_arrow("SELECT resource_id, event_id, count() AS rows "
                                   "FROM policy_decisions GROUP BY resource_id, event_id")
        counts = {"policy_events_rows": client.command("SELECT count() FROM policy_events")}
        for rollup in ROLLUPS:
            counts[rollup] = client.command(f"SELECT sum(total) FROM {rollup}")
    finally:
        client.close()
    table = table.replace_schema_metadata({k: str(int(v)) for k, v in counts.items()})
    with pa.OSFile(out, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
