"""Ordered, idempotent ClickHouse migrations: `schemas/clickhouse/NNNN_name.sql`.

Each file is applied once, in number order, and recorded in `schema_migrations`. Statements are
separated by a line ending in `;`. `{db}` stands for the configured database (a validated
identifier). Every statement is also written to be harmless when repeated (IF NOT EXISTS), so a
crash between applying and recording a file is safe.

On a ClickHouse server, `migrate(..., reader=...)` also makes the reader user read-only
queries connect as (`reader_statements`): a settings profile whose `readonly = 1` and limits
(`core.readonly_sql.LIMITS`) are CONST constraints, and a user on that profile allowed to
SELECT from the PolicyScope database and nothing else. Its password never leaves the process:
the statements carry a salted SHA-256 of it. Every statement states the whole wanted state
(CREATE ... IF NOT EXISTS, then ALTER ... / GRANT ... WITH REPLACE OPTION), so running them
again changes nothing, and a changed password or limit is applied. chDB has no users; there
the guard and its per-query settings stand alone.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from importlib import resources

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from core.readonly_sql import LIMITS
from core.storage import ReaderAccount, StorageError
from schemas.events import TABLES
from schemas.tables import RAW_COPIES

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


def migrate(client: Client, database: str, *, retention_days: int | None = None,
            reader: ReaderAccount | None = None) -> list[str]:
    """Apply pending migrations; set the raw tables' TTL; with `reader` (a server only: the
    client's user needs access management), create or update the reader user. Returns the
    names applied now."""
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
    if reader is not None:
        ensure_reader(client, database, reader)
    return newly


def _setting(name: str, value: object) -> str:
    literal = f"'{value}'" if isinstance(value, str) else str(int(value))
    return f"{name} = {literal} CONST"


def reader_statements(database: str, reader: ReaderAccount, *,
                      salt: str | None = None) -> list[str]:
    """The DDL making `reader` read-only on `database`, in order. `salt` (hex) defaults to a
    random one; the password appears only as SHA-256(password + salt), how ClickHouse stores
    it for `sha256_hash`."""
    for name in (database, reader.user, reader.profile):
        if not _IDENTIFIER.match(name):
            raise ValueError(f"{name!r} is not a plain identifier")
    salt = secrets.token_hex(16).upper() if salt is None else salt
    if not re.fullmatch(r"[0-9A-Fa-f]+", salt):
        raise ValueError("the salt must be hexadecimal")
    digest = hashlib.sha256((reader.password.get_secret_value() + salt).encode()).hexdigest()
    settings = ", ".join([_setting("readonly", 1)]
                         + [_setting(k, v) for k, v in LIMITS.items()])
    login = (f"IDENTIFIED WITH sha256_hash BY '{digest.upper()}' SALT '{salt}' "
             f"DEFAULT ROLE NONE DEFAULT DATABASE {database} "
             f"SETTINGS PROFILE '{reader.profile}'")
    return [
        f"CREATE SETTINGS PROFILE IF NOT EXISTS {reader.profile}",
        f"ALTER SETTINGS PROFILE {reader.profile} SETTINGS {settings}",
        f"CREATE USER IF NOT EXISTS {reader.user} {login}",
        f"ALTER USER {reader.user} {login}",
        f"GRANT SELECT ON {database}.* TO {reader.user} WITH REPLACE OPTION",
    ]


def ensure_reader(client: Client, database: str, reader: ReaderAccount) -> None:
    """Create or update the reader user and its profile (`reader_statements`). Raises
    StorageError naming the step when the server refuses one; the message holds neither the
    password nor its hash."""
    statements = reader_statements(database, reader)
    digest = re.search(r"BY '([0-9A-F]+)'", statements[2]).group(1)
    for statement in statements:
        step = re.sub(r"IDENTIFIED WITH .*", "...", statement)
        try:
            client.command(statement)
        except ClickHouseError as exc:
            answer = reader.scrub(str(exc).split("\n")[0]).replace(digest, "***")
            raise StorageError(f"the server refused to set up the reader user {reader.user} "
                               f"at `{step}`: {answer} (the DSN's user needs access "
                               "management, e.g. CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT=1)"
                               ) from None
    log.info("reader user %s: profile %s (readonly, limits locked), SELECT on %s.* only",
             reader.user, reader.profile, database)


def apply_retention(client: Client, database: str, days: int) -> None:
    """Make the raw tables' TTL `days` (and their copies', `tables.RAW_COPIES`), only when it
    differs (MODIFY TTL rewrites metadata)."""
    for name in (*(table.name for table in TABLES), *RAW_COPIES):
        create = client.command(f"SHOW CREATE TABLE {database}.{name}")
        current = str(create)
        if f"toIntervalDay({int(days)})" not in current and f"INTERVAL {int(days)} DAY" not in current:
            client.command(f"ALTER TABLE {database}.{name} MODIFY TTL "
                           f"toDateTime(event_time) + INTERVAL {int(days)} DAY")
            log.info("retention of %s set to %d days", name, days)
