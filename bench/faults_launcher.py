"""`python -m bench.faults_launcher FLAG collector ...`: `policyscope collector` whose storage
fails while the file FLAG exists -- the fault campaign's storage outage, with no hook in the
collector's own code.

The writer the pipeline builds gets its client wrapped. While FLAG exists, the writer's
attempts (each begins with the TRUNCATE of its staging table) fail in turn two ways: the
first call raises clickhouse-connect's `OperationalError`, as an unreachable server does; or
every call runs and the INSERT into the table raises only after it ran, as when the
connection drops after the server stored the rows. The writer cannot tell the two apart,
keeps the rows in the spool, and must not store them twice when it retries. Each lost answer
is logged (one WARNING line per insert attempt) so the campaign can check it happened.
Creating the writer's staging tables at start-up is left alone, so a collector restarted
during the outage starts, replays its spool and then fails to insert like the one before it.
Everything after FLAG is the `policyscope` command line.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from clickhouse_connect.driver.exceptions import OperationalError

from collector import pipeline
from collector.writer import ClickHouseWriter

log = logging.getLogger(__name__)
LOST_ANSWER_LOG = "then its answer was lost"
_INSERTS = ("insert", "insert_arrow", "raw_insert")
_CALLS = ("command", "insert", "insert_arrow", "raw_insert", "query", "query_arrow",
          "query_np", "query_df", "raw_query")


class FailingClient:
    """A client that fails while `flag` exists; otherwise the client it wraps."""

    def __init__(self, client, flag: Path):
        self._client = client
        self._flag = flag
        self._attempts = 0

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if name not in _CALLS or not callable(attr):
            return attr

        def call(*args, **kwargs):
            if not self._flag.exists() or _starts(args, "CREATE TABLE IF NOT EXISTS"):
                return attr(*args, **kwargs)
            if _starts(args, "TRUNCATE"):
                self._attempts += 1
            if self._attempts % 2:
                raise OperationalError(f"fault campaign: storage unreachable for {name} "
                                       f"(outage flag {self._flag})")
            result = attr(*args, **kwargs)
            if _starts(args, "INSERT") or (name in _INSERTS and "_staging_" not in str(
                    args[0] if args else kwargs.get("table", ""))):
                log.warning("fault campaign: %s ran, then its answer was lost", name)
                raise OperationalError(f"fault campaign: connection lost after the server "
                                       f"ran {name} (outage flag {self._flag})")
            return result
        return call


def _starts(args, keyword: str) -> bool:
    return bool(args) and isinstance(args[0], str) and args[0].lstrip().upper().startswith(
        keyword)


def install(flag: Path) -> None:
    """Make the pipeline build writers on a FailingClient."""

    class OutageWriter(ClickHouseWriter):
        def __init__(self, client, *args, **kwargs):
            super().__init__(FailingClient(client, flag), *args, **kwargs)

    pipeline.ClickHouseWriter = OutageWriter


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: python -m bench.faults_launcher FLAG collector [options]")
    install(Path(argv[0]))
    from policyscope.cli import main as policyscope

    sys.argv = ["policyscope", *argv[1:]]
    policyscope()


if __name__ == "__main__":
    main(sys.argv[1:])
