"""Notifier pieces that need no network: notices and grouping, secrets, the `notifiers:`
config, signatures, backoff, payload rendering, and the dispatcher over fake notifiers."""

from __future__ import annotations

import doctest
import pickle
import random
import re
import threading
from datetime import UTC, datetime

import pytest
import yaml

import slo.notify.alertmanager
import slo.notify.config
import slo.notify.describe
import slo.notify.transport
from slo.notify import (
    AlertNotice,
    DeliveryError,
    Dispatcher,
    Notification,
    RetryPolicy,
    Secret,
    SecretError,
    group_notices,
)
from slo.notify.alertmanager import label_name
from slo.notify.config import (
    NotifyConfigError,
    build_dispatcher,
    build_notifiers,
    parse_notify_config,
)
from slo.notify.pagerduty import PagerDutyNotifier, dedup_key, event
from slo.notify.slack import MAX_BLOCKS, SlackNotifier
from slo.notify.slack import render as slack_render
from slo.notify.webhook import WebhookNotifier, sign, verify_signature

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def notice(**overrides) -> AlertNotice:
    values = dict(alert_id="deny-rate/page/env=prod", slo="deny-rate", severity="page",
                  state="firing", summary="deny-rate burns fast", long_window="1h",
                  short_window="5m", factor=14.4, burn_long=20.5, burn_short=31.0,
                  budget_remaining=0.62, time_to_exhaustion_s=12_000.0,
                  dashboard_url="http://dash.example/slo", started_at=T0,
                  dimensions={"env": "prod"})
    values.update(overrides)
    return AlertNotice(**values)


@pytest.mark.parametrize("module", [
    slo.notify.describe, slo.notify.transport, slo.notify.alertmanager,
], ids=lambda m: f"the doctests of {m.__name__} pass")
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


# -- notices and grouping ----------------------------------------------------------------


@pytest.mark.parametrize("overrides, fragment", [
    pytest.param({"severity": "urgent"}, "severity 'urgent'; expected one of page, ticket",
                 id="an unknown severity is rejected"),
    pytest.param({"state": "pending"}, "state 'pending'; expected one of firing, resolved",
                 id="a pending alert is not notified"),
    pytest.param({"started_at": datetime(2025, 3, 1)}, "started_at",
                 id="a naive start time is rejected"),
    pytest.param({"alert_id": ""}, "alert_id is empty", id="an empty alert id is rejected"),
])
def test_alert_notice_rejects_bad_fields(overrides, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        notice(**overrides)


def test_alert_notice_stores_fractions_as_floats_and_times_in_utc():
    from datetime import timedelta, timezone
    from fractions import Fraction

    a = notice(factor=Fraction(72, 5), burn_long=Fraction(1, 3), burn_short=float("inf"),
               started_at=datetime(2025, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))))
    assert (a.factor, a.burn_long, a.burn_short) == (14.4, 1 / 3, None)
    assert a.started_at == T0 and a.started_at.tzinfo is UTC
    assert a.to_dict()["started_at"] == "2025-03-01T12:00:00.000Z"
    assert hash(a) == hash(notice(factor=14.4, burn_long=1 / 3, burn_short=None))


def test_group_notices_makes_one_notification_per_slo_and_tier():
    a = notice()
    b = notice(alert_id="b", dimensions={"env": "stage"})
    c = notice(alert_id="c", severity="ticket")
    d = notice(alert_id="d", slo="latency")
    groups = group_notices([a, c, b, d])
    assert [(g.group_key, [x.alert_id for x in g.alerts]) for g in groups] == [
        (("deny-rate", "page"), [a.alert_id, "b"]),
        (("deny-rate", "ticket"), ["c"]),
        (("latency", "page"), ["d"]),
    ]


def test_a_notification_fires_while_any_alert_fires():
    group = Notification((notice(), notice(alert_id="b", state="resolved", resolved_at=T0)))
    assert group.state == "firing"
    assert group.title == "[FIRING] SLO deny-rate (page): 1 firing, 1 resolved"
    assert Notification((notice(state="resolved"),)).state == "resolved"


