"""Typed, strict configuration: defaults < file < environment < flags.

The config file is YAML with one section per component (`storage`, `collector`, `dashboard`,
`demo`). Every setting has a name that is unique across sections, so it can also be given as the
environment variable `POLICYSCOPE_<NAME>` and the flag `--<name-with-dashes>` (where the verb
has one). The environment is read here and nowhere else. Unknown keys, in the file or among
`POLICYSCOPE_*` variables, are errors that name the key.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from schemas.events import DEFAULT_REDACT_PATTERNS

ENV_PREFIX = "POLICYSCOPE_"
CONFIG_ENV = "POLICYSCOPE_CONFIG"  # path of the config file; not a setting itself


class ConfigError(ValueError):
    """The configuration (file, environment or flags) is invalid; the message names the key."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3,
               "kb": 1000, "mb": 1000**2, "gb": 1000**3, None: 1}


def parse_duration(value: Any) -> float:
    """'500ms', '5s', '5m', '1h', '30d' or a number of seconds -> seconds (float)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"duration {value!r} is not like 500ms, 5s, 5m, 1h or 30d")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2)]


def parse_size(value: Any) -> int:
    """'64MiB', '1GiB', '512KB' or a number of bytes -> bytes (int)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"size {value!r} is not like 64MiB, 1GiB or a number of bytes")
    unit = m.group(2).lower() if m.group(2) else None
    return int(m.group(1)) * _SIZE_UNITS[unit]


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Bytes = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]
Port = Annotated[int, Field(ge=0, le=65535)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StorageConfig(_Section):
    dsn: str = Field("chdb:///./data/clickhouse", description=(
        "where events are stored: chdb:///path (embedded ClickHouse, the default) or "
        "http(s)://user:password@host:8123/database (a ClickHouse server)"))
    database: str = Field("policyscope", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                          description="database name (for http DSNs, a path in the DSN wins)")
    retention_days: int = Field(395, ge=1, description="days raw events are kept (table TTL)")


class CollectorConfig(_Section):
    http_host: str = Field("127.0.0.1", description="OTLP/HTTP listen address (0.0.0.0 for all)")
    http_port: Port = Field(4318, description="OTLP/HTTP port (0 picks a free one)")
    grpc_host: str = Field("127.0.0.1", description="OTLP/gRPC listen address")
    grpc_port: Port = Field(4317, description="OTLP/gRPC port (0 picks a free one)")
    max_request_size: Bytes = Field(64 * 1024**2, description=(
        "largest accepted request, checked after decompression (413 / RESOURCE_EXHAUSTED)"))
    spool_dir: Path = Field(Path("./data/spool"), description=(
        "durable spool: requests are fsync'd here before they are acknowledged"))
    spool_max_size: Bytes = Field(1024**3, description=(
        "spool backlog above which new requests get 503 / UNAVAILABLE (storage too slow/down)"))
    normalize_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=0,
                                   description=(
        "processes that decode and normalize requests (default: one per core; 0 = inline)"))
    batch_max_rows: int = Field(100_000, ge=1, description="rows per ClickHouse insert, at most")
    batch_max_delay: Seconds = Field(1.0, description="longest a row waits in the spool")
    retry_after: Seconds = Field(5.0, description="retry delay told to clients on 503/UNAVAILABLE")
    max_extra_attributes: int = Field(32, ge=0, description=(
        "unmapped record attributes kept per event, in the `attributes` map"))
    redact_attributes: list[str] = Field(default_factory=lambda: list(DEFAULT_REDACT_PATTERNS),
                                         description=(
        "regexes; unmapped attributes whose key matches are stored as [REDACTED]"))


class DashboardConfig(_Section):
    dashboard_host: str = Field("127.0.0.1", description="dashboard listen address")
    dashboard_port: Port = Field(8501, description="dashboard port")


def _latency_threshold(value: Any) -> float:
    from metrics.latency import check_threshold

    return check_threshold(float(value))


