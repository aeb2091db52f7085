"""The dashboards get the effective config in memory: `serve` writes no file (the DSN carries
the ClickHouse password), and the app script reads what `serve` handed over."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from dashboards import config as dashboard_config
from dashboards import serve as serve_module
from policyscope.config import load_config

pytestmark = pytest.mark.unit

PASSWORD = "s3cret-pw-for-the-test"


def _files_holding(root: Path, text: str) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and text in path.read_text(errors="ignore"):
                found.append(path)
        except OSError:
            continue
    return found


def test_serve_hands_the_config_over_in_memory_and_writes_no_file(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where a temp file would go
    runs = []
    import streamlit.web.bootstrap as bootstrap

    monkeypatch.setattr(bootstrap, "run", lambda *a, **k: runs.append(a))
    monkeypatch.setattr(bootstrap, "load_config_options", lambda **k: None)
    monkeypatch.setattr(dashboard_config, "_current", None)
    config = load_config(env={"POLICYSCOPE_DSN": f"http://u:{PASSWORD}@ch:8123/db"})

    serve_module.serve(config)

    assert runs and runs[0][0] == str(serve_module.APP)
    assert dashboard_config.current() is config
    assert _files_holding(tmp_path, PASSWORD) == []
    assert "POLICYSCOPE_CONFIG" not in os.environ or PASSWORD not in os.environ.get(
        "POLICYSCOPE_CONFIG", "")


def test_without_a_handed_config_the_app_reads_its_own_sections(monkeypatch, tmp_path):
    path = tmp_path / "policyscope.yaml"
    path.write_text("storage:\n  database: other\ncollector:\n  http_port: 1\n"
                    "alerting:\n  slo_dir: ./x\n")
    monkeypatch.setattr(dashboard_config, "_current", None)
    for key in [k for k in os.environ if k.startswith("POLICYSCOPE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("POLICYSCOPE_CONFIG", str(path))
    monkeypatch.setenv("POLICYSCOPE_HTTP_PORT", "9")  # another component's: left to it

    config = dashboard_config.current()

    assert config.storage.database == "other"
    assert config.dashboard.dashboard_port == 8501
