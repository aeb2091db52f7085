"""Decode + normalize in worker processes, so ingest uses every core, not one GIL.

Receivers hand the raw request body to `NormalizerPool.submit`; a worker process parses it and
returns a `NormalizedBatch` (Arrow tables pickle as buffers, cheaply). The main process only
spools and acknowledges. Workers are started with `spawn` (forking a process that runs gRPC
and chDB threads is unsafe). `workers=0` normalizes inline, in the caller's thread.

The pool heals itself: when a worker dies (an OOM kill, a crash in a C extension), the
requests it held fail as retryable (503 / UNAVAILABLE + Retry-After: nothing of theirs was
acknowledged), the pool is rebuilt in the background while `state` says "restarting" (and
/health "degraded"), and ingest resumes by itself. Workers ignore SIGINT and SIGTERM -- Ctrl-C
reaches the whole process group -- so they stop when the collector says, after its receivers
have drained; a worker whose collector is gone exits by itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
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


def _init_worker(row_settings: dict) -> None:
    global _worker_normalizer
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _worker_normalizer = Normalizer(**row_settings)
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
    """Worker processes behind `submit`; rebuilt in the background when one dies."""

    def __init__(self, *, workers: int, retry_after: float, **row_settings):
        """`row_settings`: the Normalizer's (and RowBuilder's) keyword arguments, the same in
        every worker -- `collector.rows.row_settings(config)` makes them from the config."""
        self.workers = workers
        self.retry_after = retry_after
        self._inline = Normalizer(**row_settings)
        self._args = (row_settings,)
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._rebuilding: threading.Thread | None = None
        self._stopping = threading.Event()
        self.restarts = 0  # pools rebuilt after a worker died

    @property
    def state(self) -> str:
        """"ok", "restarting" (a worker died; the pool is being rebuilt) or "stopped"."""
        if self.workers == 0:
            return "ok"
        if self._rebuilding is not None:
            return "restarting"
        return "ok" if self._executor is not None else "stopped"

    def worker_pids(self) -> list[int]:
        executor = self._executor
        processes = getattr(executor, "_processes", None) or {}
        return sorted(processes)

    def _new_executor(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=self._args)
        try:
            # Start the workers now, not on the first request.
            for future in [executor.submit(_work, "metrics", b"", "") for _ in
                           range(self.workers)]:
                future.result(120)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        return executor

    def start(self) -> None:
        if self.workers > 0 and self._executor is None:
            self._stopping.clear()
            self._executor = self._new_executor()

    def shutdown(self) -> None:
        self._stopping.set()
        rebuilding = self._rebuilding
        if rebuilding is not None:
            rebuilding.join(130)
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def submit(self, signal_name: str, body: bytes, content_type: str) -> Future:
        """A future of the NormalizedBatch; its exception is a CollectorError on bad input,
        or a RetryableError when the worker holding the request died."""
        if self.workers == 0:
            future: Future = Future()
            try:
                future.set_result(normalize_body(self._inline, signal_name, body, content_type))
            except CollectorError as exc:
                future.set_exception(exc)
            return future
        executor = self._executor
        if executor is None:
            raise RetryableError("normalizer workers are restarting" if self._rebuilding
                                 else "normalizer workers are stopped", self.retry_after)
        try:
            inner = executor.submit(_work, signal_name, body, content_type)
        except (BrokenProcessPool, RuntimeError) as exc:
            self._broken(executor, exc)
            raise RetryableError(f"normalizer workers unavailable: {exc}",
                                 self.retry_after) from exc
        outer: Future = Future()

        def settle(done: Future) -> None:
            exc = done.exception()
            if exc is None:
                outer.set_result(done.result())
            elif isinstance(exc, BrokenProcessPool):
                self._broken(executor, exc)
                outer.set_exception(RetryableError(
                    "a normalizer worker died while reading the request; nothing of it was "
                    "stored, send it again", self.retry_after))
            else:
                outer.set_exception(exc)

        inner.add_done_callback(settle)
        return outer

    def _broken(self, executor: ProcessPoolExecutor, exc: BaseException) -> None:
        """Start rebuilding the pool, once per broken executor."""
        with self._lock:
            if self._executor is not executor or self._stopping.is_set():
                return
            self._executor = None
            self._rebuilding = threading.Thread(target=self._rebuild, args=(executor,),
                                                name="normalizer-rebuild", daemon=True)
            self._rebuilding.start()
        log.error("a normalizer worker died (%s); rebuilding the pool of %d workers",
                  exc, self.workers)

    def _rebuild(self, old: ProcessPoolExecutor) -> None:
        # The broken pool terminates its remaining workers with SIGTERM, which they ignore
        # (see the module doc): kill them, or its manager thread waits on them for ever.
        for process in list((getattr(old, "_processes", None) or {}).values()):
            try:
                process.kill()
            except (OSError, ValueError):
                pass  # already gone
        old.shutdown(wait=False, cancel_futures=True)
        delay = 0.5
        try:
            while not self._stopping.is_set():
                try:
                    executor = self._new_executor()
                except Exception as exc:  # noqa: BLE001 - retried with backoff, logged
                    log.error("cannot start normalizer workers (%s); retrying in %.1f s",
                              exc, delay)
                    self._stopping.wait(delay)
                    delay = min(delay * 2, 30.0)
                    continue
                with self._lock:
                    if self._stopping.is_set():
                        executor.shutdown(wait=False, cancel_futures=True)
                        return
                    self._executor = executor
                    self.restarts += 1
                log.info("normalizer pool rebuilt; ingest resumes")
                return
        finally:
            self._rebuilding = None
