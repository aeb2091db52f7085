"""Run the Streamlit server for `dashboards/app.py` in this process's main thread.

The effective config reaches the app script in memory (`dashboards.config.use`): Streamlit
runs the script in this process, so flags given to `policyscope up` / `policyscope dashboard`
apply to the dashboards too, and no file holds the DSN's password.
"""

from __future__ import annotations

from pathlib import Path

from dashboards import config as dashboard_config
from dashboards.config import DashboardSettings

APP = Path(__file__).with_name("app.py")


def serve(config: DashboardSettings) -> None:
    from streamlit.web import bootstrap

    dashboard_config.use(config)
    flags = {"server.port": config.dashboard.dashboard_port,
             "server.address": config.dashboard.dashboard_host,
             "server.headless": True, "browser.gatherUsageStats": False}
    bootstrap.load_config_options(flag_options=flags)
    bootstrap.run(str(APP), False, [], flags)
