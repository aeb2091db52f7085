"""The fault campaign's traffic: a numbered event set and the clients that send it.

Event `n` (0 <= n < events) is one `policy.decision` record whose `log.record.uid` is
`fc-<tag>-<n:012d>` and whose `policy.resource.id` (column `resource_id`) is `num-<n:012d>`,
at event time `start_ns + n` ms, so the stored table can be checked number by number. Request
`r` carries the numbers `[r * per_request, (r + 1) * per_request)`. Bodies are made on demand
from one serialized template per request size, by patching the fixed-width digits and the
fixed64 times in place (under 1 ms per 1,000 records, where building them costs ~0.5 s),
so an event set of any size costs no memory.

`Senders` are client threads POSTing `application/x-protobuf` to `/v1/logs`, each retrying a
request until it is acknowledged (200): after a connection error (the collector is down) at
once after a short pause, after 503 / 429 following `Retry-After` capped at `retry_cap`
seconds. A request counts as acknowledged only once a 200 was read; every `abandon_every`-th
request is sent once and its connection closed without reading the answer (a client that
gave up), so its events are never acknowledged and may or may not be stored.
"""

from __future__ import annotations

import http.client
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

DIGITS = 12
ID_PREFIX = "fc-{tag}-"
NUMBER_PREFIX = "num-"
_TIME_SENTINEL = 0x5A5A_5A5A_5A00_0000  # template times, found and overwritten per request
TEAMS = ("payments", "checkout", "identity", "search", "platform")
POLICIES = ("k8s.require-non-root", "k8s.disallow-privileged", "k8s.allowed-registries",
            "k8s.require-resource-limits", "iac.s3-encryption", "api.authz.rbac")
OUTCOMES = ("allow",) * 8 + ("deny", "warn")


