"""The last snapshot of each state-only source, kept in ClickHouse (`import_snapshots`,
migration 0016): every ClickHouse call of the importers is here.

`load(keys)` reads the snapshots of many sources in one query; `open_sources(prefix)` names
the sources under a prefix that still have open findings (a cluster's PolicyReports: a report
that disappeared from a complete list is diffed as empty); `save(diffs)` writes what changed
-- the findings opened (open), those remediated (closed) and every source's header (the
snapshot's time) -- in one insert, and is called only once the diff's events are durable.
A crash between the events and the save leaves the old snapshot: the next import emits the
same events again, with the same ids, and they are stored once.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Iterable

from clickhouse_connect.driver.client import Client

from importers.diff import Diff, OpenFinding, Snapshot
from schemas.tables import IMPORT_SNAPSHOTS

COLUMNS = ["source_key", "finding_id", "observed_at", "open", "violation_id", "first_seen",
           "attributes"]
HEADER = ""  # finding_id of a source's header row


class SnapshotStore:
    def __init__(self, client: Client, database: str | None = None):
        self.client = client
        self.table = f"{database or client.database}.{IMPORT_SNAPSHOTS}"

    def load(self, keys: Iterable[str]) -> dict[str, Snapshot]:
        """The stored snapshot of each of `keys` that has one."""
        keys = sorted(set(keys))
        if not keys:
            return {}
        rows = self.client.query(
            f"SELECT source_key, finding_id, toUnixTimestamp64Milli(observed_at), open, "
            f"violation_id, toUnixTimestamp64Milli(first_seen), attributes "
            f"FROM {self.table} FINAL WHERE source_key IN {{keys:Array(String)}} "
            f"AND (open OR finding_id = '')", parameters={"keys": keys}).result_rows
        snapshots: dict[str, Snapshot] = {}
        findings: list[tuple] = []
        for key, finding_id, observed, is_open, violation, first, attrs in rows:
            if finding_id == HEADER:
                snapshots[key] = Snapshot(key, int(observed))
            else:
                findings.append((key, finding_id, violation, first, attrs))
        for key, finding_id, violation, first, attrs in findings:
            snapshot = snapshots.setdefault(key, Snapshot(key, 0))
            snapshot.open[finding_id] = OpenFinding(finding_id, violation, int(first),
                                                    json.loads(attrs))
        return snapshots

    def open_sources(self, prefix: str) -> list[str]:
        """Sources whose key starts with `prefix` and that hold open findings."""
        rows = self.client.query(
            f"SELECT DISTINCT source_key FROM {self.table} FINAL "
            f"WHERE startsWith(source_key, {{prefix:String}}) AND open AND finding_id != ''",
            parameters={"prefix": prefix}).result_rows
        return sorted(r[0] for r in rows)

    def save(self, diffs: Iterable[Diff]) -> int:
        """Write the new snapshots of `diffs` (stale ones skipped); rows written."""
        rows = []
        for d in diffs:
            if d.stale:
                continue
            at = _utc(d.listing.observed_ms)
            key = d.listing.source_key
            rows.append([key, HEADER, at, False, "", at, "{}"])
            rows += [_row(key, f, at, True) for f in d.opened]
            rows += [_row(key, f, at, False) for f in d.remediated]
        if rows:
            self.client.insert(self.table, rows, column_names=COLUMNS)
        return len(rows)


def _row(key: str, finding: OpenFinding, at: datetime, is_open: bool) -> list:
    return [key, finding.finding_id, at, is_open, finding.violation_id,
            _utc(finding.first_seen_ms),
            json.dumps(finding.attributes, sort_keys=True, separators=(",", ":"))]


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc)
