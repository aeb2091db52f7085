"""The storage verbs: `migrate` (create or upgrade the schema; on a server, also the reader
user) and `sql` (read-only queries: as the reader user on a server when one is configured,
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
    """Create or upgrade the ClickHouse schema (idempotent; the collector also runs it).

    On a ClickHouse server with a reader password configured (POLICYSCOPE_READER_PASSWORD
    or reader_password_file), also create or update the reader user that `policyscope sql`
    and the admin API query as: a settings profile locking readonly=1 and the query limits,
    and SELECT on the PolicyScope database only. The DSN's user needs access management.
    The embedded store (chDB) has no users: its read-only paths rely on the query guard.
    """
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from core.storage import StorageError, connect, reader_account
    from schemas.migrations import migrate as run_migrations

    config = setup(config_file, log_level, dsn=dsn)
    try:
        reader = reader_account(config.storage)
        client, target = connect(config.storage.dsn, config.storage.database)
        try:
            applied = run_migrations(client, target.database,
                                     retention_days=config.storage.retention_days,
                                     reader=reader)
        finally:
            client.close()
    except StorageError as exc:
        fail(str(exc), 1)
    except ClickHouseError as exc:
        fail(f"storage refused the schema migration: {str(exc).splitlines()[0]}", 1)
    typer.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    if reader is not None:
        typer.echo(f"reader user {reader.user}: readonly, limits locked, SELECT on "
                   f"{target.database}.* only")


def sql(
    query: str = typer.Argument(..., help="a SELECT, WITH, SHOW, DESCRIBE or EXPLAIN statement"),
    config_file: Optional[Path] = ConfigOpt,
    dsn: Optional[str] = DsnOpt,
    output_format: str = typer.Option("table", "--format", "-f", help="table, json or csv"),
    http_port: Optional[int] = typer.Option(
        None, "--http-port", help="while a collector owns the embedded store: its OTLP/HTTP "
        "port [default: the address it published beside the store]"),
    log_level: str = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING, ERROR"),
) -> None:
    """Run a read-only query against the configured storage and print the rows.

    Only SELECT, WITH, SHOW, DESCRIBE, EXISTS and EXPLAIN run, as ClickHouse's parser reads
    them, read-only and within time, memory and result limits. On a ClickHouse server with a
    reader password configured, the query runs as the reader user (see `migrate`), which the
    server itself holds read-only. While `policyscope up` owns the embedded store, the query
    goes through its loopback admin API instead, with the address and token the collector
    published beside the store.
    """
    from core import readonly_sql
    from core.storage import StorageError, StorageLockedError, connect, reader_account

    config = setup(config_file, log_level, dsn=dsn)
    check_format(output_format, output.FORMATS)
    if not query.strip().rstrip(";").strip():
        fail("the query is empty")
    reader = None
    try:
        reader = reader_account(config.storage)
        client, _ = connect(config.storage.dsn, config.storage.database, create_database=False,
                            account=reader)
    except StorageLockedError as exc:
        result = _query_running_collector(config, query, exc, http_port)
    except StorageError as exc:
        if reader is None:
            _refuse_if_not_read_only(config, query)  # a refusal says more than "no database"
        fail(str(exc), 1)
    else:
        try:  # ClickHouse's parser reads the query; only what passes the guard runs
            result = readonly_sql.run(client, query, server_enforced=reader is not None)
        except readonly_sql.NotReadOnly as exc:
            fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - the engine's message is the answer
            message = str(exc).split("\n")[0]
            fail(reader.scrub(message) if reader is not None else message, 1)
        finally:
            client.close()
    output.emit(result.columns, result.rows, output_format)


def _refuse_if_not_read_only(config: Config, query: str) -> None:
    """Where the configured database cannot be opened, still give the guard's verdict on the
    query (ClickHouse's parser needs only the engine, on its default database)."""
    from core import readonly_sql
    from core.storage import StorageError, connect

    try:
        client, _ = connect(config.storage.dsn, "default", create_database=False)
    except StorageError:
        return
    try:
        readonly_sql.check(client, query)
    except readonly_sql.NotReadOnly as exc:
        fail(str(exc))
    finally:
        client.close()


def _query_running_collector(config: Config, query: str, locked: Exception,
                             http_port: int | None):
    """Send the query to the collector that owns the embedded store, at the address and with
    the token it published beside the store (`--http-port` picks another port)."""
    from collector.admin import address_file, read_address
    from core import readonly_sql

    path = address_file(config.storage.dsn, config.storage.database)
    published = read_address(path) if path is not None else None
    if published is None:
        fail(f"{locked}; and no running collector published its admin address at {path}", 1)
    url, token = published
    if http_port is not None:
        url = f"http://127.0.0.1:{http_port}"
    request = urllib.request.Request(f"{url}/api/sql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read() or b"{}").get("error", str(exc))
        except ValueError:
            message = str(exc)
        fail(message, 2 if exc.code == 400 else 1)
    except (urllib.error.URLError, OSError):
        fail(f"{locked}; and no collector answered on {url}", 1)
    columns = body["columns"]
    return readonly_sql.QueryResult(columns, [tuple(r[c] for c in columns)
                                              for r in body["rows"]])
