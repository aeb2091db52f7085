"""The collector's config section (`collector:` in the config file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Protocol

from pydantic import BeforeValidator, Field, SecretStr, field_validator

from collector.opa_mappings import DecisionMapping, parse_mappings
from collector.redaction import DEFAULT_VALUE_PATTERNS, check_key_patterns, check_value_patterns
from core.config import Section, StorageConfig
from core.units import Bytes, Port, Seconds, parse_duration
from schemas.events import DEFAULT_REDACT_PATTERNS

SecondsOrOff = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]  # 0 = off


class CollectorConfig(Section):
    http_host: str = Field("127.0.0.1", description="OTLP/HTTP listen address (0.0.0.0 for all)")
    http_port: Port = Field(4318, description="OTLP/HTTP port (0 picks a free one)")
    grpc_host: str = Field("127.0.0.1", description="OTLP/gRPC listen address")
    grpc_port: Port = Field(4317, description="OTLP/gRPC port (0 picks a free one)")
    max_request_size: Bytes = Field(20 * 1024**2, description=(
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
    max_concurrent_requests: int = Field(64, ge=1, description=(
        "requests read, decoded or made durable at once; more get 429 / RESOURCE_EXHAUSTED"))
    max_inflight_bytes: Bytes = Field(256 * 1024**2, description=(
        "decompressed request bytes held at once; more get 429 / RESOURCE_EXHAUSTED"))
    memory_limit: Bytes | None = Field(None, description=(
        "resident memory of the collector and its workers; above 80 % of it new requests get "
        "503 / UNAVAILABLE (default: half the machine's or the cgroup's memory; 0 = off)"))
    max_connections: int = Field(256, ge=1, description=(
        "open OTLP/HTTP connections; more are closed at once"))
    header_timeout: Seconds = Field(10.0, description=(
        "longest an OTLP/HTTP connection may take to send a request's headers, or sit idle"))
    body_timeout: Seconds = Field(30.0, description=(
        "longest an OTLP/HTTP request body may take to arrive (408 after)"))
    shutdown_timeout: Seconds = Field(10.0, description=(
        "on SIGTERM, longest to wait for requests in flight, then for the spool to reach "
        "storage (what is left stays durable in the spool for the next start)"))
    self_metrics_interval: SecondsOrOff = Field(10.0, description=(
        "how often the collector records its own counters to the collector_metrics table "
        "(collector/self_metrics.py), and once more at shutdown; 0 = off"))
    auth_tokens: list[SecretStr] = Field(default_factory=list, description=(
        "bearer tokens the receivers accept (Authorization: Bearer <token>); none = no "
        "token needed"))
    auth_token_file: Path | None = Field(None, description=(
        "file of accepted bearer tokens, one per line; re-read when it changes"))
    tls_cert_file: Path | None = Field(None, description=(
        "PEM certificate (chain): serve OTLP/HTTP and OTLP/gRPC over TLS"))
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file")
    tls_client_ca_file: Path | None = Field(None, description=(
        "PEM CA bundle: clients must present a certificate it signed (mTLS)"))
    allow_unauthenticated: bool = Field(False, description=(
        "listen beyond loopback with no token or client certificate (only behind a proxy "
        "that authenticates)"))
    max_value_length: int = Field(4096, ge=64, description=(
        "characters kept of a text column (reason, resource name, ...); longer values are "
        "cut, counted in /metrics and told to the sender in partial_success"))
    max_extra_attributes: int = Field(32, ge=0, description=(
        "unmapped record attributes kept per event, in the `attributes` map"))
    redact_attributes: list[str] = Field(default_factory=lambda: list(DEFAULT_REDACT_PATTERNS),
                                         description=(
        "regexes; unmapped attributes whose key matches are stored as [REDACTED]"))
    redact_values: list[str] = Field(default_factory=lambda: list(DEFAULT_VALUE_PATTERNS),
                                     description=(
        "regexes; what they match in any stored text (columns and attribute values) is "
        "stored as [REDACTED], only their groups named secret* if they have any (AWS, GitHub, "
        "GitLab, Slack tokens, JWTs, private keys, URL passwords, Bearer/Basic, password=...); "
        "[] = off"))
    opa_decision_mappings: Annotated[list[DecisionMapping], BeforeValidator(parse_mappings)] = \
        Field(default_factory=list, description=(
            "where allowed / deny / reason / policy id live in the results of OPA decision "
            "paths (collector/opa_mappings.py; defaults read the common shapes); in the "
            "environment a YAML list"))

    @field_validator("redact_attributes")
    @classmethod
    def _key_regexes(cls, patterns: list[str]) -> list[str]:
        return check_key_patterns(patterns)

    @field_validator("redact_values")
    @classmethod
    def _value_regexes(cls, patterns: list[str]) -> list[str]:
        return check_value_patterns(patterns)


class CollectorSettings(Protocol):
    """What the collector reads of the root config (`policyscope.config.Config` is one)."""

    storage: StorageConfig
    collector: CollectorConfig
