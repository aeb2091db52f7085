"""SLOs as code: `slo validate` (strict, for CI), `slo plan` (what each SLO's alerts mean)
and `slo status` (budget left and burn per window, from storage)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from policyscope.cli import output
from policyscope.cli.options import (
    AtOpt,
    ConfigOpt,
    DsnOpt,
    FormatOpt,
    SloDirOpt,
    check_format,
    fail,
    open_store,
    parse_time,
    setup,
)

slo_app = typer.Typer(help="SLOs as code: validate, plan, status.", no_args_is_help=True)


def load_slos(directory: Path):
    """The SLOs in a directory; ends the command when a file is bad or there are none."""
    from slo import spec

    try:
        slos = spec.load_dir(directory)
    except spec.SpecError as exc:
        fail(str(exc))
    if not slos:
        fail(f"no SLO files (*.yaml) in {directory}")
    return slos


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
        fail(str(exc))
    typer.echo(plan.render_plan(slos, expected_events_per_day=events_per_day))


@slo_app.command("status")
def slo_status(config_file: Optional[Path] = ConfigOpt, dsn: Optional[str] = DsnOpt,
               slo_dir: Optional[Path] = SloDirOpt, at: Optional[str] = AtOpt,
               output_format: str = FormatOpt,
               log_level: str = typer.Option("WARNING", "--log-level")) -> None:
    """Every SLO (and dimension value): budget left, time to exhaustion, burn per window."""
    from datetime import datetime, timezone

    from slo.report import status

    config = setup(config_file, log_level, dsn=dsn, slo_dir=slo_dir)
    check_format(output_format)
    slos = load_slos(config.alerting.slo_dir)
    when = parse_time(at, "--at") or datetime.now(timezone.utc)
    client = open_store(config)
    try:
        rows = status(client, slos, when, latency_threshold=config.batch.latency_threshold)
    finally:
        client.close()
    if output_format == "json":
        output.emit_json(rows)
        return
    num = output.number
    table = []
    for r in rows:
        burns = " ".join(
            f"{p['long_window']}/{p['short_window']}:"
            f"{num(p['burn_long'])}/{num(p['burn_short'])}{'!' if p['firing'] else ''}"
            for p in r["pairs"])
        table.append((r["slo"], output.labels(r["dimensions"]), r["objective"], r["period"],
                      r["good"], r["total"], num(r["budget_remaining"]),
                      num(r["time_to_exhaustion_s"]), burns))
    output.emit(["slo", "dimensions", "objective", "period", "good", "total", "budget_left",
                 "exhausted_in_s", "burn long/short per pair (! = firing)"], table)
