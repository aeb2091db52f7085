"""The `policyscope` command. Every flag can also come from the config file (--config or
POLICYSCOPE_CONFIG) and from POLICYSCOPE_<SETTING> environment variables; flags win."""

from __future__ import annotations

import json
import logging
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

import typer

from policyscope.config import Config, ConfigError, load_config

app = typer.Typer(
    help="PolicyScope: policy observability and security SLOs over OpenTelemetry and "
         "ClickHouse.",
    no_args_is_help=True, add_completion=False, rich_markup_mode=None)

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config file (also POLICYSCOPE_CONFIG)",
                         exists=False, dir_okay=False)
DsnOpt = typer.Option(None, "--dsn", help="chdb:///path (embedded, default ./data/clickhouse) or "
                      "http(s)://user:pass@host:8123/db (also POLICYSCOPE_DSN)")
LogLevelOpt = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _setup(config_file: Optional[Path], log_level: str, **overrides: Any) -> Config:
    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        _fail(f"--log-level {log_level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return load_config(config_file, overrides=overrides)
    except ConfigError as exc:
        _fail(str(exc))
    raise AssertionError("unreachable")


@app.command()
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

    config = _setup(config_file, log_level, dsn=dsn, http_port=http_port, grpc_port=grpc_port,
                    http_host=http_host, grpc_host=grpc_host, spool_dir=spool_dir)
    try:
        CollectorService(config).run_until_signalled()
    except (StorageError, OSError) as exc:
        _fail(str(exc), 1)


@app.command()
def up(
    config_file: Optional[Path] = ConfigOpt,
    dsn: Optional[str] = DsnOpt,
    demo: bool = typer.Option(False, "--demo", help="also send realistic demo traffic"),
    http_port: Optional[int] = typer.Option(None, help="OTLP/HTTP port [default: 4318]"),
    grpc_port: Optional[int] = typer.Option(None, help="OTLP/gRPC port [default: 4317]"),
    dashboard_port: Optional[int] = typer.Option(None, help="dashboard port [default: 8501]"),
    demo_rate: Optional[float] = typer.Option(None, help="demo decisions/s [default: 50]"),
    log_level: str = LogLevelOpt,
) -> None:
    """Run everything in one process: collector, dashboard (and demo traffic with --demo).

    Open http://127.0.0.1:8501 for the dashboard; send OTLP to :4317 (gRPC) or :4318 (HTTP).
    """
    from policyscope.all_in_one import run_all_in_one
    from core.storage import StorageError

    config = _setup(config_file, log_level, dsn=dsn, http_port=http_port, grpc_port=grpc_port,
                    dashboard_port=dashboard_port, demo_rate=demo_rate)
    try:
        run_all_in_one(config, demo=demo)
    except (StorageError, OSError, ValueError) as exc:  # ValueError: bad SLO/alerting files
        _fail(str(exc), 1)


@app.command("demo")
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

    config = _setup(config_file, log_level, demo_rate=rate, demo_protocol=protocol)
    if duration is not None and duration <= 0:
        _fail(f"--duration must be > 0 seconds, got {duration}")
    traffic = DemoTraffic(endpoint, protocol=config.demo.demo_protocol,
                          rate=config.demo.demo_rate, seed=seed)
    stop = threading.Event()
    try:
        stats = traffic.run(duration, stop)
    except KeyboardInterrupt:
        stop.set()
        raise typer.Exit(130)
    typer.echo(json.dumps(stats.__dict__ if hasattr(stats, "__dict__") else stats,
                          default=str, indent=2))


@app.command()
def migrate(
    config_file: Optional[Path] = ConfigOpt,
    dsn: Optional[str] = DsnOpt,
    log_level: str = LogLevelOpt,
) -> None:
    """Create or upgrade the ClickHouse schema (idempotent; the collector also runs it)."""
    from core.storage import StorageError, connect
    from schemas.migrations import migrate as run_migrations

    config = _setup(config_file, log_level, dsn=dsn)
    try:
        client, target = connect(config.storage.dsn, config.storage.database)
        applied = run_migrations(client, target.database,
                                 retention_days=config.storage.retention_days)
        client.close()
    except StorageError as exc:
        _fail(str(exc), 1)
    typer.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


@app.command()
def sql(
    query: str = typer.Argument(..., help="a SELECT, WITH, SHOW, DESCRIBE or EXPLAIN statement"),
    config_file: Optional[Path] = ConfigOpt,
    dsn: Optional[str] = DsnOpt,
    output_format: str = typer.Option("table", "--format", "-f", help="table, json or csv"),
    log_level: str = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING, ERROR"),
) -> None:
    """Run a read-only query against the configured storage and print the rows.

    While `policyscope up` owns the embedded store, the query goes through its loopback
    admin API instead.
    """
    from core import readonly_sql
    from core.storage import StorageError, StorageLockedError, connect

    config = _setup(config_file, log_level, dsn=dsn)
    if output_format not in readonly_sql.FORMATS:
        _fail(f"--format {output_format!r} is not one of {', '.join(readonly_sql.FORMATS)}")
    try:
        readonly_sql.check(query)
    except readonly_sql.NotReadOnly as exc:
        _fail(str(exc))
    try:
        client, _ = connect(config.storage.dsn, config.storage.database, create_database=False)
    except StorageLockedError as exc:
        result = _query_running_collector(config, query, exc)
    except StorageError as exc:
        _fail(str(exc), 1)
    else:
        try:
            result = readonly_sql.run(client, query)
        except Exception as exc:  # noqa: BLE001 - the engine's message is the answer
            _fail(str(exc).split("\n")[0], 1)
        finally:
            client.close()
    typer.echo(readonly_sql.render(result, output_format))


def _query_running_collector(config: Config, query: str, locked: Exception):
    from core import readonly_sql

    url = f"http://127.0.0.1:{config.collector.http_port}/api/sql"
    request = urllib.request.Request(url, data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        _fail(json.loads(exc.read() or b"{}").get("error", str(exc)), 1)
    except (urllib.error.URLError, OSError):
        _fail(f"{locked}; and no collector answered on {url}", 1)
    columns = body["columns"]
    return readonly_sql.QueryResult(columns, [tuple(r[c] for c in columns)
                                              for r in body["rows"]])


@app.command()
def dashboard(
    config_file: Optional[Path] = ConfigOpt,
    dsn: Optional[str] = DsnOpt,
    dashboard_port: Optional[int] = typer.Option(None, help="port [default: 8501]"),
    dashboard_host: Optional[str] = typer.Option(None, help="address [default: 127.0.0.1]"),
    log_level: str = LogLevelOpt,
) -> None:
    """Serve the Streamlit dashboards against the configured storage (server mode)."""
    from dashboards.serve import serve

    config = _setup(config_file, log_level, dsn=dsn, dashboard_port=dashboard_port,
                    dashboard_host=dashboard_host)
    serve(config)


@app.command()
def batch(
    config_file: Optional[Path] = ConfigOpt,
    dsn: Optional[str] = DsnOpt,
    backfill: Optional[str] = typer.Option(None, "--backfill", help="recompute history over "
                                           "this span, e.g. 30d (points every --step)"),
    step: str = typer.Option("1h", "--step", help="backfill point spacing, e.g. 1h or 15m"),
    at: Optional[str] = typer.Option(None, "--at", help="evaluate as of this UTC time "
                                     "(ISO 8601) instead of now"),
    log_level: str = LogLevelOpt,
) -> None:
    """Compute the security SLIs into `sli_values`: one incremental run, or a backfill.

    The scheduled run (every minute in `up` / `worker`) is the same incremental run.
    """
    from rich.progress import Progress

    from metrics import jobs

    config = _setup(config_file, log_level, dsn=dsn)
    when = _parse_time(at, "--at")
    client = _open(config)
    try:
        if backfill is None:
            report = jobs.run_incremental(client, when,
                                          latency_threshold=config.batch.latency_threshold)
        else:
            span, spacing = _duration(backfill, "--backfill"), _duration(step, "--step")
            with Progress() as progress:
                task = progress.add_task(f"backfill {backfill}", total=None)
                report = jobs.backfill(
                    client, span, until=when, step=spacing,
                    latency_threshold=config.batch.latency_threshold,
                    progress=lambda done, total: progress.update(task, completed=done,
                                                                 total=total))
    finally:
        client.close()
    typer.echo(f"{report.points} evaluation points, {report.rows} SLI rows in "
               f"{report.seconds:.2f}s")


sli_app = typer.Typer(help="Inspect computed SLIs.", no_args_is_help=True)
app.add_typer(sli_app, name="sli")


@sli_app.command("show")
def sli_show(
    config_file: Optional[Path] = ConfigOpt,
    dsn: Optional[str] = DsnOpt,
    sli: Optional[str] = typer.Option(None, "--sli", help="M1..M10, M3_mean, L_p95, ..."),
    window: Optional[str] = typer.Option(None, "--window", help="5m, 30m, 1h, 2h, 6h, 1d, 3d, "
                                         "7d, 30d or month"),
    by: Optional[str] = typer.Option(None, "--by", help="team, service, policy, engine, "
                                     "environment or cluster [default: overall]"),
    at: Optional[str] = typer.Option(None, "--at", help="evaluation time (UTC, ISO 8601) "
                                     "[default: the latest computed]"),
    output_format: str = typer.Option("table", "--format", "-f", help="table or json"),
    log_level: str = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING, ERROR"),
) -> None:
    """Print SLI values from `sli_values` (run `policyscope batch` first)."""
    from metrics import jobs
    from metrics.windows import parse_window

    config = _setup(config_file, log_level, dsn=dsn)
    if output_format not in ("table", "json"):
        _fail(f"--format {output_format!r} is not one of table, json")
    if window is not None:
        try:
            parse_window(window)
        except ValueError as exc:
            _fail(str(exc))
    dimensions = ("team", "service", "policy", "engine", "environment", "cluster",
                  "remediation", "slo")
    if by is not None and by not in dimensions:
        _fail(f"--by {by!r} is not one of {', '.join(dimensions)}")
    when = _parse_time(at, "--at")
    client = _open(config)
    try:
        frame = jobs.read_values(client, sli=sli, window=window, by=by, at=when)
    finally:
        client.close()
    records = [{"sli": r["sli"], "window": r["window"],
                "dimensions": {r["dimension"]: r["dimension_value"]} if r["dimension"] else {},
                "good": r["good"], "total": r["total"], "value": r["value"],
                "at": r["at"].isoformat()} for r in frame.iter_rows(named=True)]
    if output_format == "json":
        typer.echo(json.dumps(records, indent=2))
        return
    if not records:
        typer.echo("no SLI values match (has `policyscope batch` run?)")
        return
    from core import readonly_sql

    typer.echo(readonly_sql.render(readonly_sql.QueryResult(
        ["at", "sli", "window", "dimension", "good", "total", "value"],
        [(r["at"], r["sli"], r["window"],
          "; ".join(f"{k}={v}" for k, v in r["dimensions"].items()) or "(overall)",
          r["good"], r["total"], None if r["value"] is None else round(r["value"], 6))
         for r in records]), "table"))


@app.command()
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

    from metrics.scheduler import BatchScheduler

    config = _setup(config_file, log_level, dsn=dsn, slo_dir=slo_dir)
    client = _open(config)
    evaluator = None
    if config.alerting.slo_dir.is_dir():
        evaluator = _evaluator(config, client)
    scheduler = BatchScheduler(client, interval=config.batch.batch_interval,
                               latency_threshold=config.batch.latency_threshold,
                               after_batch=evaluator.run if evaluator else None)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    scheduler.start()
    stop.wait()
    scheduler.shutdown()
    if evaluator is not None and evaluator.dispatcher is not None:
        evaluator.dispatcher.shutdown(10)
    client.close()


def _open(config: Config):
    """A client on the configured storage with the schema migrated (idempotent, cheap)."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from core.storage import StorageError, connect
    from schemas.migrations import migrate as run_migrations

    try:
        client, target = connect(config.storage.dsn, config.storage.database)
        run_migrations(client, target.database, retention_days=config.storage.retention_days)
    except StorageError as exc:
        _fail(str(exc), 1)
    except ClickHouseError as exc:
        _fail(f"storage refused the schema migration: {str(exc).splitlines()[0]}", 1)
    return client


def _parse_time(text: Optional[str], flag: str):
    from datetime import datetime, timezone

    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"{flag} {text!r} is not an ISO 8601 time like 2026-11-27T12:00:00Z")
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _duration(text: str, flag: str):
    from datetime import timedelta

    from core.units import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        _fail(f"{flag}: {exc}")
    if seconds <= 0:
        _fail(f"{flag} must be positive, got {text!r}")
    return timedelta(seconds=seconds)


slo_app = typer.Typer(help="SLOs as code: validate, plan, status.", no_args_is_help=True)
app.add_typer(slo_app, name="slo")
alerts_app = typer.Typer(help="Burn-rate alerts: evaluate, replay, silences.",
                         no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
silence_app = typer.Typer(help="Silences and maintenance windows.", no_args_is_help=True)
alerts_app.add_typer(silence_app, name="silence")

SloDirOpt = typer.Option(None, "--slo-dir", help="directory of SLO files [default: ./slo]")
AtOpt = typer.Option(None, "--at", help="evaluate as of this UTC time (ISO 8601) "
                     "[default: now]")
FormatOpt = typer.Option("table", "--format", "-f", help="table or json")


def _load_slos(directory: Path):
    from slo import spec

    try:
        slos = spec.load_dir(directory)
    except spec.SpecError as exc:
        _fail(str(exc))
    if not slos:
        _fail(f"no SLO files (*.yaml) in {directory}")
    return slos


def _check_format(output_format: str) -> None:
    if output_format not in ("table", "json"):
        _fail(f"--format {output_format!r} is not one of table, json")


@slo_app.command("validate")
def slo_validate(paths: list[Path] = typer.Argument(..., help="SLO files or directories")
                 ) -> None:
    """Check SLO files strictly (for CI): exit 1 and one line per problem when any is bad;
    warnings (a pair that can never fire) are printed but do not fail."""
    from slo import spec

    slos, errors, warnings = spec.check_paths(paths)
    for line in errors:
        typer.echo(f"error: {line}", err=True)
    for line in warnings:
        typer.echo(f"warning: {line}", err=True)
    if errors:
        raise typer.Exit(1)
    typer.echo(f"ok: {len(slos)} SLOs in {', '.join(str(p) for p in paths)}")


@slo_app.command("plan")
def slo_plan(path: Path = typer.Argument(..., help="an SLO file or a directory of them"),
             events_per_day: Optional[float] = typer.Option(
                 None, "--events-per-day", help="expected traffic, for allowed bad events "
                 "and low-traffic warnings")) -> None:
    """Explain each SLO's alert windows, factors, thresholds and allowed bad events."""
    from slo import plan, spec

    try:
        slos = spec.load_dir(path) if path.is_dir() else [spec.load_file(path)]
    except spec.SpecError as exc:
        _fail(str(exc))
    typer.echo(plan.render_plan(slos, expected_events_per_day=events_per_day))


@slo_app.command("status")
def slo_status(config_file: Optional[Path] = ConfigOpt, dsn: Optional[str] = DsnOpt,
               slo_dir: Optional[Path] = SloDirOpt, at: Optional[str] = AtOpt,
               output_format: str = FormatOpt,
               log_level: str = typer.Option("WARNING", "--log-level")) -> None:
    """Every SLO (and dimension value): budget left, time to exhaustion, burn per window."""
    from datetime import datetime, timezone

    from slo.report import status

    config = _setup(config_file, log_level, dsn=dsn, slo_dir=slo_dir)
    _check_format(output_format)
    slos = _load_slos(config.alerting.slo_dir)
    when = _parse_time(at, "--at") or datetime.now(timezone.utc)
    client = _open(config)
    try:
        rows = status(client, slos, when, latency_threshold=config.batch.latency_threshold)
    finally:
        client.close()
    if output_format == "json":
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    from core import readonly_sql

    table = []
    for r in rows:
        burns = " ".join(
            f"{p['long_window']}/{p['short_window']}:"
            f"{_fmt(p['burn_long'])}/{_fmt(p['burn_short'])}{'!' if p['firing'] else ''}"
            for p in r["pairs"])
        table.append((r["slo"], ",".join(f"{k}={v}" for k, v in r["dimensions"].items()),
                      r["objective"], r["period"], r["good"], r["total"],
                      _fmt(r["budget_remaining"]), _fmt(r["time_to_exhaustion_s"]), burns))
    typer.echo(readonly_sql.render(readonly_sql.QueryResult(
        ["slo", "dimensions", "objective", "period", "good", "total", "budget_left",
         "exhausted_in_s", "burn long/short per pair (! = firing)"], table), "table"))


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def _evaluator(config: Config, client):
    from slo import spec
    from slo.service import alert_evaluator

    try:
        evaluator = alert_evaluator(config, client)
    except (spec.SpecError, ValueError) as exc:
        _fail(str(exc))
    if evaluator is None:
        _fail(f"no SLO directory at {config.alerting.slo_dir} (set --slo-dir)")
    return evaluator


@alerts_app.command("evaluate")
def alerts_evaluate(config_file: Optional[Path] = ConfigOpt, dsn: Optional[str] = DsnOpt,
                    slo_dir: Optional[Path] = SloDirOpt, at: Optional[str] = AtOpt,
                    output_format: str = FormatOpt,
                    log_level: str = typer.Option("WARNING", "--log-level")) -> None:
    """Evaluate every SLO once: update alert states, notify, print the active alerts."""
    from slo.lifecycle import AlertStore

    config = _setup(config_file, log_level, dsn=dsn, slo_dir=slo_dir)
    _check_format(output_format)
    _load_slos(config.alerting.slo_dir)
    when = _parse_time(at, "--at")
    client = _open(config)
    try:
        evaluator = _evaluator(config, client)
        evaluator.run(when)
        if evaluator.dispatcher is not None:
            evaluator.dispatcher.shutdown(30)
        states = [s for s in AlertStore(client).load().values()
                  if s.state in ("pending", "firing")]
    finally:
        client.close()
    alerts = [{"slo": s.slo, "severity": s.severity, "state": s.state,
               "long_window": s.long_window, "short_window": s.short_window,
               "factor": s.factor, "burn_long": s.burn_long, "burn_short": s.burn_short,
               "budget_remaining": s.budget_remaining, "dimensions": s.dimensions,
               "silenced": s.silenced}
              for s in sorted(states, key=lambda s: (s.slo, s.severity, str(s.dimensions)))]
    if output_format == "json":
        typer.echo(json.dumps(alerts, indent=2))
        return
    if not alerts:
        typer.echo("no active alerts")
        return
    from core import readonly_sql

    typer.echo(readonly_sql.render(readonly_sql.QueryResult(
        ["slo", "severity", "state", "windows", "factor", "burn_long", "burn_short",
         "budget_left", "dimensions", "silenced"],
        [(a["slo"], a["severity"], a["state"], f"{a['long_window']}/{a['short_window']}",
          _fmt(a["factor"]), _fmt(a["burn_long"]), _fmt(a["burn_short"]),
          _fmt(a["budget_remaining"]),
          ",".join(f"{k}={v}" for k, v in a["dimensions"].items()), a["silenced"])
         for a in alerts]), "table"))


@alerts_app.command("replay")
def alerts_replay(config_file: Optional[Path] = ConfigOpt, dsn: Optional[str] = DsnOpt,
                  slo_dir: Optional[Path] = SloDirOpt,
                  since: str = typer.Option("30d", "--since", help="how far back, e.g. 30d"),
                  step: str = typer.Option("1m", "--step", help="evaluation spacing"),
                  at: Optional[str] = AtOpt, output_format: str = FormatOpt,
                  log_level: str = typer.Option("WARNING", "--log-level")) -> None:
    """When each alert would have fired and resolved over history (nothing is notified)."""
    from datetime import datetime, timezone

    from slo.report import replay

    config = _setup(config_file, log_level, dsn=dsn, slo_dir=slo_dir)
    _check_format(output_format)
    slos = _load_slos(config.alerting.slo_dir)
    span, spacing = _duration(since, "--since"), _duration(step, "--step")
    when = _parse_time(at, "--at") or datetime.now(timezone.utc)
    client = _open(config)
    try:
        found = replay(client, slos, span, when, step=spacing,
                       latency_threshold=config.batch.latency_threshold)
    finally:
        client.close()
    rows = [{"slo": a.slo, "severity": a.severity, "dimensions": a.dimensions,
             "fired_at": a.fired_at.isoformat(),
             "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
             "peak_burn": a.peak_burn} for a in found]
    if output_format == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    from core import readonly_sql

    typer.echo(readonly_sql.render(readonly_sql.QueryResult(
        ["slo", "severity", "dimensions", "fired_at", "resolved_at", "peak_burn"],
        [(r["slo"], r["severity"], ",".join(f"{k}={v}" for k, v in r["dimensions"].items()),
          r["fired_at"], r["resolved_at"] or "(still firing)", _fmt(r["peak_burn"]))
         for r in rows]), "table"))


@silence_app.command("add")
def silence_add(match: list[str] = typer.Option(..., "--match", help="label=value; repeat "
                                                "(labels: slo, severity, team, ...)"),
                duration: str = typer.Option("2h", "--duration", help="how long, e.g. 2h"),
                start: Optional[str] = typer.Option(None, "--start", help="UTC start "
                                                    "[default: now]"),
                comment: str = typer.Option(..., "--comment", help="why (required)"),
                created_by: str = typer.Option("cli", "--created-by"),
                config_file: Optional[Path] = ConfigOpt, dsn: Optional[str] = DsnOpt) -> None:
    """Silence matching alerts for a while (they are still evaluated and recorded)."""
    from datetime import datetime, timezone

    from slo import silences

    config = _setup(config_file, "WARNING", dsn=dsn)
    matchers = {}
    for item in match:
        if "=" not in item or not item.split("=", 1)[0]:
            _fail(f"--match {item!r} is not label=value")
        key, value = item.split("=", 1)
        matchers[key] = value
    begin = _parse_time(start, "--start") or datetime.now(timezone.utc)
    end = begin + _duration(duration, "--duration")
    client = _open(config)
    try:
        made = silences.add(client, matchers, begin, end, comment, created_by)
    except silences.SilenceError as exc:
        _fail(str(exc))
    finally:
        client.close()
    typer.echo(f"silence {made.silence_id} until {made.ends_at.isoformat()}")


@silence_app.command("list")
def silence_list(config_file: Optional[Path] = ConfigOpt, dsn: Optional[str] = DsnOpt,
                 slo_dir: Optional[Path] = SloDirOpt) -> None:
    """Active and future silences (CLI-made and files)."""
    from datetime import datetime, timezone

    from slo import silences

    config = _setup(config_file, "WARNING", dsn=dsn, slo_dir=slo_dir)
    now = datetime.now(timezone.utc)
    client = _open(config)
    try:
        found = silences.load_table(client, now)
        found += [s for s in silences.load_files(config.alerting.slo_dir / "silences")
                  if s.ends_at > now]
    except silences.SilenceError as exc:
        _fail(str(exc))
    finally:
        client.close()
    for s in found:
        typer.echo(f"{s.silence_id}  {s.starts_at.isoformat()} .. {s.ends_at.isoformat()}  "
                   f"{','.join(f'{k}={v}' for k, v in s.matchers.items())}  {s.comment}")
    if not found:
        typer.echo("no active silences")


@silence_app.command("expire")
def silence_expire(silence_id: str = typer.Argument(...),
                   config_file: Optional[Path] = ConfigOpt, dsn: Optional[str] = DsnOpt) -> None:
    """End a CLI-made silence now (file silences end when their file changes)."""
    from datetime import datetime, timezone

    from slo import silences

    config = _setup(config_file, "WARNING", dsn=dsn)
    client = _open(config)
    try:
        ok = silences.expire(client, silence_id, datetime.now(timezone.utc))
    finally:
        client.close()
    if not ok:
        _fail(f"no active CLI silence with id {silence_id}", 1)
    typer.echo(f"silence {silence_id} expired")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
