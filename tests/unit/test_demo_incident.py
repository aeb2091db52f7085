"""The demo's scripted incident without a collector: the rolled-out engine (real Rego) denies
the victim service alone, with one reason in every cluster; the script swaps engines after its
delay, rolls back after its duration, and does nothing once stopped. And `up --demo` uses the
example SLOs when the SLO directory holds none of one's own."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from policyscope.config import load_config
from policyscope.demo import PolicyEngine
from policyscope.demo import workloads as wl
from policyscope.demo.incident import IncidentScript, PolicyRollout
from policyscope.demo.start import use_example_slos
from slo.service import EXAMPLE_SLOS, slo_directory

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def engines() -> tuple[PolicyEngine, PolicyEngine]:
    return PolicyEngine(), PolicyRollout.default().engine()


def test_the_new_version_denies_the_victim_only(engines):
    old, new = engines
    rollout = PolicyRollout.default()
    assert (old.spec(rollout.policy_id).version, new.spec(rollout.policy_id).version) == \
        ("1.0.3", "2.0.0")
    assert new.spec(rollout.policy_id).staging_version == "2.0.0"
    assert all(new.spec(p.id) == p for p in old.catalog if p.id != rollout.policy_id)
    changed, reasons = set(), set()
    fleet = wl.generate_fleet(random.Random(7))
    for w in fleet:
        review = wl.admission_review(w, random.Random(1), "ci")
        before = {e.policy_id: (e.outcome, e.reason) for e in old.evaluate_all(review)}
        after = {e.policy_id: (e.outcome, e.reason) for e in new.evaluate_all(review)}
        if before != after:
            changed.add(w.id)
            assert set(before) == set(after)
            assert before[rollout.policy_id][0] == "allow"  # legitimate until 2.0.0
            assert after[rollout.policy_id][0] == "deny"
            reasons.add(after[rollout.policy_id][1])
            assert {k: v for k, v in before.items() if k != rollout.policy_id} == \
                {k: v for k, v in after.items() if k != rollout.policy_id}
    victims = {w.id for w in fleet if w.service == rollout.victim}
    assert changed == victims and len(victims) == 3  # in every cluster of the fleet
    assert len(reasons) == 1 and "Guaranteed QoS" in reasons.pop()  # one triage group
    # and nothing else blocks the victim's deploys: it is clean in the seed fleet
    assert all(not w.flaws and w.max_replicas_annotation != "unlimited"
               for w in fleet if w.id in victims)


class _Traffic:
    def __init__(self, engine):
        self.engine = engine


def test_the_script_rolls_out_after_its_delay_and_back_after_its_duration(engines, caplog):
    old, _ = engines
    traffic, stop = _Traffic(old), threading.Event()
    script = IncidentScript(traffic, PolicyRollout.default(), delay=0.3, duration=0.5,
                            stop=stop)
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="policyscope.demo.incident"):
        script.start()
        assert traffic.engine is old
        assert script.began.wait(10)
        assert time.monotonic() - started >= 0.3
        assert traffic.engine is script.rolled_out
        assert traffic.engine.spec(wl.LIMITS).version == "2.0.0"
        script.join(10)
    assert traffic.engine is old and not script.is_alive()
    assert script.rolled_back_at - script.started_at >= 0.5
    messages = [r.getMessage() for r in caplog.records]
    assert any("2.0.0 rolled out" in m for m in messages)
    assert any("rolled back to 1.0.3" in m for m in messages)


def test_a_stopped_script_never_rolls_out_and_duration_zero_keeps_it(engines):
    old, _ = engines
    traffic, stop = _Traffic(old), threading.Event()
    script = IncidentScript(traffic, PolicyRollout.default(), delay=30, duration=0, stop=stop)
    script.start()
    stop.set()
    script.join(10)
    assert traffic.engine is old and script.started_at is None
    kept = _Traffic(old)
    script = IncidentScript(kept, PolicyRollout.default(), delay=0, duration=0,
                            stop=threading.Event())
    script.start()
    script.join(10)
    assert kept.engine is script.rolled_out and script.rolled_back_at is None


def test_the_demo_uses_the_examples_unless_one_has_slo_files(tmp_path):
    empty = tmp_path / "slo"
    empty.mkdir()
    (empty / "silences").mkdir()  # a directory, but no SLOs of one's own
    config = load_config(env={}, overrides={"slo_dir": str(empty)})
    assert slo_directory(config, demo=True) == EXAMPLE_SLOS
    assert slo_directory(config, demo=False) == empty
    missing = load_config(env={}, overrides={"slo_dir": str(tmp_path / "none")})
    assert slo_directory(missing, demo=True) == EXAMPLE_SLOS
    assert slo_directory(missing, demo=False) is None
    use_example_slos(config)  # what the dashboards of `up --demo` then read
    assert Path(config.alerting.slo_dir) == EXAMPLE_SLOS
    own = tmp_path / "mine"
    own.mkdir()
    (own / "x.yaml").write_text("apiVersion: openslo/v1\n")
    mine = load_config(env={}, overrides={"slo_dir": str(own)})
    use_example_slos(mine)
    assert Path(mine.alerting.slo_dir) == own
