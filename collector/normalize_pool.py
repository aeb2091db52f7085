"""Decode + normalize in worker processes, so ingest uses every core, not one GIL.

Receivers hand the raw request body to `NormalizerPool.submit`; a worker process parses it and
returns a `NormalizedBatch` (Arrow tables pickle as buffers, cheaply). The main process only
spools and acknowledges. Workers are started with `spawn` (forking a process that runs gRPC
and chDB threads is unsafe). `workers=0` normalizes inline, in the caller's thread.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from collector.errors import CollectorError, DecodeError, RetryableError
from collector.normalize import Normalizer
from collector.rows import NormalizedBatch
from collector.signals import BY_NAME, decode

log = logging.getLogger(__name__)
_worker_normalizer: Normalizer | None = None


def _init_worker(max_extra_attributes: int, redact_attributes: list[str]) -> None:
    global _worker_normalizer
    _worker_normalizer = Normalizer(max_extra_attributes=max_extra_attributes,
                                    redact_attributes=redact_attributes)
    parent = os.getppid()

    def exit_with_parent() -> None:
        # A collector killed with SIGKILL cannot stop its workers; they would wait forever.
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=exit_with_parent, name="parent-watch", daemon=True).start()


def normalize_body(normalizer: Normalizer, signal_name: str, body: bytes,
                   content_type: str) -> NormalizedBatch:
    """Decode one request body and normalize it. Raises DecodeError for a bad body -- also
    for a failure nobody foresaw while reading it (logged once per kind of failure): bad data
    is the sender's to fix (a 400 naming what failed), never a 500."""
    try:
        signal = BY_NAME[signal_name]
        message = decode(signal, body, content_type)
        if signal_name == "logs":
            return normalizer.logs(message)
        if signal_name == "traces":
            return normalizer.spans(message)
        return NormalizedBatch()
    except CollectorError:
        raise
    except (Exception, RecursionError) as exc:  # noqa: BLE001 - see the docstring
        kind = f"{type(exc).__name__} in {signal_name}"
        if kind not in _UNFORESEEN:
            _UNFORESEEN.add(kind)
            log.exception("a %s request failed in a way no check foresaw (logged once per "
                          "kind); answered 400", signal_name)
        raise DecodeError(f"the request could not be read: {type(exc).__name__}: "
                          f"{str(exc)[:200]}") from None


_UNFORESEEN: set[str] = set()  # kinds of unforeseen failures already logged


def _work(signal_name: str, body: bytes, content_type: str) -> NormalizedBatch:
    assert _worker_normalizer is not None
    return normalize_body(_worker_normalizer, signal_name, body, content_type)


class NormalizerPool:
    def __init__(self, *, workers: int, max_extra_attributes: int,
                 redact_attributes: list[str], retry_after: float):
        self.workers = workers
        self.retry_after = retry_after
        self._inline = Normalizer(max_extra_attributes=max_extra_attributes,
                                  redact_attributes=redact_attributes)
        self._args = (max_extra_attributes, list(redact_attributes))
        self._executor: ProcessPoolExecutor | None = None

    def start(self) -> None:
        if self.workers > 0 and self._executor is None:
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=self._args)
            # Start the workers now, not on the first request.
            for future in [self._executor.submit(_work, "metrics", b"", "") for _ in
                           range(self.workers)]:
                future.result(120)

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def submit(self, signal_name: str, body: bytes, content_type: str) -> Future:
        """A future of the NormalizedBatch; its exception is a CollectorError on bad input."""
        if self._executor is None:
            future: Future = Future()
            try:
                future.set_result(normalize_body(self._inline, signal_name, body, content_type))
            except CollectorError as exc:
                future.set_exception(exc)
            return future
        try:
            return self._executor.submit(_work, signal_name, body, content_type)
        except (BrokenProcessPool, RuntimeError) as exc:
            raise RetryableError(f"normalizer workers unavailable: {exc}",
                                 self.retry_after) from exc