def test_a_notification_refuses_alerts_of_different_groups():
    with pytest.raises(ValueError, match="must share"):
        Notification((notice(), notice(alert_id="x", severity="ticket")))
    with pytest.raises(ValueError, match="at least one alert"):
        Notification(())


# -- secrets -------------------------------------------------------------------------


def test_secret_resolves_env_and_file_references_and_hides_the_value(tmp_path):
    path = tmp_path / "key"
    path.write_text("from-file\n")
    from_env = Secret.resolve("env:TOKEN", key="k", env={"TOKEN": "from-env"})
    from_file = Secret.resolve(f"file:{path}", key="k")
    assert (from_env.reveal(), from_file.reveal()) == ("from-env", "from-file")
    assert repr(from_env) == str(from_env) == "Secret('env:TOKEN')"
    assert "from-file" not in repr(from_file) + f"{from_file}"
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(from_env)


@pytest.mark.parametrize("reference, fragment", [
    pytest.param("env:NOPE", "notifiers[x].secret: environment variable NOPE is not set",
                 id="a missing environment variable is named with the key"),
    pytest.param("env:EMPTY", "notifiers[x].secret: env:EMPTY is empty",
                 id="an empty environment variable is rejected"),
    pytest.param("file:/nonexistent/key", "cannot read secret file /nonexistent/key",
                 id="a missing file is named"),
    pytest.param("hunter2-in-clear", "value of 16 characters is not a reference",
                 id="a value in clear is rejected without being echoed"),
])
def test_secret_errors_name_the_key_and_the_reference(reference, fragment):
    with pytest.raises(SecretError) as info:
        Secret.resolve(reference, key="notifiers[x].secret", env={"EMPTY": "  "})
    assert fragment in str(info.value)
    assert "hunter2" not in str(info.value)


# -- the notifiers: config -------------------------------------------------------------


def test_the_documented_example_config_validates_and_builds(tmp_path):
    text = slo.notify.config.__doc__.split("\n\n")[1]
    data = yaml.safe_load(text.replace("/run/secrets/webhook-hmac", str(tmp_path / "hmac")))
    (tmp_path / "hmac").write_text("k")
    config = parse_notify_config(data)
    env = {"PAGERDUTY_ROUTING_KEY": "pd", "SLACK_WEBHOOK_URL": "https://hooks.slack.example/x"}
    notifiers = build_notifiers(config, env)
    assert {n: type(v).__name__ for n, v in notifiers.items()} == {
        "oncall-pager": "PagerDutyNotifier", "sre-chat": "SlackNotifier",
        "am": "AlertmanagerNotifier", "soar": "WebhookNotifier"}
    assert notifiers["am"].timeout == 2.0 and notifiers["oncall-pager"].timeout == 5.0
    assert config.notifiers[3].retry == RetryPolicy(8, 0.5, 30.0)


def test_an_empty_config_has_no_notifiers():
    assert build_notifiers(parse_notify_config(None)) == {}


