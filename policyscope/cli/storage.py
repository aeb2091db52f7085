"""The storage verbs: `migrate` (create or upgrade the schema) and `sql` (read-only queries,
through the running collector's admin API when it owns the embedded store)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
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
)
from policyscope.config import Config


def migrate(
    config_file: Optional[Path] = ConfigOpt,
    dsn: Optional[str] = DsnOpt,
    log_level: str = LogLevelOpt,
) -> None:
    """Create or upgrade the ClickHouse schema (idempotent; the collector also runs it)."""
    from core.storage import StorageError, connect
    from schemas.migrations import migrate as run_migrations

    config = setup(config_file, log_level, dsn=dsn)
    try:
        client, target = connect(config.storage.dsn, config.storage.database)
        applied = run_migrations(client, target.database,
                                 retention_days=config.storage.retention_days)
        client.close()
    except StorageError as exc:
        fail(str(exc), 1)
    typer.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


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

    config = setup(config_file, log_level, dsn=dsn)
    check_format(output_format, output.FORMATS)
    try:
        readonly_sql.check(query)
    except readonly_sql.NotReadOnly as exc:
        fail(str(exc))
    try:
        client, _ = connect(config.storage.dsn, config.storage.database, create_database=False)
    except StorageLockedError as exc:
        result = _query_running_collector(config, query, exc)
    except StorageError as exc:
        fail(str(exc), 1)
    else:
        try:
            result = readonly_sql.run(client, query)
        except Exception as exc:  # noqa: BLE001 - the engine's message is the answer
            fail(str(exc).split("\n")[0], 1)
        finally:
            client.close()
    output.emit(result.columns, result.rows, output_format)


def _query_running_collector(config: Config, query: str, locked: Exception):
    from core import readonly_sql

    url = f"http://127.0.0.1:{config.collector.http_port}/api/sql"
    request = urllib.request.Request(url, data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        fail(json.loads(exc.read() or b"{}").get("error", str(exc)), 1)
    except (urllib.error.URLError, OSError):
        fail(f"{locked}; and no collector answered on {url}", 1)
    columns = body["columns"]
    return readonly_sql.QueryResult(columns, [tuple(r[c] for c in columns)
                                              for r in body["rows"]])
