"""`policyscope up` as a user runs it, for the end-to-end tests and the README screenshots: a
throw-away directory with its own chDB store, spool and log, free ports, the dashboard waited on
until Streamlit answers, read-only SQL through the collector's admin API (the store is the
running process's: chDB opens a store in one process only), and a stop by SIGINT (Ctrl-C)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import yaml

from tests.builders.processes import admin_headers, free_port

ROOT = Path(__file__).resolve().parents[2]
POLICYSCOPE = [sys.executable, "-m", "policyscope.cli"]


@dataclass
class Stack:
    work: Path
    process: subprocess.Popen
    ports: dict[str, int]
    log_path: Path
    exit_code: int | None = field(default=None)

    @property
    def store(self) -> Path:
        return self.work / "ch"

    @property
    def dashboard(self) -> str:
        """The dashboard's root URL, ending in '/'."""
        return f"http://127.0.0.1:{self.ports['dashboard']}/"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def sql(self, query: str) -> list[dict]:
        """Rows of a read-only query, run by the stack's collector (POST /api/sql)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ports['http']}/api/sql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json", **admin_headers(self.store)})
        for _ in range(20):
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    return json.loads(response.read())["rows"]
            except urllib.error.HTTPError as exc:
                if exc.code != 429:  # another query running: wait for it
                    raise AssertionError(f"{query!r} -> {exc.code} {exc.read()[:500]!r}")
                time.sleep(0.5)
        raise AssertionError(f"{query!r}: the admin API stayed busy")

    def scalar(self, query: str):
        rows = self.sql(query)
        assert len(rows) == 1 and len(rows[0]) == 1, rows
        return next(iter(rows[0].values()))

    def wait_for(self, query: str, predicate, timeout: float, what: str):
        """Poll `query`'s single value until `predicate(value)`; returns it."""
        deadline, value = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            self.check_running()
            value = self.scalar(query)
            if predicate(value):
                return value
            time.sleep(2)
        raise AssertionError(f"{what}: still {value!r} after {timeout:.0f} s\n"
                             f"--- log tail ---\n{self.log()[-4000:]}")

    def check_running(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"`policyscope up` exited with code {self.process.returncode}"
                                 f"\n--- log tail ---\n{self.log()[-6000:]}")


def wait_for_dashboard(stack: Stack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_running()
        try:
            with urllib.request.urlopen(stack.dashboard + "_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the dashboard did not answer within {timeout:.0f} s\n"
                         f"--- log tail ---\n{stack.log()[-6000:]}")


def stop(stack: Stack) -> int:
    """SIGINT (Ctrl-C), then SIGTERM, then SIGKILL; the exit code."""
    for sig, grace in ((signal.SIGINT, 60), (signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        if stack.process.poll() is not None:
            break
        stack.process.send_signal(sig)
        try:
            stack.process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    stack.exit_code = stack.process.wait()
    return stack.exit_code


@contextmanager
def running_stack(work: Path, *, config: dict | None = None, env: dict[str, str] | None = None,
                  demo: bool = True, start_timeout: float = 240) -> Iterator[Stack]:
    """`policyscope up [--demo]` in `work` (its store, spool and log there) with `config` as
    its config file; yields once the dashboard answers, stops it on leaving."""
    work.mkdir(parents=True, exist_ok=True)
    ports = {"http": free_port(), "grpc": free_port(), "dashboard": free_port()}
    config_file = work / "policyscope.yaml"
    config_file.write_text(yaml.safe_dump(config or {}))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("POLICYSCOPE_")}
    environment.update({"POLICYSCOPE_SPOOL_DIR": str(work / "spool"),
                        "PYTHONPATH": str(ROOT), **(env or {})})
    command = [*POLICYSCOPE, "up", *(["--demo"] if demo else []), "--config", str(config_file),
               "--dsn", f"chdb://{work / 'ch'}", "--http-port", str(ports["http"]),
               "--grpc-port", str(ports["grpc"]), "--dashboard-port", str(ports["dashboard"])]
    log_path = work / "up.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=work, env=environment, stdout=log,
                                   stderr=subprocess.STDOUT)
    stack = Stack(work, process, ports, log_path)
    try:
        wait_for_dashboard(stack, start_timeout)
        yield stack
    finally:
        stop(stack)
