"""Notifiers for burn-rate alerts: webhook (HMAC-signed), Slack, PagerDuty, Alertmanager.

The evaluator builds `AlertNotice`s, groups them per (SLO, tier) with `group_notices`, and
hands each `Notification` to `Dispatcher.submit`, which returns at once; delivery, retries and
dead-lettering happen on the dispatcher's worker threads. See `config` for the YAML.
"""

from slo.notify.base import (
    AlertNotice,
    DeliveryError,
    Notification,
    Notifier,
    group_notices,
)
from slo.notify.dispatcher import DeadLetter, Dispatcher, DispatcherStats, RetryPolicy
from slo.notify.secrets import Secret, SecretError

__all__ = [
    "AlertNotice", "DeadLetter", "DeliveryError", "Dispatcher", "DispatcherStats",
    "Notification", "Notifier", "RetryPolicy", "Secret", "SecretError", "group_notices",
]
