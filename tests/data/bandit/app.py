"""Known findings for tests/integration/test_import_sarif.py (bandit must flag them). Never run."""

import subprocess

import yaml


def run(command: str) -> int:
    return subprocess.call(command, shell=True)


def load(text: str):
    return yaml.load(text)
