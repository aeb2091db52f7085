"""Real processes and ports for the tests: a free loopback port, and a `policyscope
collector` started as its own process (as a user runs it), waited on until /health answers."""

from __future__ import annotations

import os
import socket
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Iterator
import subprocess
import sys
import time
import urllib.request

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_collector(tmp_path, http_port: int, batch_delay: str,
                    **popen) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYSCOPE_")}
    env.update({"POLICYSCOPE_BATCH_MAX_DELAY": batch_delay,
                "POLICYSCOPE_SPOOL_DIR": str(tmp_path / "spool")})
    launched = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "policyscope.cli", "collector", "--dsn",
         f"chdb://{tmp_path / 'ch'}", "--http-port", str(http_port), "--grpc-port",
         str(free_port()), "--log-level", "WARNING"], env=env, **popen)
    from collector.admin import address_file, read_address

    published = address_file(f"chdb://{tmp_path / 'ch'}", "policyscope")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=1)
            # started: its admin address (and token) is published just after the port opens;
            # until then the file may still name a collector killed before (SIGKILL leaves it)
            found = read_address(published)
            if found is not None and found[0].endswith(f":{http_port}") \
                    and published.stat().st_mtime >= launched - 1:
                return proc
        except OSError:
            assert proc.poll() is None, "collector exited during start-up"
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("collector did not start (or did not publish its admin address)")


def admin_headers(store) -> dict[str, str]:
    """The headers `policyscope sql` sends to the collector on the embedded store `store` (a
    path): the token the collector published beside it."""
    from collector.admin import address_file, read_address

    published = read_address(address_file(f"chdb://{store}", "policyscope"))
    assert published is not None, f"no collector published its admin address for {store}"
    return {"Authorization": f"Bearer {published[1]}"}


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """A local HTTP server answering with `handler` on a free loopback port, for as long as
    the block runs; yields the port."""
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def stored_count(store, sql: str = "SELECT count() FROM policy_decisions") -> int:
    """A count from the stopped collector's embedded store `store`, read in a process of its
    own (chDB opens one store per process, and the tests' process has its own)."""
    code = ("import sys; from core.storage import connect; "
            "c, _ = connect(f'chdb://{sys.argv[1]}', 'policyscope'); "
            "print(c.command(sys.argv[2])); c.close()")
    out = subprocess.run([sys.executable, "-c", code, str(store), sql], capture_output=True,
                         text=True, timeout=120, check=True)
    return int(out.stdout.strip().splitlines()[-1])
