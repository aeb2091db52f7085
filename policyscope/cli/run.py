"""The long-running verbs: `collector`, `up`, `demo`, `dashboard` and `worker`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from policyscope.cli import output
from policyscope.cli.alerts import open_evaluator
from policyscope.cli.options import (
    ConfigOpt,
    DsnOpt,
    LogLevelOpt,
    fail,
    open_store,
    setup,
)


def collector(
    config_file: Optional[Path] = ConfigOpt,
    dsn: Optional[str] = DsnOpt,
    http_port: Optional[int] = typer.Option(None, help="OTLP/HTTP port [default: 4318]"),
    grpc_port: Optional[int] = typer.Option(None, help="OTLP/gRPC port [default: 4317]"),
    http_host: Optional[str] = typer.Option(None, help="OTLP/HTTP address [default: 127.0.0.1]"),
    grpc_host: Optional[str] = typer.Option(None, help="OTLP/gRPC address [default: 127.0.0.1]"),
    spool_dir: Optional[Path] = typer.Option(None, help="durable spool directory "
                                             "[default: ./data/spool]"),
    log_level: str = LogLevelOpt,
) -> None:
    """Run the OTLP collector (gRPC :4317, HTTP :4318) writing policy events to ClickHouse.

    A request is acknowledged only once its events are fsync'd to the spool; the spool is
    replayed on start-up, and retries never store an event twice.
    """
    from collector.service import CollectorService
    from core.storage import StorageError

    config = setup(config_file, log_level, dsn=dsn, http_port=http_port, grpc_port=grpc_port,
                   http_host=http_host, grpc_host=grpc_host, spool_dir=spool_dir)
    try:
        CollectorService(config).run_until_signalled()
    except (StorageError, OSError, ValueError) as exc:  # ValueError: TLS settings
        fail(str(exc), 1)


def up(
    config_file: Optional[Path] = ConfigOpt,
    dsn: Optional[str] = DsnOpt,
    demo: bool = typer.Option(False, "--demo", help="also send realistic demo traffic"),
    http_port: Optional[int] = typer.Option(None, help="OTLP/HTTP port [default: 4318]"),
    grpc_port: Optional[int] = typer.Option(None, help="OTLP/gRPC port [default: 4317]"),
    dashboard_port: Optional[int] = typer.Option(None, help="dashboard port [default: 8501]"),
    demo_rate: Optional[float] = typer.Option(None, help="demo decisions/s [default: 50]"),
    history: Optional[bool] = typer.Option(
        None, "--history/--no-history", help="with --demo on an empty store, first generate "
        "demo_history_days (30) of history and backfill the SLIs [default: on]"),
    log_level: str = LogLevelOpt,
) -> None:
    """Run everything in one process: collector, dashboard (and demo traffic with --demo).

    With --demo on an empty store, 30 days of history come first (once), then live traffic
    with a scripted incident a few minutes in. Open http://127.0.0.1:8501 for the
    dashboard; send OTLP to :4317 (gRPC) or :4318 (HTTP).
    """
    from core.storage import StorageError
    from dashboards.serve import check_login
    from policyscope.all_in_one import run_all_in_one

    config = setup(config_file, log_level, dsn=dsn, http_port=http_port, grpc_port=grpc_port,
                   dashboard_port=dashboard_port, demo_rate=demo_rate, demo_history=history)
    try:
        check_login(config.dashboard)  # before the collector starts, not after
        run_all_in_one(config, demo=demo)
    except (StorageError, OSError, ValueError) as exc:  # ValueError: bad SLO/alerting/login
        fail(str(exc), 1)


def demo_cmd(
    config_file: Optional[Path] = ConfigOpt,
    endpoint: str = typer.Option("http://127.0.0.1:4317", help="OTLP endpoint: gRPC "
                                 "http://host:4317 or, with --protocol http, http://host:4318"),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="grpc or http "
                                           "[default: grpc]"),
    rate: Optional[float] = typer.Option(None, "--rate", help="decisions per second "
                                         "[default: 50]"),
    duration: Optional[float] = typer.Option(None, "--duration", help="seconds to run "
                                             "[default: until Ctrl-C]"),
    seed: int = typer.Option(7, help="random seed (same seed, same traffic)"),
    log_level: str = LogLevelOpt,
) -> None:
    """Send realistic policy traffic (real Rego policies evaluated with regopy) over OTLP."""
    import threading

    from policyscope.demo.traffic import DemoTraffic

    config = setup(config_file, log_level, demo_rate=rate, demo_protocol=protocol)
    if duration is not None and duration <= 0:
        fail(f"--duration must be > 0 seconds, got {duration}")
    traffic = DemoTraffic(endpoint, protocol=config.demo.demo_protocol,
                          rate=config.demo.demo_rate, seed=seed)
    stop = threading.Event()
    try:
        stats = traffic.run(duration, stop)
    except KeyboardInterrupt:
        stop.set()
        raise typer.Exit(130)
    output.emit_json(stats.__dict__ if hasattr(stats, "__dict__") else stats)


def dashboard(
    config_file: Optional[Path] = ConfigOpt,
    dsn: Optional[str] = DsnOpt,
    dashboard_port: Optional[int] = typer.Option(None, help="port [default: 8501]"),
    dashboard_host: Optional[str] = typer.Option(None, help="address [default: 127.0.0.1]"),
    dashboard_users_file: Optional[Path] = typer.Option(
        None, "--dashboard-users-file", "--users-file", dir_okay=False,
        help="log in against this users file (`policyscope users add`)"),
    log_level: str = LogLevelOpt,
) -> None:
    """Serve the Streamlit dashboards against the configured storage (server mode).

    Bound beyond loopback it needs a login (a users file or OIDC) or
    dashboard_allow_unauthenticated, and refuses to start without one.
    """
    from dashboards.serve import serve

    config = setup(config_file, log_level, dsn=dsn, dashboard_port=dashboard_port,
                   dashboard_host=dashboard_host, dashboard_users_file=dashboard_users_file)
    try:
        serve(config)
    except (OSError, ValueError) as exc:  # PermissionError: no login; ConfigError: a bad one
        fail(str(exc), 1)


def worker(
    config_file: Optional[Path] = ConfigOpt,
    dsn: Optional[str] = DsnOpt,
    slo_dir: Optional[Path] = typer.Option(None, "--slo-dir", help="SLO files to evaluate "
                                           "after each batch [default: ./slo]"),
    log_level: str = LogLevelOpt,
) -> None:
    """Run the SLI batch and the alert evaluation every `batch_interval` (server mode;
    `up` does this itself)."""
    import signal
    import threading

    import triage
    from catalog.load import load_at_start
    from metrics.scheduler import BatchScheduler

    config = setup(config_file, log_level, dsn=dsn, slo_dir=slo_dir)
    client = open_store(config)
    load_at_start(client, config.catalog.catalog_dir)
    evaluator = None
    if config.alerting.slo_dir.is_dir():
        evaluator = open_evaluator(config, client)
    scheduler = BatchScheduler(client, interval=config.batch.batch_interval,
                               latency_threshold=config.batch.latency_threshold,
                               after_batch=evaluator.run if evaluator else None,
                               prepare=triage.apply_rules)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    scheduler.start()
    stop.wait()
    scheduler.shutdown()
    if evaluator is not None and evaluator.dispatcher is not None:
        evaluator.dispatcher.shutdown(10)
    client.close()