class BatchConfig(_Section):
    batch_interval: Seconds = Field(60.0, description="how often `up` / `worker` run the SLI batch")
    latency_threshold: Annotated[float, BeforeValidator(_latency_threshold)] = Field(
        0.1, description="seconds; L_under counts decisions at or under it (a histogram bound: "
                         "1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 x a power of ten)")


class AlertingConfig(_Section):
    slo_dir: Path = Field(Path("./slo"), description=(
        "directory of SLO files (OpenSLO v1 YAML); silences in its silences/ subfolder"))
    dashboard_url: str = Field("http://127.0.0.1:8501", description=(
        "base URL alert notifications link to"))
    notifiers: list[dict[str, Any]] = Field(default_factory=list, description=(
        "notifier definitions (webhook, slack, pagerduty, alertmanager); secrets as env:NAME "
        "or file:/path references"))
    routes: list[dict[str, Any]] = Field(default_factory=list, description=(
        "first matching route's notifiers get the alert: [{match: {severity: page}, "
        "notifiers: [pagerduty]}]"))


class DemoConfig(_Section):
    demo_rate: float = Field(50.0, gt=0, description="demo decisions per second")
    demo_protocol: str = Field("grpc", pattern="^(grpc|http)$",
                               description="OTLP protocol the demo sends with: grpc or http")


class Config(_Section):
    storage: StorageConfig = Field(default_factory=StorageConfig)
    collector: CollectorConfig = Field(default_factory=CollectorConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    demo: DemoConfig = Field(default_factory=DemoConfig)


def settings_index() -> dict[str, tuple[str, Any]]:
    """Flat setting name -> (section, field info), for env vars, flags and docs."""
    index: dict[str, tuple[str, Any]] = {}
    for section, info in Config.model_fields.items():
        for name, field in info.annotation.model_fields.items():
            if name in index:
                raise AssertionError(f"setting name {name!r} is not unique across sections")
            index[name] = (section, field)
    return index


def _format_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key '{path}'")
        else:
            lines.append(f"{source}: '{path}': {e['msg']} (got {e.get('input')!r})")
    return "; ".join(lines)


def load_config(path: str | Path | None = None, *, env: dict[str, str] | None = None,
                overrides: dict[str, Any] | None = None) -> Config:
    """Build the effective config. `overrides` are flat setting names from CLI flags (None = unset).

    Raises ConfigError naming the offending key and source.
    """
    env = dict(os.environ) if env is None else env
    path = path or env.get(CONFIG_ENV)
    data: dict[str, Any] = {}
    source = "defaults"
    if path:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must be a mapping of sections, "
                              f"got {type(loaded).__name__}")
        data = loaded or {}
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source)) from exc

    index = settings_index()
    layered: list[tuple[str, dict[str, Any]]] = []
    env_values = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key == CONFIG_ENV:
            continue
        name = key[len(ENV_PREFIX):].lower()
        if name not in index:
            raise ConfigError(f"environment: unknown variable {key}; known: "
                              + ", ".join(ENV_PREFIX + n.upper() for n in sorted(index)))
        env_values[name] = value
    layered.append(("environment", env_values))
    layered.append(("flags", {k: v for k, v in (overrides or {}).items() if v is not None}))
    for layer_source, values in layered:
        for name, value in values.items():
            if name not in index:
                raise ConfigError(f"{layer_source}: unknown setting {name!r}")
            section, _ = index[name]
            if name == "redact_attributes" and isinstance(value, str):
                value = [p for p in value.split(",") if p]
            try:
                setattr(getattr(config, section), name, value)
            except ValidationError as exc:
                label = ENV_PREFIX + name.upper() if layer_source == "environment" else name
                raise ConfigError(_format_error(exc, f"{layer_source} {label}")) from exc
    for pattern in config.collector.redact_attributes:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"collector.redact_attributes: {pattern!r} is not a regex: {exc}")
    return config


def redacted(config: Config) -> dict[str, Any]:
    """The config as a dict with the DSN password hidden, for start-up logs."""
    data = config.model_dump(mode="json")
    data["storage"]["dsn"] = re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", data["storage"]["dsn"])
    return data
