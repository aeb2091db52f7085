"""The SLI batch's config section (`batch:` in the config file)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from core.config import Section
from core.units import Seconds
from metrics.latency import check_threshold


def _latency_threshold(value: Any) -> float:
    return check_threshold(float(value))


class BatchConfig(Section):
    batch_interval: Seconds = Field(60.0, description="how often `up` / `worker` run the SLI batch")
    latency_threshold: Annotated[float, BeforeValidator(_latency_threshold)] = Field(
        0.1, description="seconds; L_under counts decisions at or under it (a histogram bound: "
                         "1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 x a power of ten)")
