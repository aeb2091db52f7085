"""The policy catalog as code: `catalog validate` (for CI: one `file:line: what` line per
problem, exit 1), `catalog load` (validate, then store a version unless the content is the
latest already), `catalog show` and `catalog versions` (what is stored), and `catalog
missing` (policies with decisions over a range that the catalog lacks)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from policyscope.cli import output
from policyscope.cli.options import (
    ConfigOpt,
    DsnOpt,
    FormatOpt,
    check_format,
    fail,
    open_store,
    parse_time,
    setup,
    to_timedelta,
)

catalog_app = typer.Typer(help="The policy catalog as code: validate, load, show, versions, "
                               "missing.", no_args_is_help=True)

PathsArg = typer.Argument(None, help="catalog files or directories [default: the catalog_dir "
                                     "setting, ./policies]")
CatalogDirOpt = typer.Option(None, "--catalog-dir", help="directory of catalog files "
                             "(also POLICYSCOPE_CATALOG_DIR) [default: ./policies]")
QuietLogs = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING or ERROR")


def _checked(paths: Optional[list[Path]], config_file: Optional[Path],
             catalog_dir: Optional[Path], log_level: str, **overrides):
    """(config, paths, check of them); prints every problem on stderr."""
    from catalog.parse import check_paths

    config = setup(config_file, log_level, catalog_dir=catalog_dir, **overrides)
    paths = list(paths or [config.catalog.catalog_dir])
    checked = check_paths(paths)
    for problem in checked.problems:
        typer.echo(str(problem), err=True)
    return config, paths, checked


@catalog_app.command("validate")
def catalog_validate(paths: Optional[list[Path]] = PathsArg,
                     config_file: Optional[Path] = ConfigOpt,
                     catalog_dir: Optional[Path] = CatalogDirOpt,
                     log_level: str = QuietLogs) -> None:
    """Check catalog files (for CI): one `file:line: what` line per problem on stderr and
    exit 1 when any is bad; ids must be unique across all the files given."""
    _, paths, checked = _checked(paths, config_file, catalog_dir, log_level)
    if not checked.ok:
        typer.echo(f"{len(checked.problems)} problem(s) in the catalog", err=True)
        raise typer.Exit(1)
    typer.echo(f"ok: {len(checked.policies)} policies in {len(checked.files)} file(s) "
               f"({', '.join(map(str, paths))})")


@catalog_app.command("load")
def catalog_load(paths: Optional[list[Path]] = PathsArg,
                 config_file: Optional[Path] = ConfigOpt, dsn: Optional[str] = DsnOpt,
                 catalog_dir: Optional[Path] = CatalogDirOpt,
                 log_level: str = QuietLogs) -> None:
    """Validate the catalog and store it as a new version, unless its content is the latest
    version already. Any problem: nothing is stored, exit 1."""
    from catalog.load import load_catalog

    config, paths, checked = _checked(paths, config_file, catalog_dir, log_level, dsn=dsn)
    if not checked.ok:
        fail(f"{len(checked.problems)} problem(s) in the catalog; nothing was stored", 1)
    client = open_store(config)
    try:
        loaded = load_catalog(client, checked.catalog, source=", ".join(map(str, paths)))
    finally:
        client.close()
    typer.echo(loaded.describe())


def _version(client, at):
    from catalog import store

    version = store.latest(client, at)
    if version is None:
        when = f" at {at.isoformat()}" if at else ""
        fail(f"no catalog stored{when}: load one with `policyscope catalog load`", 1)
    return version


@catalog_app.command("show")
def catalog_show(config_file: Optional[Path] = ConfigOpt, dsn: Optional[str] = DsnOpt,
                 at: Optional[str] = typer.Option(None, "--at", help="the version in force "
                                                  "at this UTC time (ISO 8601) [default: the "
                                                  "latest]"),
                 output_format: str = FormatOpt, log_level: str = QuietLogs) -> None:
    """The stored catalog: the latest version, or the one in force at --at."""
    config = setup(config_file, log_level, dsn=dsn)
    check_format(output_format)
    when = parse_time(at, "--at")
    client = open_store(config)
    try:
        version = _version(client, when)
    finally:
        client.close()
    if output_format == "json":
        output.emit_json({"loaded_at": version.loaded_at, "digest": version.digest,
                          "source": version.source,
                          "policies": [p.to_dict() for p in version.catalog]})
        return
    typer.echo(f"catalog {version.digest[:12]}, loaded at "
               f"{version.loaded_at.isoformat(timespec='seconds')} from {version.source}")
    output.emit(["policy", "title", "owner", "category", "severity", "controls", "runbook"],
                [(p.id, p.title, p.owner, p.category, p.severity,
                  "; ".join(map(str, p.controls)), p.runbook) for p in version.catalog])


@catalog_app.command("versions")
def catalog_versions(config_file: Optional[Path] = ConfigOpt, dsn: Optional[str] = DsnOpt,
                     output_format: str = FormatOpt, log_level: str = QuietLogs) -> None:
    """Every stored version, newest first."""
    from catalog import store

    config = setup(config_file, log_level, dsn=dsn)
    check_format(output_format)
    client = open_store(config)
    try:
        rows = store.versions(client)
    finally:
        client.close()
    if output_format == "json":
        output.emit_json(rows)
        return
    output.emit(["loaded_at", "digest", "policies", "source"],
                [(r["loaded_at"], r["digest"][:12], r["policies"], r["source"]) for r in rows])


@catalog_app.command("missing")
def catalog_missing(config_file: Optional[Path] = ConfigOpt, dsn: Optional[str] = DsnOpt,
                    last: str = typer.Option("7d", "--last", help="how far back from --end"),
                    end: Optional[str] = typer.Option(None, "--end", help="end of the range, "
                                                      "UTC ISO 8601 [default: now]"),
                    output_format: str = FormatOpt, log_level: str = QuietLogs) -> None:
    """Policies with decisions in [end - last, end) that the latest catalog lacks, with
    their number of decisions: they are counted everywhere, only their catalog entry is
    missing."""
    from datetime import datetime, timezone

    from catalog import store
    from catalog.frames import missing_policies
    from catalog.model import Catalog

    config = setup(config_file, log_level, dsn=dsn)
    check_format(output_format)
    until = parse_time(end, "--end") or datetime.now(timezone.utc)
    since = until - to_timedelta(last, "--last")
    client = open_store(config)
    try:
        version = store.latest(client)
        frame = missing_policies(client, since, until,
                                 catalog=version.catalog if version else Catalog())
    finally:
        client.close()
    rows = frame.rows()
    if output_format == "json":
        output.emit_json([{"policy_id": p, "decisions": n} for p, n in rows])
        return
    against = f"catalog {version.digest[:12]}" if version else "no catalog stored"
    typer.echo(f"decisions from {since.isoformat(timespec='seconds')} to "
               f"{until.isoformat(timespec='seconds')}, against {against}")
    output.emit(["policy", "decisions"], rows)
