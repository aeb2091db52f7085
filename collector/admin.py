"""Loopback-only admin API on the OTLP/HTTP port: `POST /api/sql` runs a read-only query.

While `policyscope up` or `policyscope collector` owns the embedded chDB path, no other process
can open it; `policyscope sql` then asks the running process through this endpoint, with the
address and credential the collector writes next to the store at start-up (`AdminAccess`:
`<store>.admin.json`, mode 0600, removed at shutdown). Every port is assumed reachable by an
attacker on the same host, a web page in the operator's browser included, so a request is
refused unless it comes from loopback (403), carries no `Origin` (403: browsers send one on
cross-site requests), names a loopback `Host` (403: DNS rebinding), is JSON (415) and carries
the token as `Authorization: Bearer` (401). A query is checked by `core.readonly_sql`
(ClickHouse's parser; only its rebuilt statement runs, read-only and within limits) and runs off
the event loop, on a connection of its own, one at a time: ingest, `/health` and the writer
never wait for it, and a second query while one runs gets 429 with `Retry-After`. On a
ClickHouse server with a reader password configured, that connection logs in as the reader
user, which the server holds read-only whatever the guard lets through; on chDB (no users) it
is another handle on the collector's store, with the guard's per-query settings.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import os
import secrets
import threading
from concurrent.futures import Future
from pathlib import Path

from aiohttp import web
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from collector.pipeline import Pipeline
from core import readonly_sql, storage

log = logging.getLogger(__name__)
BUSY_RETRY_AFTER_S = 1
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def address_file(dsn: str, database: str) -> Path | None:
    """Where a collector on the embedded store of `dsn` publishes its admin address and token
    (`<store>.admin.json`, beside the store's directory); None for a server DSN, where
    `policyscope sql` reads the server directly and needs no collector."""
    target = storage.resolve(dsn, database)
    if target.embedded_path is None:
        return None
    return target.embedded_path.with_name(target.embedded_path.name + ".admin.json")


def read_address(path: Path) -> tuple[str, str] | None:
    """(base URL, token) a running collector published at `path`, or None."""
    try:
        data = json.loads(path.read_text())
        return str(data["url"]), str(data["token"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class AdminAccess:
    """The admin API's credential: a random token, published with the bound address in a file
    only the collector's user can read, and the checks every admin request must pass."""

    def __init__(self, path: Path | None):
        self.path = path
        self.token = secrets.token_urlsafe(32)
        self.port: int | None = None

    def publish(self, port: int) -> None:
        """Write {url, token} at `path` (0600, atomically) once the port is bound."""
        self.port = port
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"url": f"http://127.0.0.1:{port}", "token": self.token}, handle)
        os.chmod(partial, 0o600)
        os.replace(partial, self.path)
        log.info("admin API address published at %s", self.path)

    def withdraw(self) -> None:
        """Remove the published file if it is still ours."""
        published = read_address(self.path) if self.path is not None else None
        if published is not None and published[1] == self.token:
            self.path.unlink(missing_ok=True)

    def refusal(self, request: web.Request) -> web.Response | None:
        """The answer to a request that may not use the admin API, or None."""
        peer = request.remote or ""
        try:
            loopback = ipaddress.ip_address(peer).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            return _error("the admin API answers loopback only", 403)
        if "Origin" in request.headers:
            return _error("cross-origin requests are refused (a browser sent this one)", 403)
        host, _, port = (request.host or "").rpartition(":")
        if host not in LOOPBACK_NAMES or (self.port is not None and port != str(self.port)):
            return _error(f"Host {request.host!r} is not this collector's loopback address",
                          403)
        if request.content_type != "application/json":
            return _error(f"Content-Type {request.content_type!r} is not application/json",
                          415)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 self.token.encode()):
            return _error("the admin API needs the token the collector published at start-up "
                          "(`policyscope sql` reads it)", 401,
                          {"WWW-Authenticate": 'Bearer realm="policyscope-admin"'})
        return None


