"""Building the alert evaluator a long-running process (`up`, `worker`) runs after each batch,
with a started dispatcher over the configured notifiers whose dead letters land in the
`notification_dead_letters` table (never with secrets: only the notification itself)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from clickhouse_connect.driver.client import Client

from slo import spec, store
from slo.alerting import AlertEvaluator
from slo.config import AlertingSettings
from slo.notify.base import Notification
from slo.notify.config import NotifierConfig, NotifyConfig, build_dispatcher
from slo.notify.dispatcher import Dispatcher
from slo.routing import Router

log = logging.getLogger(__name__)

EXAMPLE_SLOS = Path(__file__).resolve().parents[1] / "examples" / "slo"


def dead_letter_writer(client: Client):
    """The dispatcher's dead-letter callback: logs the notification given up on and stores it."""
    def record(notification: Notification, notifier: str, error: BaseException,
               attempts: int) -> None:
        log.error("notification to %s for %s/%s dead-lettered after %d attempts: %s",
                  notifier, notification.slo, notification.severity, attempts, error)
        store.record_dead_letter(client, {
            "notifier": notifier, "slo": notification.slo, "severity": notification.severity,
            "alert_ids": [a.alert_id for a in notification.alerts], "error": str(error)[:2000],
            "attempts": attempts,
            "payload": json.dumps([a.to_dict() for a in notification.alerts])})
    return record


def start_dispatcher(notifiers: list[NotifierConfig], client: Client) -> Dispatcher:
    """A started dispatcher over the configured notifiers. Raises NotifyConfigError naming
    a secret reference that cannot be resolved."""
    dispatcher = build_dispatcher(NotifyConfig(notifiers=notifiers),
                                  dead_letter=dead_letter_writer(client))
    dispatcher.start()
    return dispatcher


def slo_directory(config: AlertingSettings, *, demo: bool) -> Path | None:
    """The configured SLO directory; with demo traffic and no SLOs of one's own, the examples.
    A directory without SLO files is none of one's own: run from the source tree, the
    default `./slo` is the `slo` package itself."""
    directory = config.alerting.slo_dir
    own = directory.is_dir() and any(p.suffix in (".yaml", ".yml") for p in directory.iterdir())
    if directory.is_dir() and (own or not demo):
        return directory
    if demo and EXAMPLE_SLOS.is_dir():
        log.info("no SLO files in %s; the demo uses the example SLOs in %s", directory,
                 EXAMPLE_SLOS)
        return EXAMPLE_SLOS
    log.info("no SLO directory at %s: alerts are not evaluated", directory)
    return None


def alert_evaluator(config: AlertingSettings, client: Client, *, demo: bool = False
                    ) -> AlertEvaluator | None:
    """Raises spec.SpecError at start-up for bad SLO files, NotifyConfigError for a secret
    reference that cannot be resolved (the rest of the alerting config was validated with
    the config)."""
    directory = slo_directory(config, demo=demo)
    if directory is None:
        return None
    slos = spec.load_dir(directory)
    routes = Router(config.alerting.routes)
    dispatcher = start_dispatcher(config.alerting.notifiers, client) \
        if config.alerting.notifiers else None
    log.info("alert evaluation: %d SLOs from %s, %d notifiers", len(slos), directory,
             len(config.alerting.notifiers))
    return AlertEvaluator(client, slos, dispatcher=dispatcher, router=routes,
                          silence_dir=directory / "silences",
                          dashboard_url=config.alerting.dashboard_url,
                          latency_threshold=config.batch.latency_threshold)