@pytest.mark.parametrize("entry, fragment", [
    pytest.param({"name": "a", "type": "slack", "url": "env:U", "timout": "5s"},
                 "unknown key 'notifiers.0.timout'", id="a typo is rejected with its key path"),
    pytest.param({"name": "a", "type": "sms", "url": "env:U"}, "'notifiers.0.type'",
                 id="an unknown notifier type is rejected"),
    pytest.param({"name": "a", "type": "pagerduty"}, "'routing_key' is required",
                 id="pagerduty needs a routing key"),
    pytest.param({"name": "a", "type": "webhook", "url": "https://h.example"},
                 "'secret' is required", id="a webhook needs a signing secret"),
    pytest.param({"name": "a", "type": "alertmanager", "url": "http://am:9093",
                  "secret": "env:S"}, "'secret' is not a setting of this type",
                 id="a setting of another type is rejected"),
    pytest.param({"name": "a", "type": "pagerduty", "routing_key": "R0UT1NGKEY"},
                 "'routing_key' must be env:NAME or file:/path, not a value in clear",
                 id="a routing key in clear is rejected"),
    pytest.param({"name": "a", "type": "slack", "url": "https://hooks.slack.com/T/B/X0X0"},
                 "'url' is a credential for slack", id="a Slack URL in clear is rejected"),
    pytest.param({"name": "a", "type": "alertmanager", "url": "http://u:pw0rd@am:9093"},
                 "'url' carries credentials", id="a plain URL with a password is rejected"),
    pytest.param({"name": "a", "type": "alertmanager", "url": "am:9093"},
                 "'url' is not an http(s) URL", id="a URL without a scheme is rejected"),
    pytest.param({"name": "a", "type": "alertmanager", "url": "http://am", "timeout": "soon"},
                 "'notifiers.0.timeout'", id="a timeout that is not a duration is rejected"),
    pytest.param({"name": "a", "type": "alertmanager", "url": "http://am", "max_attempts": 0},
                 "'notifiers.0.max_attempts'", id="zero attempts are rejected"),
])
def test_bad_notifier_config_fails_naming_the_key(entry, fragment):
    with pytest.raises(NotifyConfigError) as info:
        parse_notify_config({"notifiers": [entry]}, source="policyscope.yaml")
    message = str(info.value)
    assert message.startswith("policyscope.yaml: ")
    assert fragment in message
    for secret in ("R0UT1NGKEY", "X0X0", "pw0rd"):
        assert secret not in message


def test_notifier_names_are_unique():
    entry = {"name": "a", "type": "alertmanager", "url": "http://am:9093"}
    with pytest.raises(NotifyConfigError, match="'a' is used twice"):
        parse_notify_config({"notifiers": [entry, entry]})


@pytest.mark.parametrize("entry, fragment", [
    pytest.param({"name": "chat", "type": "slack", "url": "env:SLACK_URL"},
                 "notifiers[chat].url: environment variable SLACK_URL is not set",
                 id="a missing Slack URL variable is named"),
    pytest.param({"name": "pd", "type": "pagerduty", "routing_key": "env:PD_KEY"},
                 "notifiers[pd].routing_key: environment variable PD_KEY is not set",
                 id="a missing routing key variable is named"),
    pytest.param({"name": "hook", "type": "webhook", "url": "http://h", "secret": "file:/no/f"},
                 "notifiers[hook].secret: cannot read secret file /no/f",
                 id="a missing secret file is named"),
    pytest.param({"name": "chat", "type": "slack", "url": "env:BAD_URL"},
                 "notifiers[chat]: notifier 'chat' url is not an http(s) URL",
                 id="a resolved URL that is not http is rejected without showing it"),
])
def test_build_notifiers_names_the_missing_reference(entry, fragment):
    config = parse_notify_config({"notifiers": [entry]})
    with pytest.raises(NotifyConfigError) as info:
        build_notifiers(config, env={"BAD_URL": "slack-t0ken"})
    assert fragment in str(info.value)
    assert "slack-t0ken" not in str(info.value)


# -- signatures and payloads -----------------------------------------------------------


def test_the_signature_is_an_hmac_of_timestamp_dot_body():
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("k", "1700000000", b"{}") == f"sha256={expected}"


@pytest.mark.parametrize("secret, timestamp, body, now, ok", [
    pytest.param("k", "1700000000", b"{}", 1700000100, True, id="the right secret verifies"),
    pytest.param("x", "1700000000", b"{}", 1700000100, False, id="a wrong secret fails"),
    pytest.param("k", "1700000000", b"{ }", 1700000100, False, id="a changed body fails"),
    pytest.param("k", "1700000000", b"{}", 1700000301, False,
                 id="a signature older than 5 minutes is a replay"),
    pytest.param("k", "soon", b"{}", 1700000100, False, id="a non-numeric timestamp fails"),
])
def test_verify_signature(secret, timestamp, body, now, ok):
    header = sign("k", "1700000000", b"{}")
    assert verify_signature(secret, timestamp, body, header, now=now) is ok


