"""The running collector: pipeline + OTLP/gRPC + OTLP/HTTP receivers in one process.

The HTTP receiver's asyncio loop runs in a background thread, so the main thread stays free
(for Streamlit in `policyscope up`, or for signal handling in `policyscope collector`).
Start order: pipeline (sink) first, receivers last; shutdown in reverse.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading

from clickhouse_connect.driver.client import Client

from collector.admin import AdminAccess, ReadOnlyQueries, add_admin_routes, address_file
from collector.auth import check_exposure, check_tls, token_auth
from collector.pipeline import Pipeline
from collector.receivers.otlp_grpc import OtlpGrpcReceiver
from collector.receivers.otlp_http import OtlpHttpReceiver
from collector.config import CollectorSettings

log = logging.getLogger(__name__)


class CollectorService:
    def __init__(self, config: CollectorSettings, *, client: Client | None = None,
                 database: str | None = None):
        self.config = config
        self.pipeline = Pipeline(config, client=client, database=database)
        c = config.collector
        check_tls(c)
        check_exposure(c)
        self.auth = token_auth(c)
        self.admin = AdminAccess(address_file(config.storage.dsn, config.storage.database))
        self.grpc = OtlpGrpcReceiver(self.pipeline, c, self.auth)
        self.queries: ReadOnlyQueries | None = None

        def admin_routes(app) -> None:
            self.queries = add_admin_routes(app, self.pipeline, self.admin)

        self.http = OtlpHttpReceiver(self.pipeline, c, self.auth, extra_routes=admin_routes)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def http_port(self) -> int:
        return self.http.bound_port

    @property
    def grpc_port(self) -> int:
        return self.grpc.bound_port

    def start(self) -> None:
        self.pipeline.start()
        self.grpc.start()
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self.http.start())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                failure.append(exc)
                started.set()
                return
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="otlp-http", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self.shutdown()
            raise OSError(f"cannot start OTLP/HTTP receiver on "
                          f"{self.config.collector.http_host}:{self.config.collector.http_port}: "
                          f"{failure[0]}") from failure[0]
        self.admin.publish(self.http_port)

    def shutdown(self) -> None:
        """Stop the receivers (requests in flight get `shutdown_timeout` to finish), then the
        pipeline: normalizer workers, then the writer's drain into storage. Idempotent."""
        self.admin.withdraw()
        if self._loop is not None:
            if self._thread is not None and self._thread.is_alive():
                deadline = self.config.collector.shutdown_timeout + 10
                asyncio.run_coroutine_threadsafe(self.http.shutdown(), self._loop).result(
                    deadline)
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(10)
            if not self._loop.is_running():
                self._loop.close()
            self._loop = None
            self._thread = None
        self.grpc.shutdown(self.config.collector.shutdown_timeout)
        self.pipeline.shutdown()

    def run_until_signalled(self) -> None:
        """Start, serve until SIGINT/SIGTERM, shut down cleanly. A read-only query still
        running then (an embedded one cannot be cancelled) is abandoned: the process exits
        at once, with 0, once everything acknowledged is in storage or the spool."""
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.start()
        try:
            stop.wait()
        finally:
            log.info("collector stopping")
            self.shutdown()
        if self.queries is not None and self.queries.busy:
            log.warning("abandoning a read-only query still running at shutdown")
            logging.shutdown()
            os._exit(0)
