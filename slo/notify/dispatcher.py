"""Delivers notifications off the evaluation path: one worker thread and one bounded queue per
notifier, so a slow or failing target delays only its own deliveries.

- `submit()` never blocks and never raises for delivery trouble. When a notifier's queue is
  full the OLDEST queued notification is dropped (the newest state is the one worth sending)
  and dead-lettered with reason `queue_full`, from the worker thread, not the caller's.
- Retryable failures are retried with exponential backoff and equal jitter
  (delay in [d/2, d], d = min(max_delay, base_delay x 2^(retry-1))); a Retry-After from the
  target replaces the backoff, capped at max_delay. After `max_attempts` attempts, or at once
  on a permanent failure, `dead_letter(notification, notifier_name, error, attempts)` is called.
- `shutdown(timeout)` stops intake, lets queues drain until the deadline, then dead-letters
  what is left with reason `shutdown`. It is idempotent and safe without `start()`.

The per-attempt timeout belongs to each notifier (its `timeout`), which bounds the HTTP call.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields

from slo.notify.base import DeliveryError, Notification, Notifier

log = logging.getLogger(__name__)

DeadLetter = Callable[[Notification, str, BaseException, int], None]
"""dead_letter(notification, notifier_name, error, attempts); called on a worker thread."""


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts include the first one; delays are seconds."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts {self.max_attempts}; expected >= 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must be >= 0 seconds")

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1 = the second attempt)."""
        if retry_after is not None:
            return min(self.max_delay, retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return rng.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class DispatcherStats:
    """Counters since start. `retried` counts retry attempts; `dead_lettered` counts every
    dead-letter record, including `dropped` (queue full) ones; `rejected` counts submits after
    shutdown; `queued` is the current backlog, in flight included."""

    submitted: int = 0
    sent: int = 0
    retried: int = 0
    dead_lettered: int = 0
    dropped: int = 0
    rejected: int = 0
    dead_letter_errors: int = 0
    queued: int = 0

    def __add__(self, other: DispatcherStats) -> DispatcherStats:
        return DispatcherStats(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                                  for f in fields(self)})


class _Lane:
    """The queue, worker and counters of one notifier."""

    def __init__(self, notifier: Notifier, policy: RetryPolicy, capacity: int):
        self.notifier = notifier
        self.policy = policy
        self.capacity = capacity
        self.pending: deque[Notification] = deque()
        self.evicted: deque[Notification] = deque()
        self.in_flight = False
        self.cond = threading.Condition()
        self.counts = dict.fromkeys(("submitted", "sent", "retried", "dead_lettered",
                                     "dropped", "rejected", "dead_letter_errors"), 0)
        self.thread: threading.Thread | None = None

    @property
    def idle(self) -> bool:
        return not (self.pending or self.evicted or self.in_flight)

    def stats(self) -> DispatcherStats:
        with self.cond:
            return DispatcherStats(**self.counts,
                                   queued=len(self.pending) + int(self.in_flight))