def test_verify_signature_rejects_a_header_without_the_scheme():
    assert not verify_signature("k", "1", b"{}", sign("k", "1", b"{}")[7:], tolerance_s=None)


def test_pagerduty_hashes_a_dedup_key_longer_than_255_characters():
    long_id = "x" * 300
    assert len(dedup_key(notice(alert_id=long_id))) == 64
    assert dedup_key(notice()) == "deny-rate/page/env=prod"


def test_pagerduty_resolve_events_carry_only_the_key_and_the_action():
    body = event(notice(state="resolved", resolved_at=T0), "rk")
    assert body == {"routing_key": "rk", "dedup_key": "deny-rate/page/env=prod",
                    "event_action": "resolve"}


def test_alertmanager_dimension_labels_never_shadow_identity_labels():
    assert label_name("slo") == "dimension_slo"
    assert label_name("__name__") == "dimension___name__"
    assert label_name("team-name") == "team_name"


def test_slack_ends_a_large_group_with_a_count_instead_of_exceeding_50_blocks():
    group = Notification(tuple(notice(alert_id=f"a{i}", dimensions={"i": str(i)})
                               for i in range(60)))
    blocks = slack_render(group)["blocks"]
    assert len(blocks) == MAX_BLOCKS
    assert blocks[-1]["type"] == "context"
    assert blocks[-1]["elements"][0]["text"] == "and 12 more alerts of this group"


def test_slack_escapes_mrkdwn_control_characters():
    text = slack_render(Notification((notice(summary="a<b & c>d"),)))["blocks"][1]["text"]
    assert "a&lt;b &amp; c&gt;d" in text["text"]


def test_notifier_reprs_hide_credentials():
    shown = " ".join(repr(n) for n in (
        SlackNotifier("s", "https://hooks.example/T/B/t0k"),
        PagerDutyNotifier("p", "rk-v4lue"),
        WebhookNotifier("w", "https://h.example", "hm4c")))
    for secret in ("t0k", "rk-v4lue", "hm4c"):
        assert secret not in shown


# -- backoff ------------------------------------------------------------------------------


@pytest.mark.parametrize("retry, low, high", [
    pytest.param(1, 0.25, 0.5, id="the first retry waits between base/2 and base"),
    pytest.param(3, 1.0, 2.0, id="the third retry waits between 2 and 4 times base/2"),
    pytest.param(10, 15.0, 30.0, id="late retries are capped at max_delay"),
])
def test_backoff_is_exponential_with_jitter(retry, low, high):
    policy = RetryPolicy(max_attempts=20, base_delay=0.5, max_delay=30)
    rng = random.Random(7)
    delays = [policy.delay(retry, rng) for _ in range(200)]
    assert all(low <= d <= high for d in delays)
    assert len(set(delays)) > 100  # jittered, not constant


@pytest.mark.parametrize("retry_after, expected", [
    pytest.param(2.0, 2.0, id="a Retry-After is honoured as given"),
    pytest.param(0.0, 0.0, id="a zero Retry-After retries at once"),
    pytest.param(600.0, 30.0, id="a Retry-After longer than max_delay is capped"),
])
def test_retry_after_replaces_the_backoff(retry_after, expected):
    assert RetryPolicy().delay(1, random.Random(), retry_after) == expected


# -- the dispatcher over fake notifiers ------------------------------------------------


class Scripted:
    """Raises the scripted outcomes in order, then succeeds; records each call."""

    def __init__(self, name, *outcomes):
        self.name = name
        self.outcomes = list(outcomes)
        self.calls = []

    def send(self, notification):
        self.calls.append(notification)
        if self.outcomes:
            outcome = self.outcomes.pop(0)
            if outcome is not None:
                raise outcome


