"""Regenerate the README screenshot of the live dashboard: docs/img/live.png.

Starts `policyscope up --demo` on free ports over a throw-away chDB store and spool, lets demo
traffic flow, screenshots the dashboard with headless Chromium, then stops the stack (SIGINT,
then SIGTERM, then SIGKILL as a last resort)::

    cd /work/main && .venv/bin/python docs/screenshot.py            # ~90 s
    .venv/bin/python docs/screenshot.py --traffic-seconds 120 --render-ms 30000

Needs Chromium (`apt-get install chromium` on Debian). Streamlit renders in the browser over a
websocket, so Chromium is given a virtual-time budget (`--render-ms`) for the page to connect,
run the script and draw the charts. Virtual time runs ahead of the websocket, so in practice the
first page load of a fresh server (cold imports, first query) can still be caught as a loading
skeleton: each shot is checked for drawn bars (the "allow" green of dashboards/charts.py) and
retried with a doubled budget, up to --attempts times. Streamlit scrolls inside the page, so a
"full page" is taken as a tall window whose empty bottom is cropped off.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICYSCOPE = ROOT / ".venv" / "bin" / "policyscope"
DEFAULT_OUTPUT = ROOT / "docs" / "img" / "live.png"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
ALLOW_GREEN = (0x2C, 0xA0, 0x2C)  # charts.OUTCOME_COLOURS["allow"], solid in the bar charts
MIN_GREEN_PIXELS = 2000  # a drawn "By policy" bar chart has tens of thousands


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_chromium() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise FileNotFoundError("no Chromium found (tried " + ", ".join(CHROMIUM_CANDIDATES)
                            + "); install it with `apt-get install -y chromium`")


def wait_for_dashboard(url: str, stack: subprocess.Popen, timeout: float) -> None:
    """Poll Streamlit's health endpoint until it answers 'ok' or the stack exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.poll() is not None:
            raise RuntimeError(f"`policyscope up` exited with code {stack.returncode} "
                               "before the dashboard came up")
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"dashboard at {url} did not answer within {timeout:.0f}s")


def stop(stack: subprocess.Popen) -> int:
    """SIGINT (Streamlit's Ctrl-C path), then SIGTERM, then SIGKILL; returns the exit code."""
    for sig, grace in ((signal.SIGINT, 30), (signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        if stack.poll() is not None:
            break
        stack.send_signal(sig)
        try:
            stack.wait(grace)
        except subprocess.TimeoutExpired:
            print(f"stack still running {grace}s after {sig.name}", file=sys.stderr)
    return stack.wait()


def screenshot(chromium: str, url: str, output: Path, profile: Path, *, width: int,
               height: int, render_ms: int) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--window-size={width},{height}",
               f"--virtual-time-budget={render_ms}", f"--screenshot={output}", url]
    result = subprocess.run(command, capture_output=True, text=True,
                            timeout=120 + render_ms / 1000)
    if result.returncode != 0 or not output.is_file():
        raise RuntimeError(f"chromium exited with code {result.returncode} and wrote no "
                           f"{output}:\n{result.stderr[-4000:]}")


def crop_empty_bottom(path: Path, *, margin: int = 48) -> tuple[int, int]:
    """Cut the blank strip below the last content; returns the new (width, height).

    Only the right 70% is inspected, because Streamlit's sidebar is grey all the way down.
    """
    from PIL import Image, ImageChops  # pillow ships with streamlit

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    main = rgb.crop((int(rgb.width * 0.3), 0, rgb.width, rgb.height))
    background = Image.new("RGB", main.size, main.getpixel((main.width - 1, main.height - 1)))
    box = ImageChops.difference(main, background).getbbox()
    if box is not None and box[3] + margin < rgb.height:
        rgb = rgb.crop((0, 0, rgb.width, box[3] + margin))
    rgb.save(path, optimize=True)
    return rgb.size


def drawn_bars(path: Path) -> int:
    """How many pixels of the solid 'allow' bar colour the shot has (0 = still loading)."""
    from PIL import Image

    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
    return next((count for count, colour in colours if colour == ALLOW_GREEN), 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--traffic-seconds", type=float, default=60.0,
                        help="seconds of demo traffic before the screenshot")
    parser.add_argument("--render-ms", type=int, default=20000,
                        help="Chromium virtual-time budget for the page to render, ms")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=4000,
                        help="window height, px; the empty space below the page is cropped")
    parser.add_argument("--attempts", type=int, default=4,
                        help="screenshots to try until the charts are drawn")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary store, spool and log for inspection")
    args = parser.parse_args(argv)

    chromium = find_chromium()
    work = Path(tempfile.mkdtemp(prefix="policyscope-screenshot-"))
    log_path = work / "up.log"
    ports = {"http": free_port(), "grpc": free_port(), "dashboard": free_port()}
    url = f"http://127.0.0.1:{ports['dashboard']}/"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYSCOPE_")}
    env["POLICYSCOPE_SPOOL_DIR"] = str(work / "spool")
    command = [str(POLICYSCOPE), "up", "--demo", "--dsn", f"chdb://{work / 'ch'}",
               "--http-port", str(ports["http"]), "--grpc-port", str(ports["grpc"]),
               "--dashboard-port", str(ports["dashboard"])]
    print("starting:", " ".join(command), f"(log: {log_path})")
    failed = True
    with open(log_path, "wb") as log:
        stack = subprocess.Popen(command, cwd=work, env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
        try:
            wait_for_dashboard(url, stack, timeout=120)
            print(f"dashboard up at {url}; demo traffic for {args.traffic_seconds:.0f}s")
            deadline = time.monotonic() + args.traffic_seconds
            while time.monotonic() < deadline:
                if stack.poll() is not None:
                    raise RuntimeError(f"`policyscope up` exited with code {stack.returncode} "
                                       "while demo traffic was flowing")
                time.sleep(1)
            render_ms = args.render_ms
            for attempt in range(1, args.attempts + 1):
                screenshot(chromium, url + "live", args.output, work / f"chromium-profile-{attempt}",
                           width=args.width, height=args.height, render_ms=render_ms)
                green = drawn_bars(args.output)
                if green >= MIN_GREEN_PIXELS:
                    break
                print(f"attempt {attempt}: page not drawn yet ({green} bar pixels) with "
                      f"--virtual-time-budget={render_ms}; retrying")
                render_ms *= 2
                time.sleep(5)
            else:
                raise RuntimeError(f"the dashboard was still not drawn after {args.attempts} "
                                   f"screenshots; see {args.output}")
            width, height = crop_empty_bottom(args.output)
            print(f"wrote {args.output}: {width}x{height} px, "
                  f"{args.output.stat().st_size} bytes")
            failed = False
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            print(f"error: {exc}", file=sys.stderr)  # TimeoutError is an OSError
        finally:
            code = stop(stack)
            print(f"stack stopped with exit code {code}")
    if failed or code != 0:
        print(f"--- tail of {log_path} ---\n" + log_path.read_text(errors="replace")[-6000:],
              file=sys.stderr)
    if args.keep or failed:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
