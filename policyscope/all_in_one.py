"""`policyscope up`: collector, SLI batch scheduler, dashboard (+ demo traffic) in one process
over one store.

Streamlit must own the main thread, so the collector's receivers and the demo run in
background threads. Heavy modules are imported here, in the main thread, before any worker
thread starts (a concurrent first import of pandas from two threads breaks it).
"""

from __future__ import annotations

import logging
import threading

import pandas  # noqa: F401 - imported in the main thread on purpose, see above
import plotly.express  # noqa: F401
import pyarrow  # noqa: F401
import streamlit  # noqa: F401

import triage
from catalog.load import load_at_start
from collector.service import CollectorService
from dashboards.serve import serve
from metrics.scheduler import BatchScheduler
from policyscope.config import Config
from slo.service import alert_evaluator

log = logging.getLogger(__name__)


def run_all_in_one(config: Config, *, demo: bool) -> None:
    client = database = None
    if demo:  # the example SLOs, and history on first start (policyscope/demo/start.py)
        from policyscope.demo import start as demo_start

        demo_start.use_example_slos(config)
        demo_start.use_example_catalog(config)
        client, database = demo_start.open_store(config)
    try:
        _run(config, demo=demo, client=client, database=database)
    finally:
        if client is not None:
            client.close()


def _run(config: Config, *, demo: bool, client, database: str | None) -> None:
    service = CollectorService(config, client=client, database=database)
    service.start()
    load_at_start(service.pipeline.client, config.catalog.catalog_dir)
    evaluator = alert_evaluator(config, service.pipeline.client, demo=demo)
    scheduler = BatchScheduler(service.pipeline.client, interval=config.batch.batch_interval,
                               latency_threshold=config.batch.latency_threshold,
                               after_batch=evaluator.run if evaluator else None,
                               prepare=triage.apply_rules)
    scheduler.start()
    stop = threading.Event()
    demo_threads: list[threading.Thread] = []
    try:
        if demo:
            from policyscope.demo import start as demo_start

            demo_threads = demo_start.start_traffic(
                config, f"http://127.0.0.1:{service.grpc_port}", service.pipeline.client, stop)
        log.info("PolicyScope is up: OTLP gRPC :%d, OTLP HTTP :%d, dashboard http://%s:%d%s",
                 service.grpc_port, service.http_port, config.dashboard.dashboard_host,
                 config.dashboard.dashboard_port, " (with demo traffic)" if demo else "")
        serve(config)  # returns when Streamlit stops (Ctrl-C / SIGTERM)
    finally:
        stop.set()
        for thread in demo_threads:
            thread.join(10)
        scheduler.shutdown()
        if evaluator is not None and evaluator.dispatcher is not None:
            evaluator.dispatcher.shutdown(10)
        service.shutdown()
