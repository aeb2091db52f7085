"""Every verb of `policyscope` explains itself: `--help` exits 0 with a usage line, run
in-process on the root app (nothing is started, nothing heavy is needed)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from policyscope.cli import app

pytestmark = pytest.mark.unit

VERBS = ["collector", "up", "demo", "migrate", "sql", "dashboard", "batch", "sli show", "worker",
         "import", "slo validate", "slo plan", "slo status", "alerts evaluate", "alerts replay",
         "alerts silence add", "alerts silence list", "alerts silence expire",
         "deadletters list", "deadletters replay", "deadletters purge",
         "users add", "users list", "users remove", "users set-role", "users set-password",
         "catalog validate", "catalog load", "catalog show", "catalog versions",
         "catalog missing"]
GROUPS = ["sli", "slo", "alerts", "alerts silence", "deadletters", "users"]


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
        "import", "sli", "slo", "alerts", "deadletters", "users", "catalog"]


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
    _explains(verb, fragments)


@pytest.mark.parametrize("verb,fragments", [
    pytest.param("users", ["dashboard_users_file", "never from a flag", "argon2id", "0600",
                           "viewer (executive, SLOs, live)", "may label and silence"],
                 id="the users group says where users live, how passwords are kept, the roles"),
    pytest.param("users add", ["asks for the password twice", "--password-stdin", "--oidc",
                               "set-role"],
                 id="add says where the password comes from and what it refuses"),
    pytest.param("users list", ["never a hash"], id="list says it shows no hash"),
    pytest.param("dashboard", ["beyond loopback", "refuses to start", "--users-file"],
                 id="dashboard says when it refuses to start"),
])
def test_the_user_verbs_explain_what_they_do(verb, fragments):
    _explains(verb, fragments)


def _explains(verb, fragments):
    result = CliRunner().invoke(app, [*verb.split(), "--help"], prog_name="policyscope")
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    for fragment in fragments:
        assert fragment in text


def test_import_help_names_every_kind_the_registry_holds():
    from importers.registry import IMPORTERS

    result = CliRunner().invoke(app, ["import", "--help"], prog_name="policyscope",
                                terminal_width=400)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert [k for k in IMPORTERS if k not in text] == []
