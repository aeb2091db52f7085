"""Regenerate the README screenshots: one PNG per dashboard page, docs/img/<page>.png.

Starts `policyscope up --demo` on free ports over a throw-away chDB store and spool (so the
demo generates its history first), lets demo traffic flow, opens every page in headless
Chromium (Debian's, through Playwright: tests/builders/browser.py) once Streamlit has drawn
it, saves the whole page, then stops the stack::

    cd /work/main && .venv/bin/python docs/screenshot.py
    .venv/bin/python docs/screenshot.py --traffic-seconds 240 --pages oncall,triage

`--traffic-seconds` is how long demo traffic flows before the shots: long enough for the
demo's scripted incident (its alert on the On-call page, its denies in the Triage queue).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dashboards.filters import PAGE_PATHS  # noqa: E402
from dashboards.roles import PAGES  # noqa: E402
from tests.builders.browser import chromium, exceptions, goto, screenshot  # noqa: E402
from tests.builders.stack import running_stack  # noqa: E402

DEFAULT_DIR = ROOT / "docs" / "img"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--pages", default=",".join(PAGES),
                        help="comma-separated page ids [default: every page]")
    parser.add_argument("--traffic-seconds", type=float, default=240.0,
                        help="seconds of demo traffic before the screenshots")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for `policyscope up` (repeatable)")
    args = parser.parse_args(argv)
    pages = [p for p in args.pages.split(",") if p]
    unknown = sorted(set(pages) - set(PAGES))
    if unknown:
        parser.error(f"unknown pages {unknown}; known: {', '.join(PAGES)}")
    env = dict(item.split("=", 1) for item in args.env)

    with tempfile.TemporaryDirectory(prefix="policyscope-screenshot-") as tmp:
        with running_stack(Path(tmp), env=env) as stack:
            print(f"dashboard up at {stack.dashboard}; demo traffic for "
                  f"{args.traffic_seconds:.0f} s")
            deadline = time.monotonic() + args.traffic_seconds
            while time.monotonic() < deadline:
                stack.check_running()
                time.sleep(2)
            with chromium() as browser:
                for page_id in pages:
                    page = browser.new_page(viewport={"width": args.width, "height": 1000})
                    goto(page, stack.dashboard + PAGE_PATHS[page_id])
                    errors = exceptions(page)
                    if errors:
                        print(f"{page_id}: the page shows an exception:\n{errors[0]}",
                              file=sys.stderr)
                        return 1
                    path = screenshot(page, args.output_dir / f"{page_id}.png")
                    print(f"wrote {path}")
                    page.close()
        print(f"stack stopped with exit code {stack.exit_code}")
        return 0 if stack.exit_code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
