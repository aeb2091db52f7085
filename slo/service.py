"""Building the alert evaluator a long-running process (`up`, `worker`) runs after each batch."""

from __future__ import annotations

import logging
from pathlib import Path

from clickhouse_connect.driver.client import Client

from slo.config import AlertingSettings
from slo import spec
from slo.alerting import AlertEvaluator
from slo.notify_setup import start_dispatcher
from slo.routing import Router

log = logging.getLogger(__name__)

EXAMPLE_SLOS = Path(__file__).resolve().parents[1] / "examples" / "slo"


def slo_directory(config: AlertingSettings, *, demo: bool) -> Path | None:
    """The configured SLO directory; with demo traffic and no SLOs of one's own, the examples."""
    directory = config.alerting.slo_dir
    if directory.is_dir():
        return directory
    if demo and EXAMPLE_SLOS.is_dir():
        log.info("no SLO directory at %s; the demo uses the example SLOs in %s", directory,
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
