"""Run the Streamlit server for `dashboards/app.py` in this process's main thread.

The effective config reaches the app script through a file named by POLICYSCOPE_CONFIG, so
flags given to `policyscope up` / `policyscope dashboard` apply to the dashboards too.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

from policyscope.config import CONFIG_ENV, ENV_PREFIX, Config

APP = Path(__file__).with_name("app.py")


def export_config(config: Config) -> Path:
    """Write the effective config where the app script will load it from."""
    handle = tempfile.NamedTemporaryFile("w", prefix="policyscope-", suffix=".yaml",
                                         delete=False)
    with handle:
        yaml.safe_dump(config.model_dump(mode="json"), handle)
    os.environ[CONFIG_ENV] = handle.name
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX) and k != CONFIG_ENV]:
        del os.environ[key]  # already folded into the exported file
    return Path(handle.name)


def serve(config: Config) -> None:
    from streamlit.web import bootstrap

    export_config(config)
    flags = {"server.port": config.dashboard.dashboard_port,
             "server.address": config.dashboard.dashboard_host,
             "server.headless": True, "browser.gatherUsageStats": False}
    bootstrap.load_config_options(flag_options=flags)
    bootstrap.run(str(APP), False, [], flags)
