"""Notifiers against local HTTP servers started by the tests: payload shape per target,
HMAC signatures, retries, Retry-After, timeouts, dead letters, and that submitting never
blocks the evaluator."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from slo.notify import AlertNotice, DeliveryError, Dispatcher, Notification, RetryPolicy
from slo.notify.alertmanager import ALERTNAME, AlertmanagerNotifier
from slo.notify.config import build_dispatcher, build_notifiers, parse_notify_config
from slo.notify.pagerduty import PagerDutyNotifier
from slo.notify.secrets import Secret
from slo.notify.slack import SlackNotifier
from slo.notify.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookNotifier,
    verify_signature,
)

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FAST = RetryPolicy(max_attempts=5, base_delay=0.001, max_delay=0.01)


# -- a recording HTTP server -------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering; cut short when the test ends


@dataclass
class Received:
    path: str
    headers: Message  # case-insensitive, as HTTP header names are
    body: bytes

    def json(self):
        return json.loads(self.body)


class RecordingServer:
    """Answers POSTs from a script of Replies (then 200), recording each request on arrival."""

    def __init__(self, replies=()):
        self.replies = deque(replies)
        self.requests: list[Received] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with owner._lock:
                    owner.requests.append(Received(self.path, self.headers, body))
                    reply = owner.replies.popleft() if owner.replies else Reply()
                if reply.delay:
                    owner.release.wait(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(*replies: Reply) -> RecordingServer:
        server = RecordingServer(replies)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def dead_letters():
    return []


@pytest.fixture
def dispatch(dead_letters):
    """A started Dispatcher over the given notifiers, shut down at teardown."""
    made = []

    def make(*notifiers, retry=FAST, **kwargs) -> Dispatcher:
        d = Dispatcher({n.name: n for n in notifiers}, retry=retry,
                       dead_letter=lambda *record: dead_letters.append(record), **kwargs)
        d.start()
        made.append(d)
        return d

    yield make
    for d in made:
        d.shutdown(timeout=1)


def notice(**overrides) -> AlertNotice:
    values = dict(alert_id="deny-rate/page/env=prod", slo="deny-rate", severity="page",
                  state="firing", summary="deny-rate burns 20.5x its budget over 1h",
                  long_window="1h", short_window="5m", factor=14.4, burn_long=20.5,
                  burn_short=31.0, budget_remaining=0.62, time_to_exhaustion_s=12_000.0,
                  dashboard_url="http://dash.example/slo?slo=deny-rate", started_at=T0,
                  dimensions={"env": "prod"})
    values.update(overrides)
    return AlertNotice(**values)


def resolved(alert: AlertNotice) -> AlertNotice:
    return replace(alert, state="resolved", resolved_at=T0 + timedelta(minutes=42))


def one(alert: AlertNotice | None = None) -> Notification:
    return Notification((alert or notice(),))


def delivered(d: Dispatcher) -> None:
    assert d.flush(timeout=10), f"deliveries did not finish: {d.stats()}"


# -- payload shape per target ------------------------------------------------------------


def test_pagerduty_triggers_then_resolves_with_the_same_dedup_key(serve, dispatch):
    server = serve()
    pd = PagerDutyNotifier("pd", Secret("R0UT1NGKEY"), url=server.url + "/v2/enqueue")
    d = dispatch(pd)
    firing = notice()
    d.submit(one(firing))
    delivered(d)
    d.submit(one(resolved(firing)))
    delivered(d)

    trigger, resolve = (r.json() for r in server.requests)
    assert [r.path for r in server.requests] == ["/v2/enqueue", "/v2/enqueue"]
    assert trigger["routing_key"] == resolve["routing_key"] == "R0UT1NGKEY"
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] == "deny-rate/page/env=prod"
    payload = trigger["payload"]
    assert payload["summary"] == "deny-rate burns 20.5x its budget over 1h"
    assert payload["severity"] == "critical"
    assert payload["source"] == "policyscope"
    assert payload["timestamp"] == "2025-03-01T12:00:00.000Z"
    assert (payload["component"], payload["group"], payload["class"]) == (
        "deny-rate", "deny-rate/page", "slo_burn_rate")
    assert payload["custom_details"] == {
        "alert_id": "deny-rate/page/env=prod", "slo": "deny-rate", "tier": "page",
        "long_window": "1h", "short_window": "5m", "factor": 14.4, "burn_long": 20.5,
        "burn_short": 31.0, "budget_remaining": 0.62, "time_to_exhaustion_s": 12000.0,
        "dimensions": {"env": "prod"}}
    assert trigger["links"] == [{"href": "http://dash.example/slo?slo=deny-rate",
                                 "text": "PolicyScope dashboard"}]
    assert server.requests[0].headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("severity, expected", [
    pytest.param("page", "critical", id="a page tier alert is a critical PagerDuty event"),
    pytest.param("ticket", "warning", id="a ticket tier alert is a warning PagerDuty event"),
])
def test_pagerduty_maps_the_tier_to_an_event_severity(serve, severity, expected):
    server = serve()
    PagerDutyNotifier("pd", Secret("k"), url=server.url).send(one(notice(severity=severity)))
    assert server.requests[0].json()["payload"]["severity"] == expected


def test_pagerduty_sends_one_event_per_alert_of_a_group(serve):
    server = serve()
    group = Notification((notice(), notice(alert_id="deny-rate/page/env=stage",
                                           dimensions={"env": "stage"})))
    PagerDutyNotifier("pd", Secret("k"), url=server.url).send(group)
    assert [r.json()["dedup_key"] for r in server.requests] == [
        "deny-rate/page/env=prod", "deny-rate/page/env=stage"]


def test_alertmanager_posts_a_list_of_alerts_and_sets_ends_at_on_resolve(serve):
    server = serve()
    am = AlertmanagerNotifier("am", server.url + "/")
    firing = notice(dimensions={"env": "prod", "policy.id": "p-1"})
    am.send(Notification((firing, resolved(notice(alert_id="other", dimensions={})))))

    request = server.requests[0]
    assert request.path == "/api/v2/alerts"
    sent = request.json()
    assert isinstance(sent, list) and len(sent) == 2
    first, second = sent
    assert first["labels"] == {"alertname": ALERTNAME, "slo": "deny-rate", "severity": "page",
                               "env": "prod", "policy_id": "p-1"}
    annotations = first["annotations"]
    assert annotations["summary"] == "deny-rate burns 20.5x its budget over 1h"
    assert annotations["dashboard"] == "http://dash.example/slo?slo=deny-rate"
    assert (annotations["burn_long"], annotations["burn_short"], annotations["factor"]) == (
        "20.5", "31", "14.4")
    assert (annotations["long_window"], annotations["short_window"]) == ("1h", "5m")
    assert "burn 20.5x over 1h, 31x over 5m (threshold 14.4x)" in annotations["description"]
    assert all(isinstance(v, str) for v in annotations.values())
    assert first["startsAt"] == "2025-03-01T12:00:00.000Z"
    assert "endsAt" not in first
    assert first["generatorURL"] == "http://dash.example/slo?slo=deny-rate"
    assert second["endsAt"] == "2025-03-01T12:42:00.000Z"
    assert second["labels"] == {"alertname": ALERTNAME, "slo": "deny-rate", "severity": "page"}


def test_slack_sends_text_and_one_block_section_per_alert(serve):
    server = serve()
    slack = SlackNotifier("chat", Secret(server.url + "/services/T0/B0/tok"))
    group = Notification((notice(), resolved(notice(alert_id="b", dimensions={"env": "dev"}))))
    slack.send(group)

    request = server.requests[0]
    assert request.path == "/services/T0/B0/tok"
    body = request.json()
    assert body["text"] == ":red_circle: [FIRING] SLO deny-rate (page): 1 firing, 1 resolved"
    header, *sections = body["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert [s["type"] for s in sections] == ["section", "section"]
    first, second = (s["text"]["text"] for s in sections)
    assert first.startswith(":red_circle: *deny-rate burns 20.5x its budget over 1h*")
    assert "env=prod" in first and "62.0% left" in first and "exhausted in 3h 20m" in first
    assert "<http://dash.example/slo?slo=deny-rate|Open in the dashboard>" in first
    assert second.startswith(":large_green_circle:") and "_resolved_" in second


def test_slack_shows_a_firing_ticket_in_orange(serve):
    server = serve()
    SlackNotifier("chat", Secret(server.url)).send(one(notice(severity="ticket")))
    assert server.requests[0].json()["text"].startswith(":large_orange_circle: [FIRING]")


# -- the signed webhook ------------------------------------------------------------------


def test_webhook_signature_verifies_with_the_secret_and_fails_with_a_wrong_one(serve):
    server = serve()
    WebhookNotifier("hook", server.url + "/in", Secret("s3cret-hmac")).send(one())

    request = server.requests[0]
    timestamp = request.headers[TIMESTAMP_HEADER]
    signature = request.headers[SIGNATURE_HEADER]
    assert signature.startswith("sha256=") and len(signature) == len("sha256=") + 64
    assert abs(int(timestamp) - time.time()) < 60
    assert verify_signature("s3cret-hmac", timestamp, request.body, signature)
    assert not verify_signature("wrong-secret", timestamp, request.body, signature)
    assert not verify_signature("s3cret-hmac", timestamp, request.body + b" ", signature)
    assert not verify_signature("s3cret-hmac", str(int(timestamp) + 1), request.body, signature)
    body = request.json()
    assert (body["version"], body["group_key"], body["state"]) == (1, "deny-rate/page", "firing")
    assert body["alerts"][0]["alert_id"] == "deny-rate/page/env=prod"
    assert body["alerts"][0]["started_at"] == "2025-03-01T12:00:00.000Z"


# -- retries, timeouts and dead letters -----------------------------------------------


def test_retries_on_503_then_succeeds(serve, dispatch, dead_letters):
    server = serve(Reply(503), Reply(503), Reply(200))
    d = dispatch(SlackNotifier("chat", Secret(server.url)))
    d.submit(one())
    delivered(d)
    assert len(server.requests) == 3
    stats = d.stats()
    assert (stats.sent, stats.retried, stats.dead_lettered) == (1, 2, 0)
    assert dead_letters == []


def test_honours_retry_after_from_a_429(serve, dispatch):
    server = serve(Reply(429, headers={"Retry-After": "2"}), Reply(200))
    waits = []
    d = dispatch(SlackNotifier("chat", Secret(server.url)),
                 retry=RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=30),
                 sleep=waits.append)
    d.submit(one())
    delivered(d)
    assert waits == [2.0]
    assert len(server.requests) == 2 and d.stats().sent == 1


def test_honours_retry_after_in_real_time(serve, dispatch):
    server = serve(Reply(503, headers={"Retry-After": "1"}), Reply(200))
    d = dispatch(SlackNotifier("chat", Secret(server.url)),
                 retry=RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=5))
    started = time.monotonic()
    d.submit(one())
    delivered(d)
    assert time.monotonic() - started >= 0.95
    assert d.stats().sent == 1


def test_a_400_is_dead_lettered_once_without_retry(serve, dispatch, dead_letters):
    server = serve(Reply(400, body=b'{"status":"invalid event"}'))
    d = dispatch(PagerDutyNotifier("pd", Secret("k"), url=server.url))
    notification = one()
    d.submit(notification)
    delivered(d)
    assert len(server.requests) == 1
    assert len(dead_letters) == 1
    sent, name, error, attempts = dead_letters[0]
    assert (sent, name, attempts) == (notification, "pd", 1)
    assert isinstance(error, DeliveryError)
    assert (error.retryable, error.status, error.reason) == (False, 400, "http_400")
    assert "invalid event" in str(error)
    assert (d.stats().retried, d.stats().dead_lettered, d.stats().sent) == (0, 1, 0)


def test_503_until_max_attempts_is_dead_lettered(serve, dispatch, dead_letters):
    server = serve(*[Reply(503)] * 10)
    d = dispatch(AlertmanagerNotifier("am", server.url),
                 retry=RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01))
    d.submit(one())
    delivered(d)
    assert len(server.requests) == 3
    assert len(dead_letters) == 1
    _, name, error, attempts = dead_letters[0]
    assert (name, attempts, error.reason, error.retryable) == ("am", 3, "http_503", True)
    assert (d.stats().retried, d.stats().dead_lettered) == (2, 1)


def test_a_slow_server_hits_the_timeout_and_is_retried(serve, dispatch, dead_letters):
    server = serve(Reply(delay=5), Reply(200))
    d = dispatch(WebhookNotifier("hook", server.url, Secret("k"), timeout=0.2))
    started = time.monotonic()
    d.submit(one())
    delivered(d)
    assert time.monotonic() - started < 3
    assert len(server.requests) == 2
    assert (d.stats().sent, d.stats().retried) == (1, 1)
    assert dead_letters == []


def test_a_refused_connection_is_retried_then_dead_lettered(dispatch, dead_letters):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = dispatch(SlackNotifier("chat", Secret(f"http://127.0.0.1:{port}/x")),
                 retry=RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.01))
    d.submit(one())
    delivered(d)
    _, _, error, attempts = dead_letters[0]
    assert (attempts, error.reason, error.retryable) == (2, "connection", True)


def test_a_redirect_is_not_followed_and_is_dead_lettered(serve, dispatch, dead_letters):
    server = serve(Reply(301, headers={"Location": "http://elsewhere.example/"}))
    d = dispatch(SlackNotifier("chat", Secret(server.url)))
    d.submit(one())
    delivered(d)
    assert len(server.requests) == 1
    assert dead_letters[0][2].reason == "redirect"


# -- never blocking the evaluator ----------------------------------------------------


def test_submit_returns_immediately_while_the_server_hangs(serve, dead_letters):
    server = serve(*[Reply(delay=30)] * 50)
    d = Dispatcher({"chat": SlackNotifier("chat", Secret(server.url), timeout=5)},
                   retry=FAST, queue_size=10,
                   dead_letter=lambda *record: dead_letters.append(record))
    d.start()
    try:
        started = time.monotonic()
        for _ in range(25):
            assert d.submit(one()) is True
        elapsed = time.monotonic() - started
        assert elapsed < 0.2, f"25 submits took {elapsed:.3f}s"
        deadline = time.monotonic() + 5
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(server.requests) == 1  # the worker is stuck on the first; the rest queue
        stats = d.stats()
        assert stats.submitted == 25
        assert stats.dropped + stats.queued == 25  # a queue of 10 (+1 in flight) keeps the newest
        assert stats.queued == 11 or (stats.queued, stats.dropped) == (10, 15)
    finally:
        server.release.set()
        d.shutdown(timeout=0.5)
    assert d.submit(one()) is False
    assert d.stats().rejected == 1


def test_a_full_queue_drops_and_dead_letters_the_oldest(serve, dead_letters):
    server = serve()
    d = Dispatcher({"am": AlertmanagerNotifier("am", server.url)}, retry=FAST, queue_size=2,
                   dead_letter=lambda *record: dead_letters.append(record))
    first, second, third = (one(notice(alert_id=i)) for i in ("a1", "a2", "a3"))
    for n in (first, second, third):  # not started yet: all three queue
        d.submit(n)
    d.start()
    delivered(d)
    d.shutdown()
    sent_ids = [r.json()[0]["annotations"]["alert_id"] for r in server.requests]
    assert sent_ids == ["a2", "a3"]
    assert [(n, error.reason, attempts) for n, _, error, attempts in dead_letters] == [
        (first, "queue_full", 0)]
    assert (d.stats().dropped, d.stats().dead_lettered, d.stats().sent) == (1, 1, 2)


def test_shutdown_drains_the_queue_before_returning(serve, dead_letters):
    server = serve(Reply(delay=0.05), Reply(delay=0.05), Reply(delay=0.05))
    d = Dispatcher({"am": AlertmanagerNotifier("am", server.url)}, retry=FAST,
                   dead_letter=lambda *record: dead_letters.append(record))
    d.start()
    for i in range(3):
        d.submit(one(notice(alert_id=f"a{i}")))
    d.shutdown(timeout=5)
    assert len(server.requests) == 3 and d.stats().sent == 3
    assert dead_letters == []


def test_shutdown_dead_letters_what_it_could_not_deliver(serve, dead_letters):
    server = serve(*[Reply(delay=30)] * 5)
    d = Dispatcher({"am": AlertmanagerNotifier("am", server.url, timeout=0.3)},
                   retry=RetryPolicy(max_attempts=5, base_delay=10, max_delay=10),
                   dead_letter=lambda *record: dead_letters.append(record))
    d.start()
    for i in range(3):
        d.submit(one(notice(alert_id=f"a{i}")))
    d.shutdown(timeout=0.5)
    deadline = time.monotonic() + 5
    while len(dead_letters) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(n.alerts[0].alert_id for n, *_ in dead_letters) == ["a0", "a1", "a2"]
    assert {error.reason for _, _, error, _ in dead_letters} == {"shutdown"}
    assert d.stats().sent == 0


# -- secrets -------------------------------------------------------------------------


def test_secrets_never_appear_in_logs_errors_or_reprs(serve, tmp_path, caplog, dead_letters):
    chat, pd, hook = serve(Reply(503), Reply(503)), serve(Reply(400, body=b"bad")), serve()
    slack_token = "T0KENxSLACKxB0B"
    hmac_key = "HMACxK3Yx42"
    routing_key = "R0UT1NGxK3Yx99"
    (tmp_path / "hmac").write_text(hmac_key + "\n")
    env = {"SLACK_URL": f"{chat.url}/services/{slack_token}", "PD_KEY": routing_key}
    config = parse_notify_config({"notifiers": [
        {"name": "chat", "type": "slack", "url": "env:SLACK_URL", "max_attempts": 2,
         "backoff_base": "1ms", "backoff_max": "10ms"},
        {"name": "pd", "type": "pagerduty", "url": pd.url, "routing_key": "env:PD_KEY"},
        {"name": "hook", "type": "webhook", "url": hook.url,
         "secret": f"file:{tmp_path / 'hmac'}"},
    ]})
    caplog.set_level(logging.DEBUG)
    d = build_dispatcher(config, env=env, dead_letter=lambda *r: dead_letters.append(r))
    d.start()
    d.submit(one())
    delivered(d)
    d.shutdown()

    assert (len(chat.requests), len(pd.requests), len(hook.requests)) == (2, 1, 1)
    assert sorted(name for _, name, _, _ in dead_letters) == ["chat", "pd"]
    assert verify_signature(hmac_key, hook.requests[0].headers[TIMESTAMP_HEADER],
                            hook.requests[0].body, hook.requests[0].headers[SIGNATURE_HEADER])
    assert pd.requests[0].json()["routing_key"] == routing_key
    notifiers = build_notifiers(config, env)
    exposed = "\n".join([caplog.text, repr(config), str(config.model_dump()),
                         repr(notifiers), str(d.stats()),
                         *(repr(error) + str(error) + repr(vars(error))
                           for *_, error, _ in dead_letters)])
    for secret in (slack_token, hmac_key, routing_key):
        assert secret not in exposed
    assert "env:SLACK_URL" in repr(notifiers["chat"]) and "env:PD_KEY" in repr(notifiers["pd"])
    assert "dead-lettered" in caplog.text  # the log did speak, just not the secrets
    for *_, error, _ in dead_letters:  # no urllib exception (which holds the URL) rides along
        assert error.__cause__ is None and error.__context__ is None