class Dispatcher:
    """Fan-out of notifications to named notifiers on background threads."""

    def __init__(self, notifiers: Mapping[str, Notifier], *,
                 dead_letter: DeadLetter | None = None,
                 retry: RetryPolicy = RetryPolicy(),
                 retries: Mapping[str, RetryPolicy] | None = None,
                 queue_size: int = 1000,
                 sleep: Callable[[float], None] | None = None,
                 rng: random.Random | None = None):
        """`retries` overrides `retry` per notifier name. `queue_size` is per notifier.
        `sleep` replaces the (interruptible) backoff wait, for tests."""
        if queue_size < 1:
            raise ValueError(f"queue_size {queue_size}; expected >= 1")
        unknown = set(retries or {}) - set(notifiers)
        if unknown:
            raise ValueError(f"retry policies for unknown notifiers {sorted(unknown)}; "
                             f"known: {sorted(notifiers)}")
        self._lanes = {name: _Lane(n, (retries or {}).get(name, retry), queue_size)
                       for name, n in notifiers.items()}
        self._queue_size = queue_size
        self._dead_letter = dead_letter
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._abort = threading.Event()
        self._state_lock = threading.Lock()
        self._started = False
        self._closed = False

    @property
    def notifier_names(self) -> tuple[str, ...]:
        return tuple(self._lanes)

    @property
    def queue_size(self) -> int:
        """Capacity of each notifier's queue."""
        return self._queue_size

    def retry_policy(self, name: str) -> RetryPolicy:
        return self._lanes[name].policy

    def start(self) -> None:
        with self._state_lock:
            if self._started or self._closed:
                return
            self._started = True
            for name, lane in self._lanes.items():
                lane.thread = threading.Thread(target=self._run, args=(name, lane), daemon=True,
                                               name=f"notify-{name}")
                lane.thread.start()
        log.info("notification dispatcher started: %s", ", ".join(
            f"{name} ({type(lane.notifier).__name__}, {lane.policy.max_attempts} attempts)"
            for name, lane in self._lanes.items()) or "no notifiers")

    def __enter__(self) -> Dispatcher:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.shutdown()

    def submit(self, notification: Notification, to: Iterable[str] | None = None) -> bool:
        """Queue `notification` for the notifiers named in `to` (all when None). Returns
        False when the dispatcher is shut down (counted as rejected). Raises ValueError for
        an unknown notifier name: that is a routing-config bug, not a delivery failure."""
        names = list(self._lanes) if to is None else list(to)
        unknown = [n for n in names if n not in self._lanes]
        if unknown:
            raise ValueError(f"unknown notifier(s) {unknown}; configured: {list(self._lanes)}")
        accepted = True
        for name in names:
            lane = self._lanes[name]
            with lane.cond:  # _closed is read under the lane lock: see shutdown()
                if self._closed:
                    lane.counts["rejected"] += 1
                    accepted = False
                    continue
                lane.counts["submitted"] += 1
                if len(lane.pending) >= lane.capacity:
                    lane.evicted.append(lane.pending.popleft())
                    lane.counts["dropped"] += 1
                lane.pending.append(notification)
                lane.cond.notify_all()
        return accepted

    def stats(self, name: str | None = None) -> DispatcherStats:
        """Counters of one notifier, or summed over all."""
        if name is not None:
            return self._lanes[name].stats()
        total = DispatcherStats()
        for lane in self._lanes.values():
            total = total + lane.stats()
        return total

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queue is empty and nothing is in flight; False on timeout.
        Only meaningful once started."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for lane in self._lanes.values():
            with lane.cond:
                while not lane.idle:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    lane.cond.wait(remaining)
        return True

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop intake, drain for up to `timeout` seconds, dead-letter the rest."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            started = self._started
        for lane in self._lanes.values():  # barrier: a submit that missed _closed has
            with lane.cond:                # finished queueing, so nothing lands after the
                pass                       # final drain or abandon below
        if not started:  # nothing will ever deliver what is queued: record it
            for name, lane in self._lanes.items():
                self._abandon(name, lane)
            return
        drained = self.flush(timeout)
        self._abort.set()
        for lane in self._lanes.values():
            with lane.cond:
                lane.cond.notify_all()
        for lane in self._lanes.values():
            if lane.thread is not None:
                lane.thread.join(timeout=0.5 if drained else 1.0)
        log.info("notification dispatcher stopped (%s): %s",
                 "drained" if drained else f"not drained within {timeout:g}s",
                 self.stats())

    # -- worker side -------------------------------------------------------------------

    def _run(self, name: str, lane: _Lane) -> None:
        while True:
            with lane.cond:
                while not (lane.pending or lane.evicted or self._abort.is_set()):
                    lane.cond.wait()
                if lane.evicted:
                    dropped, job = lane.evicted.popleft(), None
                elif lane.pending and not self._abort.is_set():
                    dropped, job = None, lane.pending.popleft()
                else:
                    break
                lane.in_flight = True  # flush() waits for dead letters too
            if dropped is not None:
                self._record(name, lane, dropped, self._queue_full(name, lane), 0)
            else:
                self._deliver(name, lane, job)
            with lane.cond:
                lane.in_flight = False
                lane.cond.notify_all()
        self._abandon(name, lane)

    def _deliver(self, name: str, lane: _Lane, notification: Notification) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                lane.notifier.send(notification)
            except DeliveryError as exc:
                error: BaseException = exc
                retryable = exc.retryable
                retry_after = exc.retry_after
            except Exception as exc:  # a notifier bug must not kill the lane; it is recorded
                log.exception("notifier %s raised %s; dead-lettering", name,
                              exc.__class__.__name__)
                error, retryable, retry_after = exc, False, None
            else:
                with lane.cond:
                    lane.counts["sent"] += 1
                return
            if not retryable or attempt >= lane.policy.max_attempts:
                self._record(name, lane, notification, error, attempt)
                return
            wait = lane.policy.delay(attempt, self._rng, retry_after)
            log.debug("notifier %s: attempt %d failed (%s); retrying in %.3gs", name, attempt,
                      error, wait)
            if self._pause(wait):
                self._record(name, lane, notification, DeliveryError(
                    f"{name}: shut down while retrying after: {error}", retryable=True,
                    reason="shutdown"), attempt)
                return
            with lane.cond:
                lane.counts["retried"] += 1

    def _pause(self, seconds: float) -> bool:
        """Wait; True when the dispatcher is aborting."""
        if self._sleep is not None:
            self._sleep(seconds)
            return self._abort.is_set()
        return self._abort.wait(seconds)

    def _abandon(self, name: str, lane: _Lane) -> None:
        with lane.cond:
            evicted, pending = list(lane.evicted), list(lane.pending)
            lane.evicted.clear()
            lane.pending.clear()
        for notification in evicted:
            self._record(name, lane, notification, self._queue_full(name, lane), 0)
        for notification in pending:
            self._record(name, lane, notification, DeliveryError(
                f"{name}: dispatcher shut down before delivery", retryable=True,
                reason="shutdown"), 0)

    @staticmethod
    def _queue_full(name: str, lane: _Lane) -> DeliveryError:
        return DeliveryError(f"{name}: queue full ({lane.capacity}); dropped the oldest "
                             f"notification", retryable=True, reason="queue_full")

    def _record(self, name: str, lane: _Lane, notification: Notification,
                error: BaseException, attempts: int) -> None:
        with lane.cond:
            lane.counts["dead_lettered"] += 1
        # Final failures are rare and each one matters to the on-call: one line each. Queue
        # evictions can come in floods; they are counted (`dropped`) and logged at debug.
        level = logging.DEBUG if getattr(error, "reason", "") == "queue_full" else logging.WARNING
        log.log(level, "notification %s for %s dead-lettered after %d attempt(s): %s",
                notification.group_key, name, attempts, error)
        if self._dead_letter is None:
            return
        try:
            self._dead_letter(notification, name, error, attempts)
        except Exception:  # the record is lost, but the lane must live: log and count
            with lane.cond:
                lane.counts["dead_letter_errors"] += 1
            log.exception("dead-letter callback failed for notifier %s", name)
