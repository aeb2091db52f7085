"""The snapshot diff of state-only sources (importers/diff.py): opened / remediated events with
first-seen and resolved times, caps, stale listings, stable ids."""

from __future__ import annotations

import pytest

from importers.diff import (
    FIRST_SEEN_ATTRIBUTE,
    Finding,
    Listing,
    Snapshot,
    diff,
    violation_id,
)

pytestmark = pytest.mark.unit

KEY = "policyreport:prod/shop/r1"
H = 3_600_000


def finding(fid: str, seen: int | None = None) -> Finding:
    return Finding(fid, {"policy.id": fid.split("/")[0], "policy.severity": "high"}, seen)


def snapshot_after(d, previous: Snapshot | None = None) -> Snapshot:
    """The snapshot a store would hold after saving `d` (what snapshots.py writes)."""
    open_ = dict(previous.open) if previous else {}
    for f in d.opened:
        open_[f.finding_id] = f
    for f in d.remediated:
        open_.pop(f.finding_id)
    return Snapshot(d.listing.source_key, d.listing.observed_ms, open_)


def statuses(d) -> list[tuple[str, str, int]]:
    return sorted((e.attributes["policy.violation.status"],
                   e.attributes["policy.id"], e.time_ms) for e in d.events)


def test_a_first_listing_opens_every_finding_at_its_first_seen_time():
    d = diff(None, Listing(KEY, (finding("a/r/pod1", seen=1 * H), finding("b/r/pod1")), 5 * H))
    assert statuses(d) == [("opened", "a", 1 * H), ("opened", "b", 5 * H)]
    assert not d.remediated and d.unlisted == 0


def test_a_finding_gone_from_a_complete_listing_is_remediated_at_the_snapshot_time():
    first = diff(None, Listing(KEY, (finding("a/r/pod1", 1 * H), finding("b/r/pod1", 1 * H)),
                               2 * H))
    second = diff(snapshot_after(first), Listing(KEY, (finding("b/r/pod1", 1 * H),), 7 * H))
    assert statuses(second) == [("remediated", "a", 7 * H)]
    event = second.events[0]
    assert event.attributes[FIRST_SEEN_ATTRIBUTE] == "1970-01-01T01:00:00Z"
    assert event.attributes["policy.violation.id"] == first.opened[0].violation_id
    assert event.attributes["policy.severity"] == "high"  # the finding's attributes carried


def test_an_unchanged_listing_emits_nothing():
    first = diff(None, Listing(KEY, (finding("a/r/pod1", H),), 2 * H))
    again = diff(snapshot_after(first), Listing(KEY, (finding("a/r/pod1", H),), 3 * H))
    assert again.events == [] and not again.changed


def test_a_capped_listing_opens_what_it_lists_and_never_remediates_what_it_leaves_out():
    first = diff(None, Listing(KEY, (finding("a/r/1"), finding("b/r/2")), 2 * H,
                               complete=False))
    capped = diff(snapshot_after(first), Listing(KEY, (finding("c/r/3"),), 3 * H,
                                                 complete=False))
    assert statuses(capped) == [("opened", "c", 3 * H)]
    assert capped.unlisted == 2 and capped.remediated == []
    complete = diff(snapshot_after(capped, snapshot_after(first)), Listing(KEY, (), 4 * H))
    assert statuses(complete) == [("remediated", "a", 4 * H), ("remediated", "b", 4 * H),
                                  ("remediated", "c", 4 * H)]


def test_a_listing_older_than_the_snapshot_is_not_diffed():
    first = diff(None, Listing(KEY, (finding("a/r/1"),), 5 * H))
    late = diff(snapshot_after(first), Listing(KEY, (), 4 * H))
    assert late.stale and late.events == []


def test_a_finding_that_comes_back_after_remediation_is_a_new_violation():
    first = diff(None, Listing(KEY, (finding("a/r/1", H),), H))
    fixed = diff(snapshot_after(first), Listing(KEY, (), 2 * H))
    back = diff(snapshot_after(fixed, snapshot_after(first)),
                Listing(KEY, (finding("a/r/1", 3 * H),), 3 * H))
    assert back.opened[0].violation_id != first.opened[0].violation_id
    assert back.opened[0].violation_id == violation_id(KEY, "a/r/1", 3 * H)


def test_event_ids_depend_on_content_not_on_when_the_diff_runs():
    one = diff(None, Listing(KEY, (finding("a/r/1", H),), 2 * H))
    two = diff(None, Listing(KEY, (finding("a/r/1", H),), 9 * H))  # the same scan, later
    assert [e.uid for e in one.events] == [e.uid for e in two.events]
    other = diff(None, Listing("policyreport:prod/shop/r2", (finding("a/r/1", H),), 2 * H))
    assert other.events[0].uid != one.events[0].uid


def test_a_finding_listed_twice_is_one_finding():
    d = diff(None, Listing(KEY, (finding("a/r/1", H), finding("a/r/1", H)), 2 * H))
    assert len(d.opened) == 1 and len(d.events) == 1
