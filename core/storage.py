"""The one way into ClickHouse: a clickhouse-connect client chosen by DSN.

`chdb:///path` opens the embedded engine (chDB, the real ClickHouse engine in this process);
`http(s)://user:password@host:8123/db` talks to a server. Everything else in PolicyScope takes the
client this module returns, so both modes run the same SQL.

chDB allows one process per data path and one data path per process; a second process that
opens a path in use gets `StorageLockedError`, which says what to do instead.

On a server, read-only paths connect as the reader user when one is configured
(`reader_account`, `connect(..., account=...)`): the server itself then holds them read-only
(its settings profile locks `readonly` and the limits; it may SELECT the PolicyScope database
only). chDB has no users, so there `reader_account` is None and the guard with its per-query
settings (core/readonly_sql.py) stands alone.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, ProgrammingError
from pydantic import SecretStr

from core.config import StorageConfig, redact_dsn

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_open_lock = threading.Lock()
_targets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # client -> (Target, account)


class StorageError(RuntimeError):
    """Storage could not be opened or used; the message says what and where."""


class StorageLockedError(StorageError):
    """The embedded data path is owned by another process."""


@dataclass(frozen=True)
class Target:
    """Where a DSN points: `embedded_path` is set for chDB, `database` is always validated."""

    dsn: str
    database: str
    embedded_path: Path | None

    @property
    def is_embedded(self) -> bool:
        return self.embedded_path is not None


@dataclass(frozen=True)
class ReaderAccount:
    """The server user read-only queries run as; `profile` is its settings profile. The
    password is a SecretStr: its repr, str and a dump of the config hide it."""

    user: str
    password: SecretStr

    @property
    def profile(self) -> str:
        return f"{self.user}_profile"

    def scrub(self, text: str) -> str:
        """`text` with the password, should it appear, replaced by ***."""
        secret = self.password.get_secret_value()
        return text.replace(secret, "***") if secret else text


def reader_account(config: StorageConfig) -> ReaderAccount | None:
    """The reader user configured for a server DSN, its password read (from
    `reader_password_file` if given); None for the embedded store (chDB has no users) or when
    no password is configured. Raises StorageError naming the file (never its content) when
    it cannot be read, is empty, or both a password and a file are given."""
    target = resolve(config.dsn, config.database)
    if target.is_embedded:
        return None
    password = config.reader_password
    if config.reader_password_file is not None:
        if password is not None:
            raise StorageError("give reader_password or reader_password_file, not both")
        path = config.reader_password_file.expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise StorageError(f"cannot read reader_password_file {path} "
                               f"({exc.strerror or type(exc).__name__})") from None
        if not text:
            raise StorageError(f"reader_password_file {path} is empty")
        password = SecretStr(text)
    if password is None or not password.get_secret_value():
        return None
    return ReaderAccount(config.reader_user or f"{target.database}_reader", password)


def resolve(dsn: str, database: str) -> Target:
    """Validate a DSN and decide the database (a path in an http DSN wins over `database`)."""
    parsed = urlparse(dsn)
    if parsed.scheme == "chdb":
        raw = dsn[len("chdb://"):]
        if not raw or raw == "/":
            raise StorageError(f"DSN {dsn!r} has no path; expected chdb:///path/to/data")
        path = Path(raw[1:] if raw.startswith("/./") else raw).expanduser().resolve()
        target = Target(f"chdb://{path}", database, path)
    elif parsed.scheme in ("http", "https"):
        if not parsed.hostname:
            raise StorageError(f"DSN {redact_dsn(dsn)!r} has no host; "
                               "expected http(s)://user:password@host:8123/database")
        db = parsed.path.strip("/") or database
        target = Target(dsn, db, None)
    else:
        raise StorageError(f"DSN {redact_dsn(dsn)!r} has scheme {parsed.scheme!r}; "
                           "expected chdb:///path or http(s)://host:8123/database")
    if not _IDENTIFIER.match(target.database):
        raise StorageError(f"database name {target.database!r} is not a plain identifier")
    return target


def connect(dsn: str, database: str, *, create_database: bool = True,
            account: ReaderAccount | None = None) -> tuple[Client, Target]:
    """Open a client on the DSN with `database` as its default database (created if absent).
    With `account` (a server DSN only), the client logs in as that user instead of the DSN's,
    and nothing is created: the reader may only read."""
    target = resolve(dsn, database)
    if account is not None and target.is_embedded:
        raise StorageError("the embedded store (chdb://) has no users; a reader account "
                           "applies to a ClickHouse server DSN only")
    login = {} if account is None else {
        "username": account.user, "password": account.password.get_secret_value()}
    as_user = "" if account is None else f" as {account.user}"
    failure: Exception | None = None
    with _open_lock:
        try:
            if target.is_embedded:
                target.embedded_path.mkdir(parents=True, exist_ok=True)
            if create_database and account is None:
                bootstrap = clickhouse_connect.get_client(
                    dsn=target.dsn, **({} if target.is_embedded else {"database": "default"}))
                bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {target.database}")
                bootstrap.close()
            client = clickhouse_connect.get_client(dsn=target.dsn, database=target.database,
                                                   **login)
        except ProgrammingError as exc:
            if target.is_embedded and "chdb engine" in str(exc):
                raise StorageLockedError(
                    f"the embedded store {target.embedded_path} is in use by another process "
                    "(is `policyscope up` or `policyscope collector` running?). Stop it first, "
                    "query through it, or point --dsn at a ClickHouse server") from exc
            failure = exc
        except (ClickHouseError, OSError) as exc:
            failure = exc
    if failure is not None:
        message = f"cannot open {redact_dsn(target.dsn)}{as_user}: {failure}"
        if account is None:
            raise StorageError(message) from failure
        # Scrubbed of the password (the driver's message should hold none), and not chained:
        # a traceback would print the driver's exception as it is.
        raise StorageError(account.scrub(message)) from None
    log.info("storage open: %s database=%s%s", redact_dsn(target.dsn), target.database, as_user)
    _targets[client] = (target, account)
    return client, target


def another(client: Client) -> Client:
    """One more connection to the store and database `client` (from `connect`) is on now. A
    client runs one call at a time (chDB's handles and HTTP sessions alike), so work meant
    to overlap -- a backfill's inserts with its reads -- needs a client of its own; chDB
    runs calls on different handles of its one engine concurrently. A client not opened by
    `connect` is returned as it is (its calls then take turns)."""
    opened = _targets.get(client)
    if opened is None:
        return client
    target, account = opened
    return connect(target.dsn, client.database or target.database, create_database=False,
                   account=account)[0]


def insert_arrow(client: Client, table: str, rows: pa.Table, *, settings: dict | None = None,
                 batch_rows: int = 65_536) -> None:
    """Insert an Arrow table as an Arrow IPC stream sent batch by batch (`raw_insert` with a
    generator), instead of clickhouse-connect's `insert_arrow`, which first builds the whole
    IPC file in one growing buffer and then copies it into a bytes object: for a backfill's
    rows that is several copies of fresh memory, and fresh memory is slow to fault in. Here
    each batch's bytes are handed on as soon as they are written."""
    if not rows.num_rows:
        return
    client.raw_insert(table, rows.column_names, _ipc_stream(rows, batch_rows),
                      settings=settings, fmt="ArrowStream")


class _Chunks:
    """A write-only file for pyarrow that keeps what it is given until `drain`."""

    closed = False

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> list[bytes]:
        parts, self.parts = self.parts, []
        return parts


def _ipc_stream(rows: pa.Table, batch_rows: int) -> Iterator[bytes]:
    sink = _Chunks()
    with pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), rows.schema) as writer:
        for batch in rows.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
            yield from sink.drain()
    yield from sink.drain()
