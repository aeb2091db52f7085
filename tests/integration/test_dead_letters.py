"""Dead letters (issue 11, item 3): rows the real engine refuses for themselves are parked with
the server's reason, listed, replayed exactly once through the writer's insert path, kept
parked while still refused, and purged only when the operator says so.

The refusal is real: a CHECK constraint on the test database's `policy_decisions` makes
ClickHouse refuse the decisions of one policy (VIOLATED_CONSTRAINT) and take the rest;
dropping the constraint makes the parked rows acceptable."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from collector.deadletters import UNRECORDED, DeadLetterFolder, folder_of, older_than, replay
from collector.service import CollectorService
from policyscope.cli import app
from tests.builders.otlp import decision, logs_request, post, wait_rows
from tests.builders.processes import free_port, start_collector

pytestmark = pytest.mark.integration

POISON = "k8s.poison"
COUNT = "SELECT count() FROM policy_decisions"


def refuse_poison(client) -> None:
    client.command(f"ALTER TABLE policy_decisions ADD CONSTRAINT no_poison "
                   f"CHECK policy_id != '{POISON}'")


def accept_poison(client) -> None:
    client.command("ALTER TABLE policy_decisions DROP CONSTRAINT no_poison")


@pytest.fixture
def parked(chdb_client, database, config_factory):
    """Five acknowledged decisions, two of a policy storage refuses: three stored, two parked.
    Yields the dead-letter folder; the collector has stopped."""
    refuse_poison(chdb_client)
    config = config_factory(batch_max_delay="50ms")
    service = CollectorService(config, client=chdb_client, database=database)
    service.start()
    try:
        records = [decision(f"ok-{i}") for i in range(3)] + \
                  [decision(f"bad-{i}", policy=POISON) for i in range(2)]
        assert post(service.http_port, "/v1/logs",
                    logs_request(*records).SerializeToString())[0] == 200
        assert wait_rows(service, COUNT, 3) == 3
        writer = service.pipeline.writer
        deadline = time.monotonic() + 60  # 5 refusals with backoff, then the bisection
        while not writer.dead_letter_rows and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.dead_letter_rows == 2
        assert writer.dead_letter_reasons == {"VIOLATED_CONSTRAINT": 2}
    finally:
        service.shutdown()
    return DeadLetterFolder(folder_of(config.collector.spool_dir))


@pytest.fixture
def cli(chdb_path, database, parked):
    """`policyscope deadletters ...` in this process, on the test's store, database and spool."""
    def run(*args: str, stdin: str | None = None):
        env = {"POLICYSCOPE_DSN": f"chdb://{chdb_path}", "POLICYSCOPE_DATABASE": database,
               "POLICYSCOPE_SPOOL_DIR": str(parked.path.parent)}
        return CliRunner().invoke(app, ["deadletters", *args], env=env, input=stdin,
                                  prog_name="policyscope")
    return run


def test_refused_rows_are_parked_with_the_servers_reason_and_listed(parked, cli):
    (letter,) = parked.entries()
    assert letter.tables == {"policy_decisions": 2}
    assert letter.reasons == {"VIOLATED_CONSTRAINT": 2}
    assert "no_poison" in letter.messages["VIOLATED_CONSTRAINT"]
    assert letter.size == letter.path.stat().st_size and not letter.damaged
    policies = [p for _, rows in parked.frames(letter)
                for p in rows.column("policy_id").to_pylist()]
    assert policies == [POISON, POISON]  # only the refused rows; the other three are stored
    listed = cli("list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert (row["rows"], row["tables"], row["reasons"]) == (
        2, {"policy_decisions": 2}, {"VIOLATED_CONSTRAINT": 2})
    table = cli("list")
    assert letter.name in table.output and "VIOLATED_CONSTRAINT" in table.output


def test_rows_still_refused_stay_parked_with_the_reason(parked, chdb_client, database,
                                                         cli):
    outcomes = replay(chdb_client, database, parked)
    assert [(o.stored, o.already_stored, o.still_refused) for o in outcomes] == [(0, 0, 2)]
    assert outcomes[0].reasons == {"VIOLATED_CONSTRAINT": 2}
    assert "no_poison" in outcomes[0].messages["VIOLATED_CONSTRAINT"]
    (letter,) = parked.entries()
    assert letter.rows == 2 and letter.replays == 1
    assert letter.parked_at == outcomes[0].letter.parked_at  # purge --older-than still holds
    assert chdb_client.command(COUNT) == 3
    via_cli = cli("replay")
    assert via_cli.exit_code == 1
    assert "still refused" in via_cli.output and "no_poison" in via_cli.output


