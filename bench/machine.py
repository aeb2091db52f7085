"""What every benchmark needs to know about the machine it runs on: is it quiet, which code
is under test."""

from __future__ import annotations

import platform
import subprocess
import time
from pathlib import Path
from typing import Callable

import psutil

ROOT = Path(__file__).resolve().parents[1]


def wait_idle(max_percent: float, timeout: float, log: Callable[[str], None] = print) -> None:
    """On a shared machine: wait until other work leaves the CPUs (mostly) idle."""
    if max_percent <= 0:
        return
    deadline = time.monotonic() + timeout
    while True:
        busy = psutil.cpu_percent(interval=3)
        if busy <= max_percent:
            log(f"machine CPU {busy:.0f}% busy: starting")
            return
        if time.monotonic() > deadline:
            log(f"machine CPU still {busy:.0f}% busy after {timeout:.0f}s: starting anyway")
            return
        log(f"machine CPU {busy:.0f}% busy (> {max_percent:.0f}%): waiting")
        time.sleep(5)


def code_version(*paths: str) -> str:
    """The commit under test, '+dirty' when any of `paths` has local changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT,
                               text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def busy_seconds() -> float:
    """CPU seconds all processes of the machine spent busy so far."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)
