"""The dashboard server prepares its process once before serving (`dashboards.serve.
prepare_process`): what every page imports is imported, no page is run, and what is allocated
by then is frozen out of the garbage collector's passes; the collector's full passes then run
between page runs (`dashboards.serve.IdleCollector`), and only while Streamlit serves."""

from __future__ import annotations

import gc
import sys
import threading
import time
import weakref

import pytest
import streamlit as st

from dashboards import serve

pytestmark = pytest.mark.unit


def test_preparing_imports_every_page_without_rendering_and_freezes_what_is_allocated(
        monkeypatch):
    titles = []  # every page's render begins with its title
    monkeypatch.setattr(st, "title", lambda *a, **k: titles.append(a))
    before = set(sys.modules)
    gc.unfreeze()
    try:
        serve.prepare_process()
        frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()
    assert frozen > 10_000  # the imported libraries' objects, at least
    # the pages' own imports were made (a page's first run finds them loaded) ...
    assert {"dashboards.queries.oncall", "dashboards.charts", "triage"} <= set(sys.modules)
    # ... and no page ran
    assert titles == []
    assert not [m for m in set(sys.modules) - before if "pages" in m]


class _Cycle:
    """Half of a reference cycle: garbage only the cyclic collector frees."""

    def __init__(self) -> None:
        self.other: _Cycle | None = None


def _old_garbage() -> weakref.ref:
    """A cycle in the oldest generation that has just become garbage (a young pass moved it
    there while it was alive), and a weak reference that dies when it is freed."""
    a, b = _Cycle(), _Cycle()
    a.other, b.other = b, a
    gc.collect(1)  # alive: moved to the oldest generation
    return weakref.ref(a)


@pytest.fixture
def collector():
    idle = serve.IdleCollector()
    yield idle
    idle.stop()  # Python's thresholds as they were


def test_no_full_pass_starts_by_itself_once_the_collector_holds_them(collector):
    threshold = gc.get_threshold()
    collector.hold()
    assert gc.get_threshold()[:2] == threshold[:2]
    assert gc.get_threshold()[2] == serve.IdleCollector.NEVER
    gc.collect()
    dead = _old_garbage()
    for _ in range(3 * serve.IdleCollector.DUE):  # what would have started full passes
        gc.collect(1)
    assert dead() is not None
    collector.stop()
    assert gc.get_threshold() == threshold


def test_a_due_full_pass_waits_for_the_page_run_in_progress(collector):
    collector.hold()
    gc.collect()
    dead = _old_garbage()
    assert not collector.collect_if_due()  # nothing due yet: one middle pass
    for _ in range(serve.IdleCollector.DUE):
        gc.collect(1)
    with serve.page_run():
        assert serve.running() == 1
        assert not collector.collect_if_due()
        assert dead() is not None
    assert serve.running() == 0
    assert collector.collect_if_due()
    assert dead() is None
    assert not collector.collect_if_due()  # and none is due right after


def test_a_full_pass_runs_during_a_page_run_once_the_latest_time_has_passed(
        collector, monkeypatch):
    collector.hold()
    gc.collect()
    dead = _old_garbage()
    monkeypatch.setattr(serve.IdleCollector, "LATEST_S", 0.0)
    with serve.page_run():
        assert collector.collect_if_due()
    assert dead() is None


def test_the_thread_frees_garbage_when_no_page_runs(monkeypatch):
    monkeypatch.setattr(serve.IdleCollector, "CHECK_S", 0.01)
    idle = serve.IdleCollector().start()
    try:
        with serve.page_run():
            dead = _old_garbage()
            for _ in range(serve.IdleCollector.DUE):
                gc.collect(1)
            time.sleep(0.2)
            assert dead() is not None  # held while the run lasts
        deadline = time.monotonic() + 10
        while dead() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert dead() is None
    finally:
        idle.stop()
    assert gc.get_threshold()[2] != serve.IdleCollector.NEVER


def _idle_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "idle-gc" and t.is_alive()]


def test_serve_holds_full_passes_while_streamlit_runs_and_gives_them_back_after(monkeypatch):
    import streamlit.web.bootstrap as bootstrap

    from dashboards import config as dashboard_config
    from policyscope.config import load_config

    threshold = gc.get_threshold()
    during = []
    monkeypatch.setattr(bootstrap, "load_config_options", lambda **k: None)
    monkeypatch.setattr(bootstrap, "run",
                        lambda *a, **k: during.append((len(_idle_threads()),
                                                       gc.get_threshold()[2])))
    monkeypatch.setattr(dashboard_config, "_current", None)
    before = len(_idle_threads())
    try:
        serve.serve(load_config(env={}))
    finally:
        gc.unfreeze()  # prepare_process froze this test process's objects
    assert during == [(before + 1, serve.IdleCollector.NEVER)]
    # Streamlit returned: the thread is gone (it would collect inside later page runs)
    assert len(_idle_threads()) == before
    assert gc.get_threshold() == threshold
