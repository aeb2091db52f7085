"""Fuzzing the read-only SQL guard (issue 11, "read-only by construction"): text from a
grammar that mixes read-only statements with writes, hides second statements in comments,
quoted identifiers and string literals, and calls every table function and outside-reaching
function, run through the admin API's guarded path against a scratch chDB store. Each text is
refused with a message, or refused by the engine, or runs -- and whatever it did, it wrote
nothing (no table, database, function or dictionary made or changed, no row count
changed, no file created), read no file outside (a canary file's content never shows in the
result) and made no network connection (every url/remote/s3/... points at a local socket that
records connections). Bounded here; `python -m bench.fuzz` runs it 100,000+ times."""

from __future__ import annotations

import os

import pytest
from hypothesis import example, given

from schemas.migrations import migrate
from tests.builders.fuzz_sql import ENGINE_REFUSED, ESCAPED, SqlSandbox, queries
from tests.builders.fuzz_verdicts import ACCEPTED, REFUSED, fuzz_settings

# A failing example's report can be a large repr; hypothesis warns about its size while
# writing it, and that warning (an error here) would hide the failure it reports.
pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")]


@pytest.fixture(scope="module")
def sandbox(chdb_client, tmp_path_factory):
    name = f"fuzz_sql_{os.getpid()}"
    chdb_client.command(f"CREATE DATABASE IF NOT EXISTS {name}")
    migrate(chdb_client, name)
    chdb_client.command(f"INSERT INTO {name}.policy_decisions (event_id, event_time, policy_id, "
                        "outcome) VALUES ('a', now(), 'p', 'allow'), ('b', now(), 'p', 'deny')")
    previous = chdb_client.database
    chdb_client.database = name  # the guarded path opens its connection on this database
    box = SqlSandbox(chdb_client, name, tmp_path_factory.mktemp("fuzz-sql"))
    yield box
    box.close()
    chdb_client.database = previous


@fuzz_settings(max_examples=150)
@given(text=queries())
@example(text="SELECT 1 # '\n; CREATE TABLE @DB@.hidden (x UInt8) ENGINE=Memory; SELECT 2 # '")
@example(text="SELECT * FROM url('http://@HOST@/u', 'LineAsString') FORMAT Null")
@example(text="select length(FILE('@CANARY@'))")
def test_no_text_gets_past_the_guard_to_write_read_files_or_reach_the_network(sandbox, text):
    verdict = sandbox.verdict(text)
    assert verdict.kind in (ACCEPTED, REFUSED, ENGINE_REFUSED), verdict.detail


def test_read_only_statements_from_the_grammar_still_run(sandbox):
    assert sandbox.verdict("SELECT count() FROM policy_decisions").detail == "[(2,)]"
    assert sandbox.verdict("WITH t AS (SELECT 1 AS x) SELECT x FROM t").kind == ACCEPTED


# -- the oracle catches what it looks for (run without the guard) -------------------------------

@pytest.mark.parametrize("write,undo", [
    pytest.param("CREATE TABLE @DB@.fuzz_control (x UInt8) ENGINE = Memory",
                 "DROP TABLE IF EXISTS @DB@.fuzz_control", id="a table made"),
    pytest.param("INSERT INTO @DB@.policy_decisions (event_id, event_time, policy_id, outcome) "
                 "VALUES ('fuzz_control', now(), 'p', 'allow')",
                 "DELETE FROM @DB@.policy_decisions WHERE event_id = 'fuzz_control'",
                 id="a row stored"),
    pytest.param("CREATE FUNCTION fuzz_control AS x -> x", "DROP FUNCTION IF EXISTS fuzz_control",
                 id="a function made"),
])
def test_the_sandbox_sees_a_write_the_guard_did_not_stop(sandbox, chdb_client, write, undo):
    try:
        verdict = sandbox.verdict(write, lambda q: chdb_client.command(q))
        assert verdict.kind == ESCAPED and "wrote" in verdict.detail
        assert "fuzz_control" in verdict.detail or "policy_decisions" in verdict.detail
    finally:
        chdb_client.command(sandbox.fill(undo))
        sandbox.state = sandbox.snapshot()


def test_the_sandbox_sees_the_canary_in_a_result(sandbox, chdb_client):
    verdict = sandbox.verdict("SELECT * FROM file('@CANARY@', 'LineAsString')",
                              lambda q: chdb_client.query(q).result_rows)
    assert verdict.kind == ESCAPED and "read a file" in verdict.detail


def test_the_sandbox_sees_a_connection_to_its_listener(sandbox, chdb_client):
    verdict = sandbox.verdict("SELECT * FROM url('http://@HOST@/x', 'LineAsString')",
                              lambda q: chdb_client.query(q).result_rows)
    assert verdict.kind == ESCAPED and "reached the network" in verdict.detail


def test_the_sandbox_sees_the_canary_opened_even_when_no_content_shows(sandbox, chdb_client):
    if not sandbox.atime_works:
        pytest.fail("this filesystem keeps no access times; the canary's reads go unseen")
    verdict = sandbox.verdict("SELECT length(file('@CANARY@'))",
                              lambda q: chdb_client.query(q).result_rows)
    assert verdict.kind == ESCAPED and "canary was opened" in verdict.detail
