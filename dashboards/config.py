"""The dashboards' config section (`dashboard:` in the config file)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import Field, field_validator

from core.config import Section, StorageConfig, load
from core.units import Port
from dashboards.roles import check_role


class DashboardConfig(Section):
    """The listener and the login (`dashboards.auth`; README "Dashboard login and roles").
    Nothing configured: no login, on loopback only (`serve` refuses any other address)."""

    dashboard_host: str = Field("127.0.0.1", description="dashboard listen address")
    dashboard_port: Port = Field(8501, description="dashboard port")
    dashboard_users_file: Path | None = Field(None, description=(
        "the local users file (name -> role and argon2 password hash; YAML, or JSON by a "
        ".json name) that `policyscope users add` writes; set = users log in with a name "
        "and password"))
    dashboard_oidc: bool = Field(False, description=(
        "users log in by OpenID Connect through Streamlit's st.login; the provider's "
        "settings (client id and secret, server_metadata_url, redirect_uri, cookie_secret) "
        "are in .streamlit/secrets.toml [auth], not here"))
    dashboard_oidc_provider: str | None = Field(None, pattern=r"^[A-Za-z0-9-]+$", description=(
        "the provider's section [auth.<name>] in secrets.toml [default: [auth] itself]"))
    dashboard_oidc_role: str | None = Field("viewer", description=(
        "role of an OIDC identity the users file does not list (by email); null = such "
        "identities are refused"))
    dashboard_allow_unauthenticated: bool = Field(False, description=(
        "serve beyond loopback with no login, everyone an admin (only behind a proxy that "
        "authenticates)"))

    @field_validator("dashboard_oidc_role", mode="before")
    @classmethod
    def _known_role(cls, role: object) -> object:
        if role in (None, ""):  # "" from the environment: none
            return None
        return check_role(role) if isinstance(role, str) else role


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
