"""Typed, strict configuration: defaults < file < environment < flags.

The config file is YAML with one section per component. Each component owns its section as a
typed model (`collector.config`, `metrics.config`, `slo.config`, `dashboards.config`, the
demo's in `policyscope.demo.config`); `storage`, which every layer needs, is here. The app
shell composes them into the root model (`policyscope.config.Config`) and loads it with
`load` below. Every setting has a name that is unique across sections, so it can also be given
as the environment variable `POLICYSCOPE_<NAME>` and the flag `--<name-with-dashes>` (where
the verb has one). The environment is read here and nowhere else. Unknown keys, in the file or
among `POLICYSCOPE_*` variables, are errors that name the key; so is a bad value anywhere in
the tree (notifiers and routes included), at start-up.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

ENV_PREFIX = "POLICYSCOPE_"
CONFIG_ENV = "POLICYSCOPE_CONFIG"  # path of the config file; not a setting itself


class ConfigError(ValueError):
    """The configuration (file, environment or flags) is invalid; the message names the key."""


class Section(BaseModel):
    """A config section: strict (unknown keys are errors), validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StorageConfig(Section):
    dsn: str = Field("chdb:///./data/clickhouse", description=(
        "where events are stored: chdb:///path (embedded ClickHouse, the default) or "
        "http(s)://user:password@host:8123/database (a ClickHouse server)"))
    database: str = Field("policyscope", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                          description="database name (for http DSNs, a path in the DSN wins)")
    retention_days: int = Field(395, ge=1, le=2190, description=(
        "days raw events are kept (table TTL; at most 6 years, so the TTL of the latest "
        "storable event time, 2099-12-31, stays within ClickHouse's DateTime)"))
    # The reader user (server DSNs only; chDB has no users): `migrate` creates it, read-only
    # paths (`policyscope sql`, the admin API) connect as it. Not configured = they use the
    # DSN's user, still behind the read-only guard and its per-query limits.
    reader_user: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description=(
        "ClickHouse user for read-only queries on a server [default: <database>_reader]"))
    reader_password: SecretStr | None = Field(None, description=(
        "its password (a secret: never echoed or logged); prefer the environment "
        "(POLICYSCOPE_READER_PASSWORD) or reader_password_file to writing it in the file"))
    reader_password_file: Path | None = Field(None, description=(
        "a file holding the reader's password (trailing whitespace ignored), e.g. a mounted "
        "secret; instead of reader_password"))


Root = TypeVar("Root", bound=BaseModel)


def settings_index(root: type[BaseModel]) -> dict[str, tuple[str, Any]]:
    """Flat setting name -> (section, field info) of a root model, for env vars, flags and
    docs."""
    index: dict[str, tuple[str, Any]] = {}
    for section, info in root.model_fields.items():
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
        elif _echoable(e):
            lines.append(f"{source}: '{path}': {e['msg']} (got {e.get('input')!r})")
        else:  # a mapping, or a value under a key that may hold a secret: never echoed
            lines.append(f"{source}: '{path}': {e['msg'].removeprefix('Value error, ')}")
    return "; ".join(lines)


# keys whose values may be credentials pasted in clear: errors under them never echo input
SECRET_KEYS = frozenset({"notifiers", "dsn", "secret", "routing_key", "url", "password",
                         "token", "tokens", "reader_password"})


def _echoable(error: dict) -> bool:
    return not isinstance(error.get("input"), (dict, list)) and not any(
        str(part) in SECRET_KEYS for part in error["loc"])


def load(root: type[Root], path: str | Path | None = None, *,
         env: dict[str, str] | None = None, overrides: dict[str, Any] | None = None,
         list_settings: tuple[str, ...] = (), partial: bool = False) -> Root:
    """Build the effective config of `root` (a model of sections). `overrides` are flat
    setting names from CLI flags (None = unset); `list_settings` are settings whose
    environment value is a list: comma-separated, or a YAML list (`["a{2,}", "b"]`) when
    items hold commas. With `partial`, `root` holds only some of
    the sections (a component reading its own from the file and environment of a process
    it did not start): the other sections and variables are left to their owners.

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
        if partial:
            data = {k: v for k, v in data.items() if k in root.model_fields}
    try:
        config = root.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source)) from exc

    index = settings_index(root)
    layered: list[tuple[str, dict[str, Any]]] = []
    env_values = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key == CONFIG_ENV:
            continue
        name = key[len(ENV_PREFIX):].lower()
        if name not in index and partial:
            continue
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
            if name in list_settings and isinstance(value, str):
                # a YAML/JSON list ('["a{2,}", "b"]') for items holding commas, else a,b,c
                if value.lstrip().startswith("["):
                    try:
                        value = yaml.safe_load(value)
                    except yaml.YAMLError as exc:
                        raise ConfigError(f"{layer_source} {name}: not a YAML list: "
                                          f"{str(exc).splitlines()[0]}") from exc
                else:
                    value = [p for p in value.split(",") if p]
            try:
                setattr(getattr(config, section), name, value)
            except ValidationError as exc:
                label = ENV_PREFIX + name.upper() if layer_source == "environment" else name
                raise ConfigError(_format_error(exc, f"{layer_source} {label}")) from exc
    return config


def redacted(config: BaseModel) -> dict[str, Any]:
    """The config as a dict with the DSN password hidden, for start-up logs."""
    data = config.model_dump(mode="json")
    if "storage" in data:
        data["storage"]["dsn"] = redact_dsn(data["storage"]["dsn"])
    return data


def redact_dsn(dsn: str) -> str:
    """A DSN with the password of its user:password@ part replaced by ***."""
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", dsn)
