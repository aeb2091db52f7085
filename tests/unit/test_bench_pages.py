"""bench/pages.py's own logic that needs no store: the page list it reads from the app script
(parsed, not imported), and its percentile."""

from __future__ import annotations

import random

import numpy as np
import pytest

from bench import pages
from dashboards.filters import PAGE_PATHS

pytestmark = pytest.mark.unit


def test_the_page_list_is_the_apps_and_every_module_exists():
    found = pages.app_pages()
    assert found, "no pages read from dashboards/app.py"
    for page, (title, module) in found.items():
        assert page in PAGE_PATHS, page
        assert title and (pages.ROOT / "dashboards" / "pages" / module).is_file(), module


def test_the_page_list_is_read_from_an_annotated_literal_too(tmp_path):
    app = tmp_path / "app.py"
    app.write_text("import streamlit as st\n"
                   "PAGES: dict = {'live': ('Live', ':material/bolt:', 'live.py'),\n"
                   "               'slos': ('SLOs', ':material/target:', 'slos.py')}\n"
                   "st.stop()\n")
    assert pages.app_pages(app) == {"live": ("Live", "live.py"), "slos": ("SLOs", "slos.py")}


def test_an_app_without_a_pages_literal_is_refused(tmp_path):
    app = tmp_path / "app.py"
    app.write_text("PAGES = dict(live=('Live', '', 'live.py'))\n")  # not a literal
    with pytest.raises(ValueError):
        pages.app_pages(app)
    app.write_text("import streamlit as st\n")
    with pytest.raises(SystemExit):
        pages.app_pages(app)


@pytest.mark.parametrize("n", [1, 2, 20, 21, 101])
def test_p95_is_numpys_linear_percentile(n):
    values = [random.Random(n).lognormvariate(0, 1) for _ in range(n)]
    assert pages.p95(values) == pytest.approx(float(np.percentile(values, 95)))
