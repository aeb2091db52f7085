"""Admission control, after the OpenTelemetry Collector's memory_limiter: what a receiver
checks before it takes on a request, so overload is answered "try later" instead of growing
memory without bound.

Three limits, all refused as retryable (nothing of a refused request is stored):

* concurrent requests being read, decoded or made durable (`max_concurrent_requests`),
* decompressed request bytes held meanwhile (`max_inflight_bytes`; one request is always let
  through, so a large request can never starve),
  -- both answered 429 Too Many Requests / RESOURCE_EXHAUSTED + RetryInfo;
* the resident memory of the collector and its normalizer workers (`memory_limit`), sampled
  every 250 ms: above its soft limit (80 %, the memory_limiter's default spike allowance)
  new requests get 503 / UNAVAILABLE + Retry-After until it falls back below.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from typing import Callable

import psutil

from collector.errors import RetryableError

log = logging.getLogger(__name__)

SOFT_LIMIT = 0.8  # fraction of memory_limit above which requests are refused
SAMPLE_EVERY = 0.25  # seconds between memory samples


class Overloaded(RetryableError):
    """More requests or bytes in flight than allowed (429 / RESOURCE_EXHAUSTED)."""

    http_status = 429


class MemoryPressure(RetryableError):
    """The collector's memory is over its soft limit (503 / UNAVAILABLE)."""


def default_memory_limit() -> int:
    """Half the memory this process may use: the cgroup's limit where one is set, else the
    machine's."""
    total = psutil.virtual_memory().total
    try:
        text = open("/sys/fs/cgroup/memory.max").read().strip()
        if text.isdigit():
            total = min(total, int(text))
    except OSError:
        pass
    return total // 2


class Ticket:
    """One admitted request; `charge` its decompressed size, `release` when answered."""

    def __init__(self, admission: Admission):
        self._admission = admission
        self.nbytes = 0
        self._released = False

    def charge(self, nbytes: int) -> None:
        self._admission._charge(self, nbytes)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._admission._release(self)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *_) -> None:
        self.release()


class Admission:
    def __init__(self, *, max_requests: int, max_bytes: int, memory_limit: int,
                 retry_after: float, worker_pids: Callable[[], list[int]] = list):
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.memory_limit = memory_limit
        self.retry_after = retry_after
        self._worker_pids = worker_pids
        self._lock = threading.Lock()
        self.requests = 0
        self.inflight_bytes = 0
        self.memory_bytes = 0  # last sample: collector + workers, resident
        self.refused: Counter = Counter()  # requests refused, by limit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def under_pressure(self) -> bool:
        return bool(self.memory_limit) and self.memory_bytes > self.memory_limit * SOFT_LIMIT

    def start(self) -> None:
        if self.memory_limit and self._thread is None:
            self._stop.clear()
            self._sample()
            self._thread = threading.Thread(target=self._watch, name="memory-limiter",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def admit(self) -> Ticket:
        """Take on one request, or raise Overloaded / MemoryPressure."""
        if self.under_pressure:
            self.refused["memory"] += 1
            raise MemoryPressure(
                f"the collector uses {self.memory_bytes >> 20} MiB, over "
                f"{SOFT_LIMIT:.0%} of its memory_limit of {self.memory_limit >> 20} MiB; "
                "retry later", self.retry_after)
        with self._lock:
            if self.requests >= self.max_requests:
                self.refused["requests"] += 1
                raise Overloaded(f"{self.requests} requests are in flight, the limit "
                                 f"(max_concurrent_requests); retry later", self.retry_after)
            self.requests += 1
        return Ticket(self)

    def _charge(self, ticket: Ticket, nbytes: int) -> None:
        with self._lock:
            alone = self.inflight_bytes == ticket.nbytes
            if not alone and self.inflight_bytes + nbytes > self.max_bytes:
                self.refused["bytes"] += 1
                raise Overloaded(f"{self.inflight_bytes + nbytes} request bytes would be in "
                                 f"flight, over max_inflight_bytes {self.max_bytes}; retry "
                                 "later", self.retry_after)
            ticket.nbytes += nbytes
            self.inflight_bytes += nbytes

    def _release(self, ticket: Ticket) -> None:
        with self._lock:
            self.requests -= 1
            self.inflight_bytes -= ticket.nbytes

    def _sample(self) -> None:
        total = 0
        for pid in [os.getpid(), *self._worker_pids()]:
            try:
                total += psutil.Process(pid).memory_info().rss
            except psutil.Error:
                pass  # a worker that just exited
        was = self.under_pressure
        self.memory_bytes = total
        if self.under_pressure != was:
            log.warning("memory %s MiB is %s the soft limit of %d MiB: %s", total >> 20,
                        "over" if not was else "back under",
                        int(self.memory_limit * SOFT_LIMIT) >> 20,
                        "refusing new requests (503)" if not was else "accepting again")

    def _watch(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self._sample()

    def metrics(self) -> dict[str, float]:
        out = {"policyscope_inflight_requests": float(self.requests),
               "policyscope_inflight_bytes": float(self.inflight_bytes),
               "policyscope_memory_bytes": float(self.memory_bytes),
               "policyscope_memory_limit_bytes": float(self.memory_limit)}
        for limit in ("requests", "bytes", "memory"):
            out[f'policyscope_refused_requests_total{{limit="{limit}"}}'] = \
                float(self.refused[limit])
        return out
