"""The dashboard server prepares its process once before serving (`dashboards.serve.
prepare_process`): what every page imports is imported, no page is run, and what is allocated by then
is frozen out of the garbage collector's passes."""

from __future__ import annotations

import gc
import sys

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
