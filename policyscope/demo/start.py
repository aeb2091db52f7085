"""What `policyscope up --demo` does around the collector, so the story is there from the
first minute: the example SLOs when one has none, the store opened with its history
generated on first start, and the live traffic with its scripted incident.

    use_example_slos(config)                       # before the evaluator and the dashboards
    use_example_catalog(config)                    # the shipped catalog, unless one has one
    client, database = open_store(config)          # history on first start (demo_history)
    service = CollectorService(config, client=client, database=database)
    threads = start_traffic(config, endpoint, client, stop)

The history is generated before the collector listens, so a store is judged empty before
any live event lands, and nothing else competes for the two cores meanwhile.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from clickhouse_connect.driver.client import Client

from collector.rows import RowBuilder, row_settings
from core.storage import connect
from policyscope.config import Config
from schemas.migrations import migrate
from slo.service import slo_directory

from .history import ensure_history, open_violations
from .incident import IncidentScript, PolicyRollout
from .traffic import DemoTraffic

log = logging.getLogger(__name__)

SEED = 7  # the fleet of `policyscope up --demo` (DemoTraffic's default seed)
OPEN_VIOLATIONS_LOOKBACK = timedelta(days=90)


def use_example_slos(config: Config) -> None:
    """Point `alerting.slo_dir` at the SLOs the evaluator will use (the examples when there
    are none of one's own), so the dashboards read the same ones."""
    directory = slo_directory(config, demo=True)
    if directory is not None:
        config.alerting.slo_dir = directory


EXAMPLE_CATALOG = Path(__file__).resolve().parents[2] / "policies"  # the shipped catalog


def use_example_catalog(config: Config) -> None:
    """Point `catalog.catalog_dir` at the shipped catalog (which covers the demo's policies)
    when the configured directory has no catalog files, so the demo's pages name, own and link
    every policy wherever `up --demo` runs from."""
    directory = config.catalog.catalog_dir
    own = directory.is_dir() and any(p.suffix in (".yaml", ".yml") for p in directory.iterdir())
    if not own and EXAMPLE_CATALOG.is_dir():
        log.info("no policy catalog in %s; the demo uses the shipped one in %s", directory,
                 EXAMPLE_CATALOG)
        config.catalog.catalog_dir = EXAMPLE_CATALOG


def open_store(config: Config) -> tuple[Client, str]:
    """A client on the configured store, migrated; on a store without decisions (and with
    `demo_history`), `demo_history_days` of history generated and the SLIs backfilled."""
    client, target = connect(config.storage.dsn, config.storage.database)
    try:
        migrate(client, target.database, retention_days=config.storage.retention_days)
        demo = config.demo
        if demo.demo_history:
            first = ensure_history(client, days=demo.demo_history_days, seed=SEED,
                                   rows=RowBuilder(**row_settings(config.collector)),
                                   latency_threshold=config.batch.latency_threshold,
                                   database=target.database)
            if first is not None:
                history_standings(client, config, demo.demo_history_days)
        else:
            log.info("demo history off (demo_history: false)")
    except BaseException:
        client.close()
        raise
    return client, target.database


def history_standings(client: Client, config: Config, days: int) -> int:
    """The SLO standings an alert evaluator would have stored over the generated history,
    hourly (the SLO page's burndown and the Executive page's week-ago compliance read them);
    returns the rows stored."""
    import time

    from slo import spec
    from slo.report import backfill_standings

    directory = config.alerting.slo_dir
    if not directory.is_dir():
        return 0
    began = time.perf_counter()
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    points = [now - timedelta(hours=h) for h in range(days * 24, 0, -1)]
    stored = backfill_standings(client, spec.load_dir(directory), points,
                                latency_threshold=config.batch.latency_threshold,
                                computed_at=now)
    log.info("SLO standings over the history: %d rows at %d hourly points in %.1fs", stored,
             len(points), time.perf_counter() - began)
    return stored


def start_traffic(config: Config, endpoint: str, client: Client,
                  stop: threading.Event) -> list[threading.Thread]:
    """Start the demo traffic (continuing the violations left open in the store) and, with
    `demo_incident`, its incident script; the threads end when `stop` is set."""
    demo = config.demo
    traffic = DemoTraffic(endpoint, protocol="grpc", rate=demo.demo_rate, seed=SEED)
    traffic.adopt_open_violations(open_violations(
        client, datetime.now(timezone.utc) - OPEN_VIOLATIONS_LOOKBACK))
    threads = [threading.Thread(target=traffic.run, args=(None, stop), name="demo",
                                daemon=True)]
    if demo.demo_incident:
        rollout = PolicyRollout.default()
        threads.append(IncidentScript(traffic, rollout, delay=demo.demo_incident_delay,
                                      duration=demo.demo_incident_duration, stop=stop))
        log.info("demo incident scheduled in %.0f s: %s %s rolls out", demo.demo_incident_delay,
                 rollout.policy_id, rollout.version)
    for thread in threads:
        thread.start()
    return threads