def retryable(**kw):
    return DeliveryError("try later", retryable=True, **kw)


def test_each_notifier_gets_its_own_lane_and_retry_policy():
    slow_to_fail = Scripted("a", *[retryable()] * 10)
    fine = Scripted("b")
    records = []
    d = Dispatcher({"a": slow_to_fail, "b": fine}, dead_letter=lambda *r: records.append(r),
                   retries={"a": RetryPolicy(2, 0, 0)}, retry=RetryPolicy(5, 0, 0))
    with d:
        d.submit(Notification((notice(),)))
        assert d.flush(5)
    assert (len(slow_to_fail.calls), len(fine.calls)) == (2, 1)
    assert (d.stats("a").dead_lettered, d.stats("b").sent) == (1, 1)
    assert [(name, attempts) for _, name, _, attempts in records] == [("a", 2)]


def test_submit_to_names_only_those_notifiers():
    a, b = Scripted("a"), Scripted("b")
    with Dispatcher({"a": a, "b": b}) as d:
        d.submit(Notification((notice(),)), to=["b"])
        assert d.flush(5)
    assert (len(a.calls), len(b.calls)) == (0, 1)


def test_submit_to_an_unknown_notifier_is_a_routing_error():
    with pytest.raises(ValueError, match=re.escape("unknown notifier(s) ['pd']")):
        Dispatcher({"a": Scripted("a")}).submit(Notification((notice(),)), to=["pd"])


def test_a_notifier_bug_is_dead_lettered_and_the_lane_keeps_working():
    buggy = Scripted("a", KeyError("oops"))
    records = []
    with Dispatcher({"a": buggy}, dead_letter=lambda *r: records.append(r)) as d:
        d.submit(Notification((notice(),)))
        d.submit(Notification((notice(alert_id="second"),)))
        assert d.flush(5)
    assert len(buggy.calls) == 2
    assert isinstance(records[0][2], KeyError) and records[0][3] == 1
    assert (d.stats().sent, d.stats().dead_lettered) == (1, 1)


def test_a_failing_dead_letter_callback_is_counted_not_fatal():
    def broken(*_):
        raise RuntimeError("clickhouse down")

    failing = Scripted("a", DeliveryError("no", retryable=False))
    with Dispatcher({"a": failing}, dead_letter=broken) as d:
        d.submit(Notification((notice(),)))
        d.submit(Notification((notice(alert_id="b"),)))
        assert d.flush(5)
    assert (d.stats().dead_letter_errors, d.stats().sent) == (1, 1)


def test_shutdown_is_idempotent_and_safe_without_start():
    records = []
    d = Dispatcher({"a": Scripted("a")}, dead_letter=lambda *r: records.append(r))
    d.submit(Notification((notice(),)))
    d.shutdown()
    d.shutdown()
    assert [(error.reason, attempts) for _, _, error, attempts in records] == [("shutdown", 0)]
    assert d.submit(Notification((notice(),))) is False


def test_submit_never_waits_for_a_notifier_that_blocks():
    gate = threading.Event()

    class Blocking:
        name = "a"

        def send(self, notification):
            gate.wait(10)

    d = Dispatcher({"a": Blocking()}, queue_size=3)
    d.start()
    try:
        for _ in range(100):
            assert d.submit(Notification((notice(),)))
        assert d.stats().dropped >= 96
    finally:
        gate.set()
        d.shutdown(timeout=5)


def test_build_dispatcher_applies_each_notifiers_retry_policy():
    config = parse_notify_config({"queue_size": 7, "notifiers": [
        {"name": "am", "type": "alertmanager", "url": "http://am:9093", "max_attempts": 2,
         "backoff_base": "100ms", "backoff_max": "1s"}]})
    d = build_dispatcher(config, env={})
    assert d.notifier_names == ("am",)
    assert (d.retry_policy("am"), d.queue_size) == (RetryPolicy(2, 0.1, 1.0), 7)
