"""The dashboards' config section (`dashboard:` in the config file)."""

from __future__ import annotations

from typing import Protocol

from pydantic import Field

from core.config import Section, StorageConfig, load
from core.units import Port


class DashboardConfig(Section):
    dashboard_host: str = Field("127.0.0.1", description="dashboard listen address")
    dashboard_port: Port = Field(8501, description="dashboard port")


class DashboardSettings(Protocol):
    """What the dashboards read of the root config (`policyscope.config.Config` is one)."""

    storage: StorageConfig
    dashboard: DashboardConfig


class _OwnSections(Section):
    storage: StorageConfig = Field(default_factory=StorageConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)


_current: DashboardSettings | None = None


def use(config: DashboardSettings) -> None:
    """Hand the effective config to the app script, which Streamlit runs in this process
    (`serve`): no file, so the DSN's password is never written anywhere."""
    global _current
    _current = config


def current() -> DashboardSettings:
    """The config `use` handed over, else the dashboards' own sections read from the
    config file (POLICYSCOPE_CONFIG) and environment, as when Streamlit runs the app
    script itself."""
    return _current if _current is not None else load(_OwnSections, partial=True)
