"""The dashboards in a real browser (Debian's Chromium through Playwright) over a real
`policyscope up --demo` on a fresh store, as a new user meets them: every page opens and draws
without a traceback; an analyst labels one deny group false positive on the Triage page and an
on-call engineer silences the demo incident's firing alert on the On-call page, and both take
effect in storage and at the next batch / evaluation. A second stack bound beyond loopback with
a users file checks the login: a wrong password refused, a page opened by URL before any login
shows the form, and a role's page list.

Screenshots of every page are saved under $POLICYSCOPE_SCREENSHOTS (default: the test's
temporary directory); `docs/screenshot.py` makes the README's.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from dashboards.filters import PAGE_PATHS
from dashboards.roles import PAGES, visible_pages
from dashboards.users import UsersFile
from dashboards.roles import User
from tests.builders.browser import (
    chromium,
    exceptions,
    goto,
    nav_titles,
    screenshot,
    title,
    wait_idle,
)
from tests.builders.stack import running_stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

BATCH_INTERVAL = "10"  # seconds: the SLI batch, then the alert evaluation, run this often
INCIDENT_DELAY = "20"  # seconds after start-up the demo's bad rollout starts
HISTORY_DAYS = "3"  # the demo's generated history (30 by default: the bench times that)

TITLES = {"executive": "Executive summary", "oncall": "On-call", "triage": "Triage",
          "tuning": "Policy tuning", "debug": "Debug", "slos": "SLOs",
          "live": "PolicyScope — live policy decisions"}


def shots_dir(tmp_path: Path) -> Path:
    return Path(os.environ.get("POLICYSCOPE_SCREENSHOTS", tmp_path / "screenshots"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo-stack")
    env = {"POLICYSCOPE_BATCH_INTERVAL": BATCH_INTERVAL,
           "POLICYSCOPE_DEMO_INCIDENT_DELAY": INCIDENT_DELAY,
           "POLICYSCOPE_DEMO_HISTORY_DAYS": HISTORY_DAYS}
    with running_stack(work, env=env) as stack:
        yield stack
    assert stack.exit_code == 0, stack.log()[-4000:]


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser):
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield tab
    tab.close()


def test_titles_cover_every_page():
    assert set(TITLES) == set(PAGES) == set(PAGE_PATHS)


def test_every_page_opens_and_draws_without_a_traceback(demo, page, tmp_path):
    for page_id in PAGES:
        goto(page, demo.dashboard + PAGE_PATHS[page_id])
        assert exceptions(page) == [], (page_id, exceptions(page))
        assert title(page) == TITLES[page_id]
        screenshot(page, shots_dir(tmp_path) / f"{page_id}.png")
    # the navigation is the app's (every page, by title), not Streamlit's file list
    assert nav_titles(page) == [TITLES_IN_NAV[p] for p in NAV_ORDER]


def test_labelling_a_deny_group_false_positive_moves_m4(demo, page):
    demo.wait_for("SELECT count() FROM policy_decisions WHERE outcome = 'deny'",
                  lambda n: n > 0, 120, "denies from the demo")
    goto(page, demo.dashboard + "triage")
    assert exceptions(page) == []
    form = page.locator('[data-testid="stForm"]').filter(
        has=page.get_by_role("button", name=re.compile(r"^Label the group")))
    button = form.get_by_role("button", name=re.compile(r"^Label the group"))
    subjects = int(re.search(r"\((\d+) subjects\)", button.inner_text()).group(1))
    form.get_by_text("false positive (reason required)").click()
    form.get_by_role("textbox", name="Reason").fill("e2e: the workload is legitimate")
    button.click()
    wait_idle(page)
    notice = page.locator('[data-testid="stAlert"]').filter(has_text="Labelled")
    assert notice.count() == 1, page.locator('[data-testid="stAlert"]').all_inner_texts()
    # the group as it stood when the form was sent: live traffic may have added to it since
    # the page was drawn
    labelled = int(re.search(r"Labelled (\d+) subjects", notice.inner_text()).group(1))
    assert labelled >= subjects

    stored = demo.sql("""
        SELECT analyst, verdict, reason, count() AS n FROM triage_history
        WHERE reason = 'e2e: the workload is legitimate' GROUP BY ALL""")
    assert stored == [{"analyst": "local", "verdict": "false_positive",
                       "reason": "e2e: the workload is legitimate", "n": labelled}]
    # the next batch counts them in M4 (false positives among triaged, over 1 day)
    demo.wait_for("""
        SELECT toInt64(ifNull(argMax(good, at), 0)) FROM sli_values FINAL
        WHERE sli = 'M4' AND window = '1d' AND dimension = '' AND dimension_value = ''
          AND at >= now() - 300""",
                  lambda fp: fp >= labelled, 180, "M4's false positives after the batch")


def test_silencing_the_incidents_page_alert_is_honoured_by_the_evaluator(demo, page):
    demo.wait_for("SELECT count() FROM alerts FINAL WHERE state = 'firing' AND "
                  "severity = 'page'", lambda n: n > 0, 420, "a firing page alert")
    goto(page, demo.dashboard + "oncall")
    assert exceptions(page) == []
    page.locator('[data-testid="stExpander"] summary').filter(
        has_text="Silence an alert").first.click()
    choose(page, page.locator('[data-testid="stExpander"] [data-testid="stSelectbox"]').filter(
        has_text="Alert").first, re.compile(r"^\S+ page\b"))
    wait_idle(page)
    form = page.locator('[data-testid="stForm"]:visible').first
    form.wait_for(state="visible")
    form.get_by_role("textbox", name="Reason (required)").fill("e2e: rollback in progress")
    choose(page, form.locator('[data-testid="stSelectbox"]'), "1 hour")
    form.get_by_role("button", name="Silence").click()
    wait_idle(page)
    notice = page.locator('[data-testid="stAlert"]').filter(has_text="Silenced")
    assert notice.count() == 1, page.locator('[data-testid="stAlert"]').all_inner_texts()

    rows = demo.sql("SELECT created_by, comment, matchers FROM silences FINAL")
    assert [(r["created_by"], r["comment"]) for r in rows] == [
        ("local", "e2e: rollback in progress")]
    matchers = rows[0]["matchers"]
    # the next evaluation records the matching alert as silenced
    demo.wait_for(f"""
        SELECT count() FROM alerts FINAL WHERE state = 'firing' AND silenced
          AND slo = '{matchers["slo"]}' AND severity = '{matchers["severity"]}'""",
                  lambda n: n >= 1, 120, "the alert silenced at the next evaluation")


def choose(page, selectbox, option: str | re.Pattern) -> None:
    """Pick `option` in a Streamlit selectbox: type it into its combobox and take it."""
    for _ in range(3):
        selectbox.click()
        try:
            page.get_by_role("option", name=option).first.click(timeout=5000)
        except Exception:  # noqa: BLE001 - the list did not open: try again
            page.keyboard.press("Escape")
            page.wait_for_timeout(1000)
            continue
        return  # the option was taken (the box shows it in its input, not as text)
    raise AssertionError(f"could not choose {option!r}: {selectbox.inner_text()!r}")


# -- login, beyond loopback -------------------------------------------------------------------

PASSWORD = "e2e-correct-horse"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    work = tmp_path_factory.mktemp("login-stack")
    users = work / "users.yaml"
    accounts = UsersFile(users, hasher=PasswordHasher(time_cost=1, memory_cost=8192,
                                                      parallelism=1))
    accounts.add("olga", "oncall", PASSWORD)
    accounts.add("ana", "analyst", PASSWORD)
    config = {"dashboard": {"dashboard_host": "0.0.0.0",
                            "dashboard_users_file": str(users)}}
    with running_stack(work, config=config, demo=False) as stack:
        yield stack
    assert stack.exit_code == 0, stack.log()[-4000:]


def log_in(page, name: str, password: str) -> None:
    page.get_by_label("User name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    wait_idle(page)


def test_a_page_opened_by_url_before_any_login_shows_only_the_form(guarded, page):
    goto(page, guarded.dashboard + "debug")  # the first request this server sees
    assert title(page) == "PolicyScope"
    assert page.get_by_label("Password", exact=True).count() == 1
    assert page.get_by_text("Decision log").count() == 0


def test_a_wrong_password_is_refused(guarded, page):
    goto(page, guarded.dashboard)
    log_in(page, "olga", "not-her-password")
    assert page.locator('[data-testid="stAlert"]').filter(
        has_text="Wrong user name or password").count() == 1
    assert page.get_by_label("Password", exact=True).count() == 1


@pytest.mark.parametrize("name,role", [("olga", "oncall"), ("ana", "analyst")])
def test_a_role_sees_its_pages_only(guarded, browser, name, role):
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        goto(tab, guarded.dashboard)
        log_in(tab, name, PASSWORD)
        wanted = [TITLES_IN_NAV[p] for p in NAV_ORDER if p in visible_pages(User(name, role))]
        logged_in = tab.get_by_text(f"Logged in as {name} ({role})")
        logged_in.wait_for(timeout=30_000)  # the run after the login has drawn the page
        assert nav_titles(tab) == wanted
        assert logged_in.count() == 1
    finally:
        tab.close()


NAV_ORDER = ["executive", "oncall", "triage", "slos", "tuning", "debug", "live"]
TITLES_IN_NAV = {"executive": "Executive", "oncall": "On-call", "triage": "Triage",
                 "slos": "SLOs", "tuning": "Policy tuning", "debug": "Debug", "live": "Live"}
