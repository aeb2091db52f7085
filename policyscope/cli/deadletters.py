"""Dead letters: `deadletters list | replay | purge` over the rows ClickHouse refused for
themselves, parked by the collector in `<spool_dir>/dead-letter/` (collector/deadletters.py)."""

from __future__ import annotations

import sys
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
    setup,
    to_timedelta,
)
from policyscope.config import Config

deadletters_app = typer.Typer(
    help="Rows ClickHouse refused for themselves, parked in <spool_dir>/dead-letter/ so "
         "nothing acknowledged is dropped: list them, replay them once storage takes them, "
         "purge them.", no_args_is_help=True)

SpoolDirOpt = typer.Option(None, "--spool-dir", help="the collector's spool directory; dead "
                           "letters are in its dead-letter/ [default: ./data/spool]")
FormatOpt = typer.Option("table", "--format", "-f", help="table, json or csv")


def _folder(config: Config):
    from collector.deadletters import DeadLetterFolder, folder_of

    return DeadLetterFolder(folder_of(config.collector.spool_dir))


@deadletters_app.command("list")
def deadletters_list(config_file: Optional[Path] = ConfigOpt,
                     spool_dir: Optional[Path] = SpoolDirOpt,
                     output_format: str = FormatOpt,
                     log_level: str = typer.Option("WARNING", "--log-level")) -> None:
    """List parked files: file, tables, rows, the server's reason, when parked, size.

    Reads only the spool directory, so it works while a collector runs. `--format json`
    adds the server's message per reason and how often the file was replayed.
    """
    config = setup(config_file, log_level, spool_dir=spool_dir)
    check_format(output_format, output.FORMATS)
    folder = _folder(config)
    letters = folder.entries()
    if output_format == "json":
        output.emit_json([letter.to_json() for letter in letters])
        return
    if not letters and output_format == "table":
        typer.echo(f"no dead letters in {folder.path}")
        return
    output.emit(["file", "tables", "rows", "reason", "parked_at", "bytes"],
                [(e.name, ",".join(sorted(e.tables)), e.rows, e.reason,
                  e.parked_at.isoformat(timespec="seconds"), e.size) for e in letters],
                output_format)


@deadletters_app.command("replay")
def deadletters_replay(config_file: Optional[Path] = ConfigOpt, dsn: Optional[str] = DsnOpt,
                       spool_dir: Optional[Path] = SpoolDirOpt,
                       output_format: str = typer.Option("table", "--format", "-f",
                                                         help="table or json"),
                       log_level: str = LogLevelOpt) -> None:
    """Insert parked rows again, through the collector's own exactly-once insert path.

    Rows already stored (by a client retry, or an earlier replay) are not added twice; a
    file whose rows are all stored is removed. Rows storage still refuses stay parked and
    the server's reason is printed. Exits 1 when some rows stay parked.

    Needs the store itself: on the embedded store (chdb://) stop the running collector
    first (chDB lets one process open it); with a ClickHouse server DSN it runs alongside
    collectors.
    """
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from core.storage import StorageError, StorageLockedError, connect, resolve
    from schemas.migrations import migrate

    config = setup(config_file, log_level, dsn=dsn, spool_dir=spool_dir)
    check_format(output_format)
    folder = _folder(config)
    letters = folder.entries()
    if not letters:
        if output_format == "json":
            output.emit_json([])
        else:
            typer.echo(f"no dead letters in {folder.path}")
        return
    try:
        client, target = connect(config.storage.dsn, config.storage.database)
    except StorageLockedError:
        store = resolve(config.storage.dsn, config.storage.database).embedded_path
        fail(f"cannot replay: the embedded store {store} is in use by another process (a "
             "running `policyscope up` or `policyscope collector`?), and chDB lets one process "
             "open it. Stop it, then run `policyscope deadletters replay` again (`list` and "
             "`purge` work while it runs). With a ClickHouse server DSN, replay runs "
             "alongside collectors.", 1)
    except StorageError as exc:
        fail(str(exc), 1)
    try:
        migrate(client, target.database, retention_days=config.storage.retention_days)
        outcomes = _replay(client, target.database, folder, letters)
    except ClickHouseError as exc:
        fail(f"storage failed during the replay ({str(exc).splitlines()[0]}); files not "
             "replayed yet are left as they were: run it again", 1)
    finally:
        client.close()
    _print_outcomes(outcomes, output_format)
    kept = sum(o.still_refused for o in outcomes)
    if kept:
        typer.echo(f"error: {kept} rows are still refused and stay parked", err=True)
        raise typer.Exit(1)


def _replay(client, database: str, folder, letters):
    """Replay with a progress bar on a terminal (stderr, so --format json stays clean)."""
    from rich.console import Console
    from rich.progress import Progress

    from collector.deadletters import replay

    console = Console(stderr=True)
    with Progress(console=console, transient=True,
                  disable=not console.is_terminal or len(letters) < 2) as progress:
        task = progress.add_task("replaying dead letters", total=len(letters))
        return replay(client, database, folder, letters=letters,
                      progress=lambda done, _total: progress.update(task, completed=done))


def _print_outcomes(outcomes, output_format: str) -> None:
    if output_format == "json":
        output.emit_json([o.to_json() for o in outcomes])
        return
    output.emit(["file", "rows", "stored", "already_stored", "still_refused", "reason"],
                [(o.letter.name, o.letter.rows, o.stored, o.already_stored, o.still_refused,
                  ", ".join(sorted(o.reasons)) or "-") for o in outcomes])
    for o in outcomes:
        for code, message in sorted(o.messages.items()):
            typer.echo(f"{o.letter.name}: {code}: {message}")
    stored = sum(o.stored for o in outcomes)
    already = sum(o.already_stored for o in outcomes)
    kept = sum(o.still_refused for o in outcomes)
    typer.echo(f"{stored} rows stored, {already} were stored already, {kept} still refused")


def _interactive() -> bool:
    """Whether a person can answer a confirmation (stdin is a terminal)."""
    return sys.stdin.isatty()


@deadletters_app.command("purge")
def deadletters_purge(config_file: Optional[Path] = ConfigOpt,
                      spool_dir: Optional[Path] = SpoolDirOpt,
                      older_than: Optional[str] = typer.Option(
                          None, "--older-than", help="only files parked longer ago than this, "
                          "e.g. 7d, 12h, 30m [default: every file]"),
                      yes: bool = typer.Option(False, "--yes", "-y", help="do not ask; needed "
                                               "when stdin is not a terminal"),
                      log_level: str = typer.Option("WARNING", "--log-level")) -> None:
    """Delete parked files for good (their rows are never stored).

    Asks first, unless --yes; without a terminal to ask on, refuses unless --yes.
    """
    from collector.deadletters import older_than as parked_before

    config = setup(config_file, log_level, spool_dir=spool_dir)
    folder = _folder(config)
    letters = folder.entries()
    if older_than is not None:
        letters = parked_before(letters, to_timedelta(older_than, "--older-than").total_seconds())
    if not letters:
        typer.echo(f"nothing to purge in {folder.path}")
        return
    rows = sum(e.rows for e in letters)
    what = f"{len(letters)} dead-letter file{'s' if len(letters) != 1 else ''} ({rows} rows)"
    if not yes:
        if not _interactive():
            fail(f"refusing to purge {what} without --yes: stdin is not a terminal to ask on")
        if not typer.confirm(f"Delete {what} in {folder.path} for good?", default=False):
            typer.echo("nothing purged")
            return
    files, rows = folder.purge(letters)
    typer.echo(f"purged {files} file{'s' if files != 1 else ''} ({rows} rows)")
