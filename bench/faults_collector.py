"""The collector under fault: a `policyscope collector` subprocess on a scratch chDB store and
spool, started through `bench.faults_launcher` (its storage fails while `outage_flag`
exists), killed with SIGKILL and restarted on the same port, stopped with SIGTERM; and the
torn spool tail a crash in mid-write leaves.

The config goes in a YAML file (`collector.yaml` in the work directory); no `POLICYSCOPE_*`
variable of the calling environment reaches the collector.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psutil
import yaml

from collector.spool import decode_segment

ROOT = Path(__file__).resolve().parents[1]
TORN_TAIL_LOG = "cut a torn tail"  # collector/spool.py's warning when it cuts one


class CollectorFailed(RuntimeError):
    """The collector did not start, or did not stop as it should."""


@dataclass
class Incarnation:
    """One run of the collector process, from start to its kill or stop."""

    number: int
    log: Path
    started_at: float  # monotonic, when launched
    ready_s: float | None = None  # seconds until /health answered
    replayed_rows: int | None = None  # spool rows replayed at its start (from /metrics)
    lock_waits: int = 0  # starts that found the store still locked
    end: str = ""  # "SIGKILL", "SIGTERM rc=0", ...


@dataclass
class FaultyCollector:
    workdir: Path
    port: int
    settings: dict  # collector section values (spool_max_size, retry_after, ...)
    log_level: str = "WARNING"
    proc: subprocess.Popen | None = None
    incarnations: list[Incarnation] = field(default_factory=list)

    @property
    def store(self) -> Path:
        return self.workdir / "ch"

    @property
    def dsn(self) -> str:
        return f"chdb://{self.store}"

    @property
    def spool_dir(self) -> Path:
        return self.workdir / "spool"

    @property
    def outage_flag(self) -> Path:
        return self.workdir / "storage-down"

    @property
    def config_file(self) -> Path:
        return self.workdir / "collector.yaml"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.faults_launcher", str(self.outage_flag),
                "collector", "--config", str(self.config_file), "--log-level", self.log_level]

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        collector = {"http_port": self.port, "grpc_port": 0, "spool_dir": str(self.spool_dir),
                     **self.settings}
        self.config_file.write_text(yaml.safe_dump(
            {"storage": {"dsn": self.dsn}, "collector": collector}, sort_keys=False))

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> Incarnation:
        """Launch and wait for /health; a store still locked by the killed process is waited
        out (the start is retried)."""
        if not self.config_file.exists():
            self.write_config()
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYSCOPE_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        number = len(self.incarnations) + 1
        deadline = time.monotonic() + timeout
        lock_waits = 0
        while True:
            log = self.workdir / f"collector-{number}.log"
            started = time.monotonic()
            with open(log, "ab") as out:
                self.proc = subprocess.Popen(self.command(), cwd=ROOT, env=env, stdout=out,
                                             stderr=subprocess.STDOUT)
            while time.monotonic() < deadline:
                if self.healthy():
                    inc = Incarnation(number, log, started, ready_s=time.monotonic() - started,
                                      lock_waits=lock_waits)
                    inc.replayed_rows = int(self.metrics().get(
                        "policyscope_spool_replayed_rows_total", -1))
                    self.incarnations.append(inc)
                    return inc
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
            else:
                self.proc.kill()
                self.proc.wait()
                raise CollectorFailed(f"collector did not answer /health within {timeout:.0f}s "
                                      f"(log {log})")
            text = log.read_text(errors="replace")
            if "in use by another process" in text and time.monotonic() < deadline:
                lock_waits += 1
                log.write_text("")  # the next try's output replaces the locked one's
                time.sleep(0.5)
                continue
            raise CollectorFailed(f"collector exited with rc={self.proc.returncode} during "
                                  f"start-up: {text[-2000:]}")

    def kill(self, when: Callable[[], bool] | None = None, patience: float = 5.0) -> bool:
        """SIGKILL the collector (its main process only, as the OOM killer would), then wait
        until it and its worker processes are gone, so the store lock is free.

        With `when`, the moment is chosen: the process is frozen (SIGSTOP), `when()` looks at
        its files, and it is killed frozen if that holds, else let go on (SIGCONT) and tried
        again a little later, for at most `patience` seconds (then killed anyway). Returns
        whether `when` held (True without one)."""
        proc = self._running()
        try:
            children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            children = []
        held = when is None
        deadline = time.monotonic() + patience
        while not held:
            proc.send_signal(signal.SIGSTOP)
            held = when()
            if held or time.monotonic() > deadline:
                break
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        alive = _wait_gone(children, timeout=20)
        for straggler in alive:  # a worker that outlived its collector: a finding, logged
            print(f"[faults] worker {straggler.pid} outlived the killed collector; killing it",
                  file=sys.stderr, flush=True)
            straggler.kill()
        self.incarnations[-1].end = "SIGKILL" + (
            f" ({len(alive)} worker(s) outlived it)" if alive else "")
        return held

    def stop(self, timeout: float = 120.0) -> int:
        """SIGTERM and wait; the exit code (the collector must drain and exit 0)."""
        proc = self._running()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = -9
            self.incarnations[-1].end = f"SIGTERM: no exit within {timeout:.0f}s, killed"
            return rc
        self.incarnations[-1].end = f"SIGTERM rc={rc}"
        return rc

    def ensure_stopped(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def _running(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            raise CollectorFailed("the collector is not running")
        return self.proc

    # -- observing -----------------------------------------------------------------------------
    def healthy(self) -> bool:
        """The collector serves: /health answers (200 "ok", or 503 "degraded" while its
        storage fails -- it still takes requests into the spool then)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                body = r.read()
        except urllib.error.HTTPError as answer:
            with answer:
                body = answer.read()
        except OSError:
            return False
        try:
            return json.loads(body).get("status") in ("ok", "degraded")
        except (ValueError, AttributeError):
            return False

    def metrics(self) -> dict[str, float]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                        timeout=10) as r:
                text = r.read().decode()
        except (OSError, urllib.error.URLError):
            return {}
        out = {}
        for line in text.splitlines():
            name, _, value = line.rpartition(" ")
            if name and not line.startswith("#"):
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def drained(self, timeout: float) -> bool:
        """Wait until every durable frame is inserted (the spool's backlog is 0)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.metrics().get("policyscope_spool_backlog_bytes") == 0:
                return True
            time.sleep(0.2)
        return False

    def spool_leftovers(self) -> dict:
        """Rows still in spool segments, and parked as dead letters, after the stop."""
        out = {"segments": 0, "segment_rows": 0, "dead_letter_files": 0, "dead_letter_rows": 0}
        for key, folder in (("segment", self.spool_dir),
                            ("dead_letter", self.spool_dir / "dead-letter")):
            for path in folder.glob("*.seg"):
                out["segments" if key == "segment" else "dead_letter_files"] += 1
                out[f"{key}_rows"] += sum(t.num_rows for _, t in
                                          decode_segment(path.read_bytes())[0])
        return out

    def logs(self) -> str:
        return "".join(inc.log.read_text(errors="replace") for inc in self.incarnations
                       if inc.log.exists())

    def set_outage(self, down: bool) -> None:
        if down:
            self.outage_flag.write_text("storage is down (fault campaign)\n")
        else:
            self.outage_flag.unlink(missing_ok=True)


def _gone(proc: psutil.Process) -> bool:
    """Exited: no such process, or a zombie (its files and locks are released already; it
    waits only for its new parent, init, to reap it)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process of `procs` has exited; those still running at `timeout`."""
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if not _gone(p)]
        if alive:
            time.sleep(0.05)
    return alive
