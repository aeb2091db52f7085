"""examples/kubernetes/: every manifest parses, and every `policyscope import` command in the
CronJob names a real KIND and flags the command really has."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.main import get_command

from importers.registry import IMPORTERS
from policyscope.cli import app

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "kubernetes"


def import_flags() -> set[str]:
    command = get_command(app).commands["import"]
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def import_commands(text: str) -> list[list[str]]:
    joined = text.replace("\\\n", " ")
    return [shlex.split(line.split("|")[-1])[1:] for line in joined.splitlines()
            if re.search(r"\|\s*policyscope import ", line)]


def test_every_example_manifest_is_valid_yaml_with_kind_and_api_version():
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert files
    for path in files:
        for document in yaml.safe_load_all(path.read_text()):
            assert document["apiVersion"] and document["kind"], path


def test_the_cronjob_imports_real_kinds_with_real_flags():
    documents = list(yaml.safe_load_all((EXAMPLES / "import-cronjob.yaml").read_text()))
    cronjob = next(d for d in documents if d["kind"] == "CronJob")
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    commands = import_commands("\n".join(container["args"]))
    assert [c[1] for c in commands] == ["policyreport", "gatekeeper"]
    flags = import_flags()
    for command in commands:
        assert command[0] == "import" and command[1] in IMPORTERS and command[2] == "-"
        used = {arg.split("=")[0] for arg in command if arg.startswith("--")}
        assert used <= flags, used - flags
    env = {e["name"] for e in container["env"]}
    assert {"POLICYSCOPE_IMPORT_ENDPOINT", "POLICYSCOPE_IMPORT_TOKEN", "POLICYSCOPE_DSN"} <= env


def test_the_environment_names_are_settings_policyscope_knows():
    from core.config import ENV_PREFIX, settings_index
    from policyscope.config import Config

    documents = list(yaml.safe_load_all((EXAMPLES / "import-cronjob.yaml").read_text()))
    cronjob = next(d for d in documents if d["kind"] == "CronJob")
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    known = settings_index(Config)
    for variable in container["env"]:
        assert variable["name"].startswith(ENV_PREFIX)
        assert variable["name"][len(ENV_PREFIX):].lower() in known, variable["name"]
