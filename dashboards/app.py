"""Streamlit entry point: who is this (`dashboards.auth`), the pages their role sees, the
global filters (`dashboards.filters`, drawn by each page), and the route to one module per
page under `pages/`.

An alert notification links to the root with `?slo=<name>&<dimension>=<value>`
(`slo.alerting.dashboard_link`): such a link opens the SLO page with those values set.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboards import filters
from dashboards.auth import current_user, login_form, logout_button, visible_pages
from dashboards.serve import page_run

HERE = Path(__file__).parent
# page id -> (title, icon, module under pages/), in navigation order (who sees which:
# dashboards.roles.PAGES)
PAGES = {
    "executive": ("Executive", ":material/monitoring:", "executive.py"),
    "oncall": ("On-call", ":material/notifications_active:", "oncall.py"),
    # not triage.py: a script run from pages/ has it on sys.path, shadowing the triage package
    "triage": ("Triage", ":material/fact_check:", "triage_page.py"),
    "slos": ("SLOs", ":material/target:", "slos.py"),
    "tuning": ("Policy tuning", ":material/tune:", "tuning.py"),
    "debug": ("Debug", ":material/search:", "debug.py"),
    "live": ("Live", ":material/bolt:", "live.py"),
}


def _route() -> None:
    """Log in, list the pages the user's role sees, run the chosen one."""
    st.set_page_config(page_title="PolicyScope", layout="wide")
    user = current_user()
    if user is None:
        login_form()  # stops the run
    allowed = set(visible_pages(user))
    pages = {pid: st.Page(HERE / "pages" / module, title=title, icon=icon,
                          url_path=filters.PAGE_PATHS[pid])
             for pid, (title, icon, module) in PAGES.items() if pid in allowed}
    if not pages:
        st.error(f"Your role ({user.role}) sees none of the pages built so far.")
        st.stop()

    def _home() -> None:
        """The root URL: on to the first page the user sees, or, for an alert's link
        (`/?slo=<name>&team=...`), the SLO page with those values. The pages themselves keep
        their own paths (`/executive`, `/oncall`, ...): Streamlit serves its default page only
        at the root, so none of them is the default (whichever page is a role's first)."""
        target = pages["slos"] if "slo" in st.query_params and "slos" in pages \
            else next(iter(pages.values()))
        st.switch_page(target, query_params=st.query_params.to_dict())

    home = st.Page(_home, title="Home", url_path="home", default=True)
    page = st.navigation([home, *pages.values()], position="hidden")
    with st.sidebar:
        for listed in pages.values():
            st.page_link(listed)
        st.divider()
        logout_button()
    page.run()


with page_run():  # the garbage collector's full passes wait for its end (serve.IdleCollector)
    _route()
