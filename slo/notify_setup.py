"""Wires the notifiers of the config to a started Dispatcher whose dead letters land in the
`notification_dead_letters` table (never with secrets: only the notification itself)."""

from __future__ import annotations

import json
import logging

from clickhouse_connect.driver.client import Client

from slo.notify.base import Notification
from slo.notify.config import NotifierConfig, NotifyConfig, build_dispatcher
from slo.notify.dispatcher import Dispatcher

log = logging.getLogger(__name__)


def dead_letter_writer(client: Client):
    def record(notification: Notification, notifier: str, error: BaseException,
               attempts: int) -> None:
        log.error("notification to %s for %s/%s dead-lettered after %d attempts: %s",
                  notifier, notification.slo, notification.severity, attempts, error)
        client.insert("notification_dead_letters", [[
            notifier, notification.slo, notification.severity,
            [a.alert_id for a in notification.alerts], str(error)[:2000], attempts,
            json.dumps([a.to_dict() for a in notification.alerts])]],
            column_names=["notifier", "slo", "severity", "alert_ids", "error", "attempts",
                          "payload"])
    return record


def start_dispatcher(notifiers: list[NotifierConfig], client: Client) -> Dispatcher:
    """A started dispatcher over the configured notifiers. Raises NotifyConfigError naming
    a secret reference that cannot be resolved."""
    dispatcher = build_dispatcher(NotifyConfig(notifiers=notifiers),
                                  dead_letter=dead_letter_writer(client))
    dispatcher.start()
    return dispatcher
