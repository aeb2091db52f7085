"""The SLI verbs: `batch` (compute SLIs into `sli_values`) and `sli show` (print them)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from policyscope.cli import output
from policyscope.cli.options import (
    ConfigOpt,
    DsnOpt,
    LogLevelOpt,
    check_format,
    fail,
    open_store,
    parse_time,
    setup,
    to_timedelta,
)

sli_app = typer.Typer(help="Inspect computed SLIs.", no_args_is_help=True)


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

    import triage
    from metrics import jobs

    config = setup(config_file, log_level, dsn=dsn)
    when = parse_time(at, "--at")
    client = open_store(config)
    try:
        if backfill is None:
            report = jobs.run_incremental(client, when,
                                          latency_threshold=config.batch.latency_threshold,
                                          prepare=triage.apply_rules)
        else:
            span, spacing = to_timedelta(backfill, "--backfill"), to_timedelta(step, "--step")
            with Progress() as progress:
                task = progress.add_task(f"backfill {backfill}", total=None)
                report = jobs.backfill(
                    client, span, until=when, step=spacing,
                    latency_threshold=config.batch.latency_threshold, prepare=triage.apply_rules,
                    progress=lambda done, total: progress.update(task, completed=done,
                                                                 total=total))
    finally:
        client.close()
    typer.echo(f"{report.points} evaluation points, {report.rows} SLI rows in "
               f"{report.seconds:.2f}s")


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
    from metrics import read
    from metrics.windows import parse_window
    from schemas import slis

    config = setup(config_file, log_level, dsn=dsn)
    check_format(output_format)
    if window is not None:
        try:
            parse_window(window)
        except ValueError as exc:
            fail(str(exc))
    dimensions = slis.dimension_names()
    if by is not None and by not in dimensions:
        fail(f"--by {by!r} is not one of {', '.join(dimensions)}")
    when = parse_time(at, "--at")
    client = open_store(config)
    try:
        frame = read.sli_values(client, sli=sli, window=window, by=by, at=when)
    finally:
        client.close()
    records = [{"sli": r["sli"], "window": r["window"],
                "dimensions": {r["dimension"]: r["dimension_value"]} if r["dimension"] else {},
                "good": r["good"], "total": r["total"], "value": r["value"],
                "at": r["at"].isoformat()} for r in frame.iter_rows(named=True)]
    if output_format == "json":
        output.emit_json(records)
        return
    if not records:
        typer.echo("no SLI values match (has `policyscope batch` run?)")
        return
    output.emit(["at", "sli", "window", "dimension", "good", "total", "value"],
                [(r["at"], r["sli"], r["window"], output.labels(r["dimensions"], "; ")
                  or "(overall)", r["good"], r["total"],
                  None if r["value"] is None else round(r["value"], 6))
                 for r in records])
