"""The fault campaign, bounded (the full one is `python -m bench.faults`, in `make bench`):
4,000 numbered events over OTLP/HTTP from 4 retrying client threads into a real `policyscope
collector` process on chDB, which is SIGKILLed once (its spool then left with a torn last
frame), loses its storage for 4 s (half the INSERTs then run but their answer is lost) and
has a spool limit of 64 KiB, so clients get 503s. Afterwards every acknowledged event must be
stored exactly once -- in the table and in the rollups its views fill -- and each fault must
really have happened. Tried by hand against broken collectors, it fails for a writer that
drops the rows it could not insert (hundreds lost), a spool replay that skips a segment's last
frame (100 lost) or throws away a segment with a torn tail (200 lost, and no cut reported), and
an INSERT retried without deduplication (the rollups count 1,200 events twice)."""

from __future__ import annotations

import pytest

from bench.faults import Plan, run_campaign

pytestmark = pytest.mark.e2e

PLAN = Plan(events=4000, per_request=100, threads=4, kills=1, outage_s=4.0,
            spool_max_size="64KiB", abandon_every=10, timeout=150.0, drain_timeout=120.0)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory) -> dict:
    return run_campaign(PLAN, tmp_path_factory.mktemp("faults"), baseline=False)


def test_every_acknowledged_event_is_stored_exactly_once(campaign):
    count = campaign["phases"]["faults"]["results"]["count"]
    abandoned = PLAN.events // PLAN.abandon_every  # every 10th request of 100 events
    assert count["acknowledged"] == PLAN.events - abandoned, "a client gave up on a request"
    assert count["lost"] == 0, f"acknowledged but not stored, e.g. {count['lost_examples']}"
    assert count["duplicated"] == 0, f"stored twice, e.g. {count['duplicate_examples']}"
    assert count["rollup_excess"] == {"decisions_1m": 0, "decisions_1h": 0}, \
        "a row was inserted twice (the rollups counted it twice)"
    assert (count["phantom_rows"], count["mismatched_rows"], count["foreign_rows"]) == \
        (0, 0, 0), "rows of events never sent (the torn frame's?) or with a wrong id"
    assert count["stored_rows"] == count["acknowledged"] + count["unacknowledged_stored"]


def test_each_fault_happened_and_the_collector_stopped_cleanly(campaign):
    phase = campaign["phases"]["faults"]
    results = phase["results"]
    assert phase["kills"] == 1
    assert phase["torn"] is not None and phase["torn_cut_confirmed"], \
        f"the restarted collector did not report cutting {phase['torn']}"
    assert results["incarnations"][1]["replayed_rows"] > 0, "the kill found the spool empty"
    assert phase["outage_failed_inserts"] > 0 and phase["outage_lost_answers"] > 0
    assert phase["outage_503"] > 0, "the spool limit was never hit during the outage"
    assert results["rc"] == 0, "SIGTERM did not end the collector with exit code 0"
    assert results["unexpected"] == [] and results["given_up_requests"] == 0
    assert results["spool_leftovers"] == {"segments": 0, "segment_rows": 0,
                                          "dead_letter_files": 0, "dead_letter_rows": 0}
    assert campaign["problems"] == [] and campaign["verdict"] == "PASS"
