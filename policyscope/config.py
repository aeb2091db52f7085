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
from typing import Any

from pydantic import Field

from collector.config import CollectorConfig
from core.config import CONFIG_ENV, ENV_PREFIX, ConfigError, Section, StorageConfig, load, redacted
from dashboards.config import DashboardConfig
from metrics.config import BatchConfig
from slo.config import AlertingConfig

__all__ = ["CONFIG_ENV", "ENV_PREFIX", "Config", "ConfigError", "DemoConfig", "load_config",
           "redacted"]


class DemoConfig(Section):
    demo_rate: float = Field(50.0, gt=0, description="demo decisions per second")
    demo_protocol: str = Field("grpc", pattern="^(grpc|http)$",
                               description="OTLP protocol the demo sends with: grpc or http")


class Config(Section):
    storage: StorageConfig = Field(default_factory=StorageConfig)
    collector: CollectorConfig = Field(default_factory=CollectorConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    demo: DemoConfig = Field(default_factory=DemoConfig)


def load_config(path: str | Path | None = None, *, env: dict[str, str] | None = None,
                overrides: dict[str, Any] | None = None) -> Config:
    """The effective config (see `core.config.load`); raises ConfigError naming the key."""
    return load(Config, path, env=env, overrides=overrides,
                list_settings=("redact_attributes", "redact_values", "auth_tokens"))