def _error(message: str, status: int, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class ReadOnlyQueries:
    """Runs read-only queries one at a time on a thread and a connection of their own."""

    def __init__(self, pipeline: Pipeline, reader: storage.ReaderAccount | None = None):
        """`reader`: the server's reader user to log in as (`storage.reader_account`); None =
        another connection like the pipeline's (chDB, or no reader configured)."""
        self.pipeline = pipeline
        self.reader = reader
        self._busy = threading.Lock()
        self._closed = False
        self._pending: Future | None = None  # the running query's result
        self._client: Client | None = None

    def _open(self) -> Client:
        if self.reader is None:
            return storage.another(self.pipeline.client)
        return storage.connect(self.pipeline.config.storage.dsn, self.pipeline.database,
                               create_database=False, account=self.reader)[0]

    def _run(self, query: str) -> readonly_sql.QueryResult:
        if self._client is None:
            self._client = self._open()
        try:
            return readonly_sql.run(self._client, query,
                                    server_enforced=self.reader is not None)
        except readonly_sql.NotReadOnly:
            raise
        except Exception:
            self._drop_client()  # a query stopped by a limit can leave it unusable
            raise

    def _drop_client(self) -> None:
        if self._client is not None and self._client is not self.pipeline.client:
            self._client.close()
        self._client = None

    async def run(self, query: str) -> readonly_sql.QueryResult | None:
        """The rows, or None when another query is still running."""
        if self._closed or not self._busy.acquire(blocking=False):
            return None
        done: Future = Future()
        self._pending = done

        def work() -> None:
            result, error = None, None
            try:
                result = self._run(query)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting request
                error = exc
            finally:
                # Free before answering: a client's next query must not find it still busy.
                self._busy.release()
            if done.set_running_or_notify_cancel():
                if error is None:
                    done.set_result(result)
                else:
                    done.set_exception(error)

        # A daemon thread, not an executor's: the process exit must not wait for a query
        # (an embedded one cannot be cancelled) -- see `busy`.
        threading.Thread(target=work, name="readonly-sql", daemon=True).start()
        return await asyncio.wrap_future(done)

    def stop_waiting(self) -> None:
        """At shutdown: the request waiting on a running query is answered now (503), so
        the receivers' drain does not wait for the query."""
        self._closed = True
        if self._pending is not None:
            self._pending.cancel()

    @property
    def stopping(self) -> bool:
        return self._closed

    @property
    def busy(self) -> bool:
        """A query is running (the collector's shutdown abandons it rather than wait)."""
        return self._busy.locked()

    def close(self) -> None:
        """Stop taking queries; a running one ends within its time limit, on its connection
        (closed under it, an embedded query could take the process down; the process exit
        closes it then)."""
        self._closed = True
        if self._busy.acquire(blocking=False):
            try:
                self._drop_client()
            finally:
                self._busy.release()


def add_admin_routes(app: web.Application, pipeline: Pipeline,
                     access: AdminAccess) -> ReadOnlyQueries:
    # The reader is resolved now, so a reader password file that cannot be read stops start-up.
    queries = ReadOnlyQueries(pipeline, storage.reader_account(pipeline.config.storage))

    async def sql(request: web.Request) -> web.Response:
        refused = access.refusal(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
            query = body["query"]
            if not isinstance(query, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'body must be JSON {"query": "SELECT ..."}'},
                                     status=400)
        try:
            result = await queries.run(query)
        except asyncio.CancelledError:
            if not queries.stopping:
                raise
            return web.json_response({"error": "the collector is stopping"}, status=503)
        except readonly_sql.NotReadOnly as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except ClickHouseError as exc:
            message = str(exc).split("\n")[0]
            if queries.reader is not None:
                message = queries.reader.scrub(message)
            return web.json_response({"error": message}, status=400)
        except storage.StorageError as exc:  # the reader cannot log in
            log.warning("read-only query: %s", exc)
            return web.json_response({"error": str(exc)}, status=503)
        if result is None:
            return web.json_response(
                {"error": "another read-only query is running; try again shortly"},
                status=429, headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})
        return web.json_response({"columns": result.columns,
                                  "rows": readonly_sql.to_records(result)})

    async def stop_waiting(_app: web.Application) -> None:
        queries.stop_waiting()

    async def close(_app: web.Application) -> None:
        queries.close()

    app.router.add_post("/api/sql", sql)
    app.on_shutdown.append(stop_waiting)
    app.on_cleanup.append(close)
    return queries
