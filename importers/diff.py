"""State-only sources diffed into a finding lifecycle: what a scan lists now, against what the
previous import of the same source listed, gives `policy.violation` events -- `opened` for a
finding not open before (at its first-seen time), `remediated` for an open finding the source
no longer lists (at the time of the snapshot that no longer lists it). M3 (MTTR) reads exactly
these (metrics/sli/remediation.py: remediated - opened).

Generic over sources: a `Listing` is a source key (`policyreport:<cluster>/<ns>/<report>`,
`gatekeeper:<cluster>/<constraint>`, later `trivy:<artifact>`), the findings it lists now
(each with an id stable within the source and the attributes its violation events carry) and
the time it was observed. A listing may be *capped*: Gatekeeper keeps at most 20 violations
per constraint in its status while `totalViolations` counts all; a vulnerability scanner may
list only the first N. A capped listing (`complete=False`) opens what it lists, but an open
finding it does not list is not remediated -- the source may merely have left it out -- it
stays open, counted in `Diff.unlisted`. Only a complete listing remediates.

Ids: a lifecycle is identified by (source key, finding id, first-seen time), so a finding
that comes back after a remediation is a new violation, and every event id is derived from
that content: re-importing the same file, or re-running an import whose snapshot was not
saved, emits the same events with the same ids (stored once).

A listing older than the stored snapshot (an archived file imported late) is not diffed: its
order against the stored state is unknown (`Diff.stale`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from importers.records import Event, stable_id

VIOLATION = "policy.violation"
SOURCE_ATTRIBUTE = "import.source"  # the source key, on every diff event (extra attribute)
FIRST_SEEN_ATTRIBUTE = "policy.violation.first_seen"  # RFC 3339, on remediated events


@dataclass(frozen=True)
class Finding:
    """One finding a source lists: `id` stable within the source (policy, rule, resource),
    `attributes` what its violation events carry (`policy.id` at least), `seen_ms` the
    earliest time the source says it held (a result's timestamp), if it says."""

    id: str
    attributes: dict[str, Any]
    seen_ms: int | None = None


@dataclass(frozen=True)
class Listing:
    source_key: str
    findings: tuple[Finding, ...]
    observed_ms: int
    complete: bool = True  # False: the source capped its list (see the module docstring)


@dataclass(frozen=True)
class OpenFinding:
    """A finding open in a snapshot: its lifecycle's violation id and first-seen time."""

    finding_id: str
    violation_id: str
    first_seen_ms: int
    attributes: dict[str, Any]


@dataclass
class Snapshot:
    """A source's last stored state: when it was taken and its open findings by id."""

    source_key: str
    taken_ms: int
    open: dict[str, OpenFinding] = field(default_factory=dict)


@dataclass
class Diff:
    listing: Listing
    events: list[Event] = field(default_factory=list)
    opened: list[OpenFinding] = field(default_factory=list)
    remediated: list[OpenFinding] = field(default_factory=list)
    unlisted: int = 0  # open findings a capped listing left out: kept open
    stale: bool = False  # the listing is older than the stored snapshot: nothing changes

    @property
    def changed(self) -> bool:
        return bool(self.opened or self.remediated)


def violation_id(source_key: str, finding_id: str, first_seen_ms: int) -> str:
    return stable_id("violation", source_key, finding_id, first_seen_ms)


def diff(previous: Snapshot | None, listing: Listing) -> Diff:
    """The events and snapshot changes of `listing` against `previous` (None: first import)."""
    out = Diff(listing)
    if previous is not None and listing.observed_ms < previous.taken_ms:
        out.stale = True
        return out
    before = previous.open if previous is not None else {}
    now = listing.observed_ms
    current: dict[str, Finding] = {}
    for finding in listing.findings:
        current.setdefault(finding.id, finding)  # a finding listed twice is one finding
    for finding_id, finding in current.items():
        if finding_id in before:
            continue
        first = min(finding.seen_ms, now) if finding.seen_ms is not None else now
        opened = OpenFinding(finding_id, violation_id(listing.source_key, finding_id, first),
                             first, dict(finding.attributes))
        out.opened.append(opened)
        out.events.append(_event(listing.source_key, opened, "opened", first))
    for finding_id, open_finding in before.items():
        if finding_id in current:
            continue
        if not listing.complete:
            out.unlisted += 1
            continue
        out.remediated.append(open_finding)
        out.events.append(_event(listing.source_key, open_finding, "remediated", now))
    return out


def _event(source_key: str, finding: OpenFinding, status: str, time_ms: int) -> Event:
    attrs = {**finding.attributes, "policy.violation.id": finding.violation_id,
             "policy.violation.status": status, SOURCE_ATTRIBUTE: source_key}
    if status != "opened":
        attrs[FIRST_SEEN_ATTRIBUTE] = datetime.fromtimestamp(
            finding.first_seen_ms / 1000, timezone.utc).isoformat().replace("+00:00", "Z")
    return Event(VIOLATION, attrs, time_ms, stable_id(finding.violation_id, status))
