"""What the verbs share: the common options (--config, --dsn, --log-level, --slo-dir, --at,
--format), start-up (logging and config), opening storage, and checking flag values.

A bad flag value ends the command through `fail`: one `error: ...` line on stderr and exit 2
(usage) or 1 (the storage or the work itself failed).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, Optional

import typer

from policyscope.cli.output import TABLE_OR_JSON
from policyscope.config import Config, ConfigError, load_config

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config file (also POLICYSCOPE_CONFIG)",
                         exists=False, dir_okay=False)
DsnOpt = typer.Option(None, "--dsn", help="chdb:///path (embedded, default ./data/clickhouse) or "
                      "http(s)://user:pass@host:8123/db (also POLICYSCOPE_DSN)")
LogLevelOpt = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR")
SloDirOpt = typer.Option(None, "--slo-dir", help="directory of SLO files [default: ./slo]")
AtOpt = typer.Option(None, "--at", help="evaluate as of this UTC time (ISO 8601) "
                     "[default: now]")
FormatOpt = typer.Option("table", "--format", "-f", help="table or json")


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def setup(config_file: Optional[Path], log_level: str, **overrides: Any) -> Config:
    """Configure logging to stderr and load the config (file, environment, then flags)."""
    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        fail(f"--log-level {log_level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return load_config(config_file, overrides=overrides)
    except ConfigError as exc:
        fail(str(exc))


def open_store(config: Config):
    """A client on the configured storage with the schema migrated (idempotent, cheap)."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from core.storage import StorageError, connect
    from schemas.migrations import migrate as run_migrations

    try:
        client, target = connect(config.storage.dsn, config.storage.database)
        run_migrations(client, target.database, retention_days=config.storage.retention_days)
    except StorageError as exc:
        fail(str(exc), 1)
    except ClickHouseError as exc:
        fail(f"storage refused the schema migration: {str(exc).splitlines()[0]}", 1)
    return client


def check_format(output_format: str, choices: Sequence[str] = TABLE_OR_JSON) -> None:
    if output_format not in choices:
        fail(f"--format {output_format!r} is not one of {', '.join(choices)}")


def parse_time(text: Optional[str], flag: str):
    """An ISO 8601 flag value as an aware datetime (UTC when it names no zone), or None."""
    from datetime import datetime, timezone

    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{flag} {text!r} is not an ISO 8601 time like 2026-11-27T12:00:00Z")
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def to_timedelta(text: str, flag: str):
    """A positive duration flag value (30d, 1h, 15m, ...) as a timedelta."""
    from datetime import timedelta

    from core.units import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        fail(f"{flag}: {exc}")
    if seconds <= 0:
        fail(f"{flag} must be positive, got {text!r}")
    return timedelta(seconds=seconds)
