"""Running the dashboard app under Streamlit's AppTest against a test's chDB database: the
config file pointing at it (POLICYSCOPE_CONFIG), opening one page (with URL parameters), and
reading back what a page rendered (metrics by label, the table after a subheader)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
import yaml
from streamlit.testing.v1 import AppTest

from policyscope.config import CONFIG_ENV, ENV_PREFIX
from tests.builders import rows

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
TIMEOUT = 120  # seconds per script run; the first chDB query of a process is slow


def write_config(path: Path, chdb_path: Path, database: str, slo_dir: Path | None = None
                 ) -> Path:
    config = {"storage": {"dsn": f"chdb://{chdb_path}", "database": database}}
    if slo_dir is not None:
        config["alerting"] = {"slo_dir": str(slo_dir)}
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def slo_dir(tmp_path) -> Path:
    """An empty SLO directory the dashboard config names (tests write SLO files into it)."""
    directory = tmp_path / "slo"
    directory.mkdir()
    return directory


@pytest.fixture
def dashboard_db(chdb_path, database, tmp_path, slo_dir, monkeypatch):
    """Point the dashboard at this test's database through a POLICYSCOPE_CONFIG file."""
    config_file = write_config(tmp_path / "policyscope.yaml", chdb_path, database, slo_dir)
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    monkeypatch.setenv(CONFIG_ENV, str(config_file))
    st.cache_resource.clear()  # the loaders cache a client, which points at one database
    st.cache_data.clear()
    yield database
    st.cache_resource.clear()
    st.cache_data.clear()


def open_page(page: str | None, params: dict[str, str] | None = None) -> AppTest:
    """Run the app at `page` (a module under dashboards/pages/, e.g. 'live.py'; None: the
    first page the navigation lists) with URL parameters `params`; no exception allowed."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(params or {})
    if page is not None:
        at.switch_page(f"pages/{page}")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def deltas(at: AppTest) -> dict[str, str]:
    return {m.label: m.delta for m in at.metric}


def dataframe_after(at: AppTest, subheader: str) -> pd.DataFrame:
    """The st.dataframe rendered right after the subheader with this text (every subheader
    of a page is followed by exactly one table or by an info box, which has none)."""
    ordered = _walk(at)
    for i, (kind, value) in enumerate(ordered):
        if kind == "subheader" and value == subheader:
            for later_kind, later in ordered[i + 1:]:
                if later_kind == "subheader":
                    break
                if later_kind == "dataframe":
                    return later
            raise AssertionError(f"no table after subheader {subheader!r}")
    raise AssertionError(f"no subheader {subheader!r}; have "
                         f"{[v for k, v in ordered if k == 'subheader']}")


def _walk(at: AppTest) -> list[tuple[str, object]]:
    """(kind, value) of every subheader and dataframe in the main area, in page order."""
    out: list[tuple[str, object]] = []

    def visit(node) -> None:
        kind = getattr(node, "type", "")
        if kind == "subheader":
            out.append(("subheader", node.value))
        elif kind == "dataframe":
            out.append(("dataframe", node.value))
        for child in getattr(node, "children", {}).values():
            visit(child)

    visit(at.main)
    return out


def texts(at: AppTest) -> list[str]:
    """Every info, warning, error, caption and markdown text on the page."""
    return [e.value for kind in ("info", "warning", "error", "caption", "markdown")
            for e in getattr(at, kind)]


def figures(at: AppTest) -> list[dict]:
    """The Plotly figures the page drew, in page order, as dicts (typed arrays decoded)."""
    import json

    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def values(data) -> list:
    """A trace's x or y: a list, or Plotly's typed array ({'dtype', 'bdata'}) decoded."""
    import base64

    import numpy as np

    if isinstance(data, dict) and "bdata" in data:
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
    return list(data)


def traces(figure: dict) -> dict[str, dict]:
    """trace name -> {x: y} of a figure."""
    return {t.get("name", ""): dict(zip(values(t["x"]), values(t["y"])))
            for t in figure["data"]}


# -- rows with the columns the dashboards show beyond the SLI builders' templates -------------

_MORE = {"policy_version": "", "enforcement": "enforce", "resource_id": "", "actor": "",
         "trace_id": "", "span_id": "", "attributes": {}}
DECISION = {**rows.DECISION, **_MORE}
EVENT = {**rows.EVENT, **_MORE, "vulnerability_id": "", "package_name": "",
         "package_version": "", "package_fixed_version": "", "sbom_format": "",
         "sbom_components": None, "secret_rule": "", "repository": "", "file_path": "",
         "drift_field": ""}


def insert_decisions(client, decisions: list[dict]) -> None:
    client.insert("policy_decisions", rows._rows(DECISION, decisions),
                  column_names=list(DECISION))


def insert_events(client, events: list[dict]) -> None:
    client.insert("policy_events", rows._rows(EVENT, events), column_names=list(EVENT))


# -- a page run as a logged-in user ------------------------------------------------------------

def users_file_login(page_file: str, tmp_path: Path, monkeypatch):
    """`run(name, role="")`: the page at `page_file` run by itself (not through app.py) as
    `name`, a user of a users file (cheap argon2 parameters) with `role`, written into the
    dashboards' config; `run(None)`: nobody logged in."""
    from argon2 import PasswordHasher

    from dashboards import auth
    from dashboards.users import UsersFile

    path = tmp_path / "users.yaml"
    users = UsersFile(path, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    monkeypatch.setitem(auth._files, path, users)
    config = Path(os.environ[CONFIG_ENV])
    settings = yaml.safe_load(config.read_text())
    settings["dashboard"] = {"dashboard_users_file": str(path)}
    config.write_text(yaml.safe_dump(settings))

    def run(name: str | None, role: str = "") -> AppTest:
        at = AppTest.from_file(page_file, default_timeout=TIMEOUT)
        if name is not None:
            users.add(name, role, "a-password-for-the-test")
            at.session_state[auth.SESSION_USER] = name
        return rerun(at)
    return run