def test_replay_stores_rows_made_acceptable_and_replaying_again_adds_nothing(
        parked, chdb_client, database, cli, tmp_path):
    (letter,) = parked.entries()
    kept = tmp_path / "copy"
    kept.mkdir()
    for path in (letter.path, letter.path.with_suffix(".json")):
        shutil.copy(path, kept / path.name)
    accept_poison(chdb_client)
    result = cli("replay", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [(o["stored"], o["already_stored"], o["still_refused"])
            for o in json.loads(result.output)] == [(2, 0, 0)]
    assert parked.entries() == [] and chdb_client.command(COUNT) == 5
    # The same file again (a copy restored, as if replayed twice): nothing is added.
    for path in kept.iterdir():
        shutil.copy(path, parked.path / path.name)
    again = replay(chdb_client, database, parked)
    assert [(o.stored, o.already_stored, o.still_refused) for o in again] == [(0, 2, 0)]
    assert chdb_client.command(COUNT) == 5
    assert chdb_client.command("SELECT uniqExact(event_id) FROM policy_decisions") == 5
    assert parked.entries() == []


def test_purge_asks_and_refuses_without_yes_when_nobody_can_answer(parked, cli, monkeypatch):
    refused = cli("purge")  # CliRunner's stdin: no terminal
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert len(parked.entries()) == 1
    recent = cli("purge", "--older-than", "1h", "--yes")
    assert recent.exit_code == 0 and "nothing to purge" in recent.output
    monkeypatch.setattr("policyscope.cli.deadletters._interactive", lambda: True)
    declined = cli("purge", stdin="n\n")
    assert declined.exit_code == 0 and "nothing purged" in declined.output
    assert len(parked.entries()) == 1
    confirmed = cli("purge", stdin="y\n")
    assert confirmed.exit_code == 0 and "purged 1 file (2 rows)" in confirmed.output
    assert parked.entries() == [] and not list(parked.path.iterdir())


def test_purge_with_yes_deletes_without_asking(parked, cli):
    result = cli("purge", "--yes")
    assert result.exit_code == 0 and "purged 1 file (2 rows)" in result.output
    assert parked.entries() == []


def test_older_than_counts_from_when_the_rows_were_first_parked(parked):
    (letter,) = parked.entries()
    assert older_than([letter], 3600, now=letter.parked_at + timedelta(minutes=59)) == []
    assert older_than([letter], 3600, now=letter.parked_at + timedelta(minutes=61)) == [letter]


def test_a_file_parked_before_reasons_were_recorded_lists_and_replays(parked, chdb_client,
                                                                      database):
    (letter,) = parked.entries()
    letter.path.with_suffix(".json").unlink()
    (old,) = parked.entries()
    assert old.reasons == {UNRECORDED: 2} and old.parked_at.year >= 2024
    accept_poison(chdb_client)
    assert [o.stored for o in replay(chdb_client, database, parked)] == [2]


def test_replay_while_a_collector_owns_the_embedded_store_says_what_to_do(tmp_path):
    folder = DeadLetterFolder(folder_of(tmp_path / "spool"))
    folder.path.mkdir(parents=True)
    (folder.path / "1.seg").write_bytes(b"")  # a file to replay, so the store is needed
    port = free_port()
    proc = start_collector(tmp_path, port, batch_delay="100ms")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYSCOPE_")}
        result = subprocess.run(
            [sys.executable, "-m", "policyscope.cli", "deadletters", "replay", "--dsn",
             f"chdb://{tmp_path / 'ch'}", "--spool-dir", str(tmp_path / "spool")],
            capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "in use by another process" in result.stderr
        assert "Stop it, then run `policyscope deadletters replay` again" in result.stderr
        assert (folder.path / "1.seg").exists()
        listed = subprocess.run(
            [sys.executable, "-m", "policyscope.cli", "deadletters", "list", "--spool-dir",
             str(tmp_path / "spool"), "--format", "json"],
            capture_output=True, text=True, timeout=120, env=env)
        assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
