"""The overload campaign (bench/overload.py), bounded: a few seconds at twice the rate the
collector sustains on this machine, with a memory limit set. Clients must see 429/503
rather than the collector growing without bound, and nothing acknowledged may be lost or
stored twice. The full minute runs as `python -m bench.overload` (bench/RESULTS.md)."""

from __future__ import annotations

import json

import pytest

from bench import overload

pytestmark = pytest.mark.e2e


def test_twice_the_sustainable_rate_loses_nothing_and_stays_under_the_memory_limit(capsys):
    rc = overload.main(["--duration", "4", "--calibrate", "3", "--records-per-request", "100",
                        "--memory-limit", "2GiB"])
    report = json.loads(capsys.readouterr().out)
    assert report["lost_events"] == 0 and report["duplicated_events"] == 0, report
    assert report["peak_rss_overload"] < report["memory_limit_bytes"], report
    assert report["collector_exit"] == 0
    assert report["acked_requests"] > 0
    assert rc == 0, report
