"""Runs the SLI batch every minute in a background thread (`policyscope up`, `worker`).

Later jobs (alert evaluation) hook in through `after_batch`. A failing run is logged and
retried on the next tick; it never stops the process.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from clickhouse_connect.driver.client import Client

from metrics import jobs

log = logging.getLogger(__name__)


class BatchScheduler:
    def __init__(self, client: Client, *, interval: float = 60.0, latency_threshold: float = 0.1,
                 after_batch: Callable[[], None] | None = None,
                 prepare: jobs.Prepare | None = None):
        """`prepare` runs before each batch (jobs.run_incremental; the app passes
        `triage.apply_rules`), `after_batch` after it (the alert evaluator)."""
        self.client = client
        self.prepare = prepare
        self.interval = interval
        self.latency_threshold = latency_threshold
        self.after_batch = after_batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.failures = 0
        self._memo: dict = {}  # kept between runs (jobs.run_incremental)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sli-batch", daemon=True)
        self._thread.start()
        log.info("SLI batch scheduled every %.0fs", self.interval)

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(120)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                jobs.run_incremental(self.client, latency_threshold=self.latency_threshold,
                                     memo=self._memo, prepare=self.prepare)
                if self.after_batch is not None:
                    self.after_batch()
                self.runs += 1
            except Exception:  # noqa: BLE001 - logged with traceback; the next tick retries
                self.failures += 1
                log.exception("SLI batch run failed; retrying at the next tick")
            self._stop.wait(self.interval)
