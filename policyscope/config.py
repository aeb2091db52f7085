"""The root configuration: every component's section, loaded once by the app shell.

    config = load_config("policyscope.yaml")     # file < POLICYSCOPE_* env < flags
    config.collector.http_port, config.alerting.notifiers[0].name

Each section's model lives with its component (`core.config.StorageConfig`,
`collector.config`, `metrics.config`, `slo.config`, `dashboards.config`); the demo's is
here, the demo being part of the app shell. Components take the root config and read their
own sections from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from catalog.config import CatalogConfig
from collector.config import CollectorConfig
from core.config import CONFIG_ENV, ENV_PREFIX, ConfigError, Section, StorageConfig, load, redacted
from core.units import parse_duration
from dashboards.config import DashboardConfig
from importers.config import ImportConfig
from metrics.config import BatchConfig
from slo.config import AlertingConfig

__all__ = ["CONFIG_ENV", "ENV_PREFIX", "Config", "ConfigError", "DemoConfig", "load_config",
           "redacted"]


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]  # 0 allowed


class DemoConfig(Section):
    demo_rate: float = Field(50.0, gt=0, description="demo decisions per second")
    demo_protocol: str = Field("grpc", pattern="^(grpc|http)$",
                               description="OTLP protocol the demo sends with: grpc or http")
    demo_history: bool = Field(True, description=(
        "`up --demo` on a store without decisions first generates demo_history_days of "
        "history and backfills the SLIs over them (`--no-history`: off)"))
    demo_history_days: int = Field(30, ge=1, le=90, description="days of demo history")
    demo_incident: bool = Field(True, description=(
        "`up --demo` scripts an incident: a policy rollout that denies a legitimate "
        "workload (policyscope/demo/incident.py)"))
    demo_incident_delay: Duration = Field(180.0, description=(
        "how long after the demo traffic starts the incident's rollout happens"))
    demo_incident_duration: Duration = Field(1800.0, description=(
        "how long until the rollout is rolled back; 0 keeps it"))


class Config(Section):
    storage: StorageConfig = Field(default_factory=StorageConfig)
    collector: CollectorConfig = Field(default_factory=CollectorConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
    demo: DemoConfig = Field(default_factory=DemoConfig)
    imports: ImportConfig = Field(default_factory=ImportConfig)


def load_config(path: str | Path | None = None, *, env: dict[str, str] | None = None,
                overrides: dict[str, Any] | None = None) -> Config:
    """The effective config (see `core.config.load`); raises ConfigError naming the key."""
    return load(Config, path, env=env, overrides=overrides,
                list_settings=("redact_attributes", "redact_values", "auth_tokens"))
