"""Driving the dashboards in a real browser: Debian's Chromium through Playwright (its own
browser download does not work on these machines, so the system binary is launched), waits
that know when Streamlit has finished a script run, and page screenshots.

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        goto(page, stack.dashboard + "executive")
        assert not exceptions(page)
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
# Streamlit marks its root with the state of the script run; "notRunning" = drawn.
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
RUN_TIMEOUT_MS = 120_000  # the first run of a page over a cold store can take a while


def find_chromium() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise FileNotFoundError("no Chromium found (tried " + ", ".join(CHROMIUM_CANDIDATES)
                            + "); install it with `apt-get install -y chromium` "
                            "(`make test` does, as root)")


@contextmanager
def chromium() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


def wait_idle(page, timeout_ms: int = RUN_TIMEOUT_MS) -> None:
    """Until Streamlit has run the script and drawn it, twice in a row a moment apart (a run
    can request another: a switch_page, a rerun after a write)."""
    for _ in range(2):
        page.wait_for_selector(IDLE, timeout=timeout_ms)
        page.wait_for_timeout(500)
    page.wait_for_selector(IDLE, timeout=timeout_ms)


def goto(page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    wait_idle(page)


def exceptions(page) -> list[str]:
    """The text of every traceback box Streamlit drew."""
    return page.locator('[data-testid="stException"]').all_inner_texts()


def title(page) -> str:
    return page.locator("h1").first.inner_text(timeout=10_000).strip()


def screenshot(page, path: Path) -> Path:
    """The whole page: Streamlit scrolls inside its own container, so the viewport is made as
    tall as that content before the shot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("""() => {
        const block = document.querySelector('[data-testid="stMainBlockContainer"]');
        if (!block) return document.body.scrollHeight;
        return block.scrollHeight + block.getBoundingClientRect().top;
    }""")
    width = page.viewport_size["width"]
    page.set_viewport_size({"width": width, "height": min(max(int(height) + 40, 800), 8000)})
    page.wait_for_timeout(800)  # Plotly redraws for the new size
    page.screenshot(path=str(path), full_page=True)
    return path


def nav_titles(page) -> list[str]:
    """The page titles of the sidebar navigation, in order (without their icons' names),
    once it is drawn (a run after a login may still be on its way on a loaded machine)."""
    locator = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"]')
    locator.first.wait_for(timeout=30_000)
    links = locator.all_inner_texts()
    return [t.strip().splitlines()[-1].strip() for t in links]
