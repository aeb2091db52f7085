"""Every verb of `policyscope` explains itself: `--help` exits 0 with a usage line, run
in-process on the root app (nothing is started, nothing heavy is needed)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from policyscope.cli import app

pytestmark = pytest.mark.unit

VERBS = ["collector", "up", "demo", "migrate", "sql", "dashboard", "batch", "sli show", "worker",
         "slo validate", "slo plan", "slo status", "alerts evaluate", "alerts replay",
         "alerts silence add", "alerts silence list", "alerts silence expire"]
GROUPS = ["sli", "slo", "alerts", "alerts silence"]


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
        "sli", "slo", "alerts"]


@pytest.mark.parametrize("verb", ["collector", "up", "migrate", "sql", "dashboard", "batch",
                                  "sli show", "worker", "slo status", "alerts evaluate",
                                  "alerts replay", "alerts silence add", "alerts silence list",
                                  "alerts silence expire"])
def test_every_verb_on_storage_takes_the_shared_options(verb):
    result = CliRunner().invoke(app, [*verb.split(), "--help"], prog_name="policyscope")
    assert "--config" in result.output and "--dsn" in result.output
