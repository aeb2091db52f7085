"""One import: parse the whole input, diff its listings against the stored snapshots, pack the
events into OTLP requests, deliver them, and only then save the new snapshots.

    plan = prepare("policyreport", document, options, store)   # parse + diff: no writes
    delivery.deliver(plan.requests, progress)                    # returns once durable
    finish(plan, store)                                          # the new snapshots

`run()` does the three. Nothing is delivered before the whole input has been read, so a
malformed file imports nothing. A `Delivery` (the app shell's: OTLP/HTTP to a collector, or
the collector's normalizer and writer in process) returns only once every record is durable
and raises `DeliveryFailed` otherwise; then the snapshots stay as they were and running the
import again is safe: the events carry the same ids and are stored once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Protocol

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from importers import registry
from importers.diff import Diff, Listing, diff
from importers.documents import Document
from importers.parsing import Options, Parsed
from importers.records import Event, requests as pack
from importers.snapshots import SnapshotStore

Progress = Callable[[int, int], None]  # (records delivered, total)


class Delivery(Protocol):
    def deliver(self, requests: list[ExportLogsServiceRequest],
                progress: Progress | None = None) -> None:
        """Make every record of `requests` durable, or raise DeliveryFailed."""


@dataclass
class Plan:
    kind: str
    source: str
    parsed: Parsed
    diffs: list[Diff]
    events: list[Event]
    requests: list[ExportLogsServiceRequest]
    diffed: bool  # False: the KIND has listings but no snapshot store was given (--no-diff)

    def report(self) -> "ImportReport":
        kinds = Counter(e.kind for e in self.events)
        statuses = Counter(e.attributes.get("policy.violation.status") for e in self.events
                           if e.kind == "policy.violation")
        return ImportReport(
            self.kind, self.source, self.parsed.objects, dict(kinds),
            opened=statuses["opened"], remediated=statuses["remediated"],
            unlisted=sum(d.unlisted for d in self.diffs),
            capped=sum(1 for d in self.diffs if not d.listing.complete),
            stale=[d.listing.source_key for d in self.diffs if d.stale],
            sources=len(self.diffs), skipped=dict(self.parsed.skipped),
            diffed=self.diffed, requests=len(self.requests))


@dataclass
class ImportReport:
    kind: str
    source: str
    objects: int
    events: dict[str, int]
    opened: int = 0
    remediated: int = 0
    unlisted: int = 0  # open findings capped listings left out: kept open
    capped: int = 0  # sources whose listing was capped
    stale: list[str] = field(default_factory=list)  # sources older than their snapshot
    sources: int = 0  # state-only sources diffed
    skipped: dict[str, int] = field(default_factory=dict)
    diffed: bool = True
    requests: int = 0


def parse(kind: str, document: Document, options: Options) -> Parsed:
    """Read the whole input; raises MalformedInput (nothing was written) or KeyError (unknown
    KIND)."""
    return registry.get(kind).parse(document, options)


def prepare(kind: str, document: Document | Parsed, options: Options,
            snapshots: SnapshotStore | None, *, source: str = "") -> Plan:
    """Parse (unless given what `parse` returned) and diff against `snapshots` (None: no
    diff, --no-diff). Reads the stored snapshots of the input's sources, writes nothing."""
    if isinstance(document, Document):
        source = document.name
        parsed = parse(kind, document, options)
    else:
        parsed = document
    diffs: list[Diff] = []
    events = list(parsed.events)
    if snapshots is not None and parsed.listings:
        listings = list(parsed.listings)
        listed = {l.source_key for l in listings}
        for prefix in parsed.prune_prefixes:
            for key in snapshots.open_sources(prefix):
                if key not in listed:  # gone from a complete list: diffed as empty
                    listings.append(Listing(key, (), options.at_ms))
        stored = snapshots.load(l.source_key for l in listings)
        diffs = [diff(stored.get(l.source_key), l) for l in listings]
        for d in diffs:
            events += d.events
    resource = options.facts.resource()
    return Plan(kind, source, parsed, diffs, events,
                list(pack(events, resource, observed_ms=options.at_ms)),
                diffed=snapshots is not None or not parsed.listings)


def finish(plan: Plan, snapshots: SnapshotStore | None) -> int:
    """Save the plan's new snapshots; call only once its requests are durable."""
    if snapshots is None or not plan.diffs:
        return 0
    return snapshots.save(plan.diffs)


def run(kind: str, document: Document, options: Options, delivery: Delivery,
        snapshots: SnapshotStore | None, progress: Progress | None = None) -> ImportReport:
    plan = prepare(kind, document, options, snapshots)
    delivery.deliver(plan.requests, progress)
    finish(plan, snapshots)
    return plan.report()
