"""Every verb of `policyscope` explains itself: `--help` exits 0 with a usage line, run
in-process on the root app (nothing is started, nothing heavy is needed)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from policyscope.cli import app

pytestmark = pytest.mark.unit

VERBS = ["collector", "up", "demo", "migrate", "sql", "dashboard", "batch", "sli show", "worker",
         "slo validate", "slo plan", "slo status", "alerts evaluate", "alerts replay",
         "alerts silence add", "alerts silence list", "alerts silence expire",
         "deadletters list", "deadletters replay", "deadletters purge"]
GROUPS = ["sli", "slo", "alerts", "alerts silence", "deadletters"]


@pytest.mark.parametrize("verb", VERBS + GROUPS)
def test_every_verb_and_group_explains_itself(verb):
    result = CliRunner().invoke(app, [*verb.split(), "--help"], prog_name="policyscope")
    assert result.exit_code == 0, result.output
    assert f"Usage: policyscope {verb} " in result.output


def test_the_root_help_lists_every_top_level_verb_in_order():
    result = CliRunner().invoke(app, ["--help"], prog_name="policyscope")
    assert result.exit_code == 0
    commands = result.output.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in commands if line.strip()] == [
        "collector", "up", "demo", "migrate", "sql", "dashboard", "batch", "worker",
        "sli", "slo", "alerts", "deadletters"]


@pytest.mark.parametrize("verb", ["collector", "up", "migrate", "sql", "dashboard", "batch",
                                  "sli show", "worker", "slo status", "alerts evaluate",
                                  "alerts replay", "alerts silence add", "alerts silence list",
                                  "alerts silence expire", "deadletters replay"])
def test_every_verb_on_storage_takes_the_shared_options(verb):
    result = CliRunner().invoke(app, [*verb.split(), "--help"], prog_name="policyscope")
    assert "--config" in result.output and "--dsn" in result.output


@pytest.mark.parametrize("verb,fragments", [
    pytest.param("deadletters list", ["server's reason", "works while a collector runs"],
                 id="list says what it shows and that it needs no store"),
    pytest.param("deadletters replay", ["exactly-once", "stop the running collector",
                                        "server DSN it runs alongside"],
                 id="replay says it stores once and what a running collector means"),
    pytest.param("deadletters purge", ["--older-than", "--yes", "stdin is not a terminal"],
                 id="purge says it asks, and when it refuses"),
])
def test_the_dead_letter_verbs_explain_what_they_do(verb, fragments):
    result = CliRunner().invoke(app, [*verb.split(), "--help"], prog_name="policyscope")
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    for fragment in fragments:
        assert fragment in text
