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
from collector.service import CollectorService
from dashboards.serve import serve
from metrics.scheduler import BatchScheduler
from policyscope.config import Config
from slo.service import alert_evaluator

log = logging.getLogger(__name__)


def run_all_in_one(config: Config, *, demo: bool) -> None:
    service = CollectorService(config)
    service.start()
    evaluator = alert_evaluator(config, service.pipeline.client, demo=demo)
    scheduler = BatchScheduler(service.pipeline.client, interval=config.batch.batch_interval,
                               latency_threshold=config.batch.latency_threshold,
                               after_batch=evaluator.run if evaluator else None,
                               prepare=triage.apply_rules)
    scheduler.start()
    stop = threading.Event()
    demo_thread = None
    if demo:
        from policyscope.demo.traffic import DemoTraffic

        traffic = DemoTraffic(f"http://127.0.0.1:{service.grpc_port}", protocol="grpc",
                              rate=config.demo.demo_rate)
        demo_thread = threading.Thread(target=traffic.run, args=(None, stop), name="demo",
                                       daemon=True)
        demo_thread.start()
    log.info("PolicyScope is up: OTLP gRPC :%d, OTLP HTTP :%d, dashboard http://%s:%d%s",
             service.grpc_port, service.http_port, config.dashboard.dashboard_host,
             config.dashboard.dashboard_port, " (with demo traffic)" if demo else "")
    try:
        serve(config)  # returns when Streamlit stops (Ctrl-C / SIGTERM)
    finally:
        stop.set()
        if demo_thread is not None:
            demo_thread.join(10)
        scheduler.shutdown()
        if evaluator is not None and evaluator.dispatcher is not None:
            evaluator.dispatcher.shutdown(10)
        service.shutdown()
