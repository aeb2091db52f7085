"""Ordered, idempotent ClickHouse migrations: `schemas/clickhouse/NNNN_name.sql`.

Each file is applied once, in number order, and recorded in `schema_migrations`. Statements are
separated by a line ending in `;`. `{db}` stands for the configured database (a validated
identifier). Every statement is also written to be harmless when repeated (IF NOT EXISTS), so a
crash between applying and recording a file is safe.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

from clickhouse_connect.driver.client import Client

from schemas.events import TABLES

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self, database: str) -> list[str]:
        body = "\n".join(line for line in self.sql.splitlines()
                         if not line.lstrip().startswith("--"))
        parts = re.split(r";\s*\n", body.replace("{db}", database))
        return [p.strip().rstrip(";") for p in parts if p.strip()]


def available() -> list[Migration]:
    """All migration files shipped with the package, in version order."""
    found = []
    for entry in resources.files("schemas").joinpath("clickhouse").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text()))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in schemas/clickhouse: {versions}")
    return found


def applied(client: Client, database: str) -> set[int]:
    client.command(
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
        "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree ORDER BY version")
    rows = client.query(f"SELECT version FROM {database}.schema_migrations FINAL").result_rows
    return {int(r[0]) for r in rows}


def migrate(client: Client, database: str, *, retention_days: int | None = None) -> list[str]:
    """Apply pending migrations; set the raw tables' TTL. Returns the names applied now."""
    done = applied(client, database)
    newly = []
    for mig in available():
        if mig.version in done:
            continue
        for statement in mig.statements(database):
            client.command(statement)
        client.insert(f"{database}.schema_migrations", [[mig.version, mig.name]],
                      column_names=["version", "name"])
        newly.append(f"{mig.version:04d}_{mig.name}")
        log.info("migration applied: %04d_%s", mig.version, mig.name)
    if retention_days is not None:
        apply_retention(client, database, retention_days)
    return newly


def apply_retention(client: Client, database: str, days: int) -> None:
    """Make the raw tables' TTL `days`, only when it differs (MODIFY TTL rewrites metadata)."""
    for table in TABLES:
        create = client.command(f"SHOW CREATE TABLE {database}.{table.name}")
        current = str(create)
        if f"toIntervalDay({int(days)})" not in current and f"INTERVAL {int(days)} DAY" not in current:
            client.command(f"ALTER TABLE {database}.{table.name} MODIFY TTL "
                           f"toDateTime(event_time) + INTERVAL {int(days)} DAY")
            log.info("retention of %s set to %d days", table.name, days)