class EventSet:
    """`events` numbered events in requests of `per_request` (the last may be shorter)."""

    def __init__(self, events: int, per_request: int, tag: str, start_ns: int | None = None):
        if events < 1 or per_request < 1:
            raise ValueError(f"events ({events}) and per_request ({per_request}) must be >= 1")
        self.events = events
        self.per_request = per_request
        self.tag = tag
        self.id_prefix = ID_PREFIX.format(tag=tag)
        # an hour ago, one event per millisecond: 3.6M events before "now"
        self.start_ns = start_ns if start_ns is not None else time.time_ns() - 3600 * 10**9
        self.requests = -(-events // per_request)
        self._templates: dict[int, tuple[bytes, list[tuple[int, int, int]]]] = {}

    def numbers(self, request: int) -> range:
        lo = request * self.per_request
        return range(lo, min(lo + self.per_request, self.events))

    def body(self, request: int) -> bytes:
        """The serialized ExportLogsServiceRequest of request number `request`."""
        numbers = self.numbers(request)
        template, slots = self._template(len(numbers))
        body = bytearray(template)
        for n, (id_at, number_at, time_at) in zip(numbers, slots):
            digits = b"%0*d" % (DIGITS, n)
            body[id_at:id_at + DIGITS] = digits
            body[number_at:number_at + DIGITS] = digits
            struct.pack_into("<Q", body, time_at, self.start_ns + n * 1_000_000)
        return bytes(body)

    def _template(self, size: int) -> tuple[bytes, list[tuple[int, int, int]]]:
        if size not in self._templates:
            self._templates[size] = self._build(size)
        return self._templates[size]

    def _build(self, size: int) -> tuple[bytes, list[tuple[int, int, int]]]:
        """A request of `size` records and, per record, the offsets of its id digits, its
        number digits and its time (found by searching for their unique template values)."""
        request = logs_service_pb2.ExportLogsServiceRequest()
        rl = request.resource_logs.add()
        for key, value in (("k8s.cluster.name", "prod-eu-1"),
                           ("deployment.environment.name", "production")):
            kv = rl.resource.attributes.add()
            kv.key, kv.value.string_value = key, value
        sl = rl.scope_logs.add()
        sl.scope.name = "policyscope.bench.faults"
        for j in range(size):
            rec = sl.log_records.add()
            rec.time_unix_nano = _TIME_SENTINEL + j
            rec.event_name = "policy.decision"
            for key, value in (
                    ("policy.id", POLICIES[j % len(POLICIES)]),
                    ("policy.outcome", OUTCOMES[j % len(OUTCOMES)]),
                    ("policy.engine", "gatekeeper" if j % 3 else "kyverno"),
                    ("policy.severity", ("high", "medium", "low")[j % 3]),
                    ("policy.evaluation.duration", 0.001 + (j % 50) / 10_000),
                    ("policy.resource.kind", "Pod"),
                    ("policy.resource.id", f"{NUMBER_PREFIX}{j:0{DIGITS}d}"),
                    ("team.name", TEAMS[j % len(TEAMS)]),
                    ("service.name", "admission-controller"),
                    ("k8s.namespace.name", TEAMS[(j + 1) % len(TEAMS)]),
                    ("log.record.uid", f"{self.id_prefix}{j:0{DIGITS}d}")):
                kv = rec.attributes.add()
                kv.key = key
                if isinstance(value, float):
                    kv.value.double_value = value
                else:
                    kv.value.string_value = value
        body = request.SerializeToString()
        slots = []
        for j in range(size):
            digits = f"{j:0{DIGITS}d}".encode()
            id_at = _find_once(body, self.id_prefix.encode() + digits) + len(self.id_prefix)
            number_at = _find_once(body, NUMBER_PREFIX.encode() + digits) + len(NUMBER_PREFIX)
            time_at = _find_once(body, struct.pack("<Q", _TIME_SENTINEL + j))
            slots.append((id_at, number_at, time_at))
        return body, slots


def _find_once(body: bytes, needle: bytes) -> int:
    at = body.find(needle)
    if at < 0 or body.find(needle, at + 1) >= 0:
        raise AssertionError(f"template value {needle!r} is not in the body exactly once")
    return at


@dataclass
class Tally:
    """What the clients saw. `acknowledged[r]` is set once request r got a 200."""

    requests: int
    acknowledged: bytearray = field(init=False)
    abandoned: set = field(default_factory=set)
    given_up: set = field(default_factory=set)
    statuses: Counter = field(default_factory=Counter)  # HTTP status -> answers
    connection_errors: int = 0
    unexpected: list = field(default_factory=list)  # first few odd answers, for the report
    acknowledged_events: int = 0
    first_send: float | None = None
    last_ack: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.acknowledged = bytearray(self.requests)

    def note(self, message: str) -> None:
        with self.lock:
            if len(self.unexpected) < 20:
                self.unexpected.append(message)


class Senders:
    """`threads` client threads sending every request of `event_set` to 127.0.0.1:`port`."""

    def __init__(self, event_set: EventSet, port: int, *, threads: int, retry_cap: float,
                 abandon_every: int = 0, timeout: float = 60.0, max_odd_answers: int = 3):
        self.event_set = event_set
        self.port = port
        self.threads = threads
        self.retry_cap = retry_cap
        self.abandon_every = abandon_every
        self.timeout = timeout
        self.max_odd_answers = max_odd_answers
        self.tally = Tally(event_set.requests)
        self.stop = threading.Event()
        self._next = 0
        self._next_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.tally.first_send = time.monotonic()
        self._threads = [threading.Thread(target=self._loop, name=f"fault-client-{k}",
                                          daemon=True) for k in range(self.threads)]
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """True once every thread finished (all requests answered or the senders stopped)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    @property
    def done(self) -> bool:
        return bool(self._threads) and not any(t.is_alive() for t in self._threads)

    def abandons(self, request: int) -> bool:
        return self.abandon_every > 0 and request % self.abandon_every == self.abandon_every - 1

    def _take(self) -> int | None:
        with self._next_lock:
            if self._next >= self.event_set.requests or self.stop.is_set():
                return None
            self._next += 1
            return self._next - 1

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)

    def _loop(self) -> None:
        conn = self._connect()
        try:
            while (request := self._take()) is not None:
                body = self.event_set.body(request)
                if self.abandons(request):
                    self._abandon(request, body)
                else:
                    conn = self._send_until_acknowledged(conn, request, body)
        finally:
            conn.close()

    def _abandon(self, request: int, body: bytes) -> None:
        conn = self._connect()
        try:
            conn.request("POST", "/v1/logs", body=body,
                         headers={"Content-Type": "application/x-protobuf"})
        except (OSError, http.client.HTTPException):
            pass  # never sent whole: it is unacknowledged either way
        finally:
            conn.close()
        with self.tally.lock:
            self.tally.abandoned.add(request)

    def _send_until_acknowledged(self, conn, request: int, body: bytes):
        tally, odd = self.tally, 0
        headers = {"Content-Type": "application/x-protobuf"}
        while not self.stop.is_set():
            try:
                conn.request("POST", "/v1/logs", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = self._connect()
                with tally.lock:
                    tally.connection_errors += 1
                self.stop.wait(0.1)
                continue
            with tally.lock:
                tally.statuses[response.status] += 1
            if response.status == 200:
                if payload:  # partial_success: some records were rejected, not stored
                    tally.note(f"request {request}: 200 with partial_success {payload[:200]!r}")
                with tally.lock:
                    tally.acknowledged[request] = 1
                    tally.acknowledged_events += len(self.event_set.numbers(request))
                    tally.last_ack = time.monotonic()
                return conn
            if response.status in (429, 503):
                try:
                    delay = float(response.headers.get("Retry-After", "1"))
                except ValueError:
                    delay = 1.0
                self.stop.wait(min(max(delay, 0.0), self.retry_cap))
                continue
            odd += 1
            tally.note(f"request {request}: HTTP {response.status} {payload[:200]!r}")
            if odd >= self.max_odd_answers:
                with tally.lock:
                    tally.given_up.add(request)
                return conn
            self.stop.wait(0.1)
        with tally.lock:
            tally.given_up.add(request)
        return conn
