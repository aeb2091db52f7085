"""The collector's config section (`collector:` in the config file)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

from pydantic import Field, field_validator

from core.config import Section, StorageConfig
from core.units import Bytes, Port, Seconds
from schemas.events import DEFAULT_REDACT_PATTERNS


class CollectorConfig(Section):
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

    @field_validator("redact_attributes")
    @classmethod
    def _regexes(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regex: {exc}") from None
        return patterns


class CollectorSettings(Protocol):
    """What the collector reads of the root config (`policyscope.config.Config` is one)."""

    storage: StorageConfig
    collector: CollectorConfig
