"""Acknowledged means stored (issue 11): a request whose records span 150 months, and another
client's record in the same insert batch, are all stored -- before, the insert was refused for
"too many partitions for single INSERT block" and all 151 acknowledged rows went to dead
letters."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from collector.service import CollectorService
from tests.builders.otlp import decision, logs_request, post, wait_rows

pytestmark = pytest.mark.integration


def _month(k: int) -> int:
    """Nanoseconds at the 15th of the k-th month from now (all within what storage keeps)."""
    now = datetime.now(timezone.utc)
    year, month = divmod(now.month - 1 + k, 12)
    return int(datetime(now.year + year, month + 1, 15, tzinfo=timezone.utc).timestamp()) \
        * 10**9


def test_records_over_150_months_and_another_clients_record_are_all_stored(
        chdb_client, database, config_factory):
    service = CollectorService(config_factory(batch_max_delay="1s"), client=chdb_client,
                               database=database)
    service.start()
    try:
        spread = []
        for k in range(150):
            record = decision(f"month-{k}")
            record.time_unix_nano = _month(k)
            spread.append(record)
        assert post(service.http_port, "/v1/logs",
                    logs_request(*spread).SerializeToString())[0] == 200
        assert post(service.http_port, "/v1/logs",
                    logs_request(decision("other-client")).SerializeToString())[0] == 200
        assert wait_rows(service, "SELECT count() FROM policy_decisions", 151) == 151
        assert service.pipeline.writer.dead_letter_rows == 0
        assert service.pipeline.writer.failed_inserts == 0
        assert chdb_client.command(
            "SELECT uniqExact(toYYYYMM(event_time)) FROM policy_decisions") >= 150
    finally:
        service.shutdown()
    assert not list(service.pipeline.spool.directory.glob("dead-letter/*.seg"))
