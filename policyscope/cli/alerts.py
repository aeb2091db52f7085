"""Burn-rate alerts: `alerts evaluate` (once, notifying), `alerts replay` (over history,
notifying nobody) and `alerts silence add | list | expire`."""

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
    to_timedelta,
)
from policyscope.cli.slos import load_slos
from policyscope.config import Config

alerts_app = typer.Typer(help="Burn-rate alerts: evaluate, replay, silences.",
                         no_args_is_help=True)
silence_app = typer.Typer(help="Silences and maintenance windows.", no_args_is_help=True)
alerts_app.add_typer(silence_app, name="silence")


def open_evaluator(config: Config, client):
    """The alert evaluator for the configured SLO directory (also `worker`'s); ends the
    command when the SLO or alerting files are bad or the directory is missing."""
    from slo import spec
    from slo.service import alert_evaluator

    try:
        evaluator = alert_evaluator(config, client)
    except (spec.SpecError, ValueError) as exc:
        fail(str(exc))
    if evaluator is None:
        fail(f"no SLO directory at {config.alerting.slo_dir} (set --slo-dir)")
    return evaluator


@alerts_app.command("evaluate")
def alerts_evaluate(config_file: Optional[Path] = ConfigOpt, dsn: Optional[str] = DsnOpt,
                    slo_dir: Optional[Path] = SloDirOpt, at: Optional[str] = AtOpt,
                    output_format: str = FormatOpt,
                    log_level: str = typer.Option("WARNING", "--log-level")) -> None:
    """Evaluate every SLO once: update alert states, notify, print the active alerts."""
    from slo.lifecycle import AlertStore

    config = setup(config_file, log_level, dsn=dsn, slo_dir=slo_dir)
    check_format(output_format)
    load_slos(config.alerting.slo_dir)
    when = parse_time(at, "--at")
    client = open_store(config)
    try:
        evaluator = open_evaluator(config, client)
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
        output.emit_json(alerts)
        return
    if not alerts:
        typer.echo("no active alerts")
        return
    num = output.number
    output.emit(["slo", "severity", "state", "windows", "factor", "burn_long", "burn_short",
                 "budget_left", "dimensions", "silenced"],
                [(a["slo"], a["severity"], a["state"], f"{a['long_window']}/{a['short_window']}",
                  num(a["factor"]), num(a["burn_long"]), num(a["burn_short"]),
                  num(a["budget_remaining"]), output.labels(a["dimensions"]), a["silenced"])
                 for a in alerts])


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

    config = setup(config_file, log_level, dsn=dsn, slo_dir=slo_dir)
    check_format(output_format)
    slos = load_slos(config.alerting.slo_dir)
    span, spacing = to_timedelta(since, "--since"), to_timedelta(step, "--step")
    when = parse_time(at, "--at") or datetime.now(timezone.utc)
    client = open_store(config)
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
        output.emit_json(rows)
        return
    output.emit(["slo", "severity", "dimensions", "fired_at", "resolved_at", "peak_burn"],
                [(r["slo"], r["severity"], output.labels(r["dimensions"]), r["fired_at"],
                  r["resolved_at"] or "(still firing)", output.number(r["peak_burn"]))
                 for r in rows])


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

    config = setup(config_file, "WARNING", dsn=dsn)
    matchers = {}
    for item in match:
        if "=" not in item or not item.split("=", 1)[0]:
            fail(f"--match {item!r} is not label=value")
        key, value = item.split("=", 1)
        matchers[key] = value
    begin = parse_time(start, "--start") or datetime.now(timezone.utc)
    end = begin + to_timedelta(duration, "--duration")
    client = open_store(config)
    try:
        made = silences.add(client, matchers, begin, end, comment, created_by)
    except silences.SilenceError as exc:
        fail(str(exc))
    finally:
        client.close()
    typer.echo(f"silence {made.silence_id} until {made.ends_at.isoformat()}")


@silence_app.command("list")
def silence_list(config_file: Optional[Path] = ConfigOpt, dsn: Optional[str] = DsnOpt,
                 slo_dir: Optional[Path] = SloDirOpt) -> None:
    """Active and future silences (CLI-made and files)."""
    from datetime import datetime, timezone

    from slo import silences

    config = setup(config_file, "WARNING", dsn=dsn, slo_dir=slo_dir)
    now = datetime.now(timezone.utc)
    client = open_store(config)
    try:
        found = silences.load_table(client, now)
        found += [s for s in silences.load_files(config.alerting.slo_dir / "silences")
                  if s.ends_at > now]
    except silences.SilenceError as exc:
        fail(str(exc))
    finally:
        client.close()
    for s in found:
        typer.echo(f"{s.silence_id}  {s.starts_at.isoformat()} .. {s.ends_at.isoformat()}  "
                   f"{output.labels(s.matchers)}  {s.comment}")
    if not found:
        typer.echo("no active silences")


@silence_app.command("expire")
def silence_expire(silence_id: str = typer.Argument(...),
                   config_file: Optional[Path] = ConfigOpt, dsn: Optional[str] = DsnOpt) -> None:
    """End a CLI-made silence now (file silences end when their file changes)."""
    from datetime import datetime, timezone

    from slo import silences

    config = setup(config_file, "WARNING", dsn=dsn)
    client = open_store(config)
    try:
        ok = silences.expire(client, silence_id, datetime.now(timezone.utc))
    finally:
        client.close()
    if not ok:
        fail(f"no active CLI silence with id {silence_id}", 1)
    typer.echo(f"silence {silence_id} expired")
