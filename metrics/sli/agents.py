"""M8 agent health ratio, from `agent.heartbeat` events.

Known agents of a window are those that sent a heartbeat in it. An agent is healthy at the
evaluation time when its latest heartbeat reports `agent.status` healthy (or no status) and
is no older than 2 x its own `agent.heartbeat.interval` (60 s when it reports none).
good = healthy agents, total = known agents; overall, by engine, team, environment, cluster.
An empty window: total 0, value null.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from metrics import sources
from metrics.sli.base import (
    Context,
    empty,
    empty_overall,
    lookback_start,
    per_dimension,
    ratio,
    windowed,
)

DIMENSIONS = {"engine": "engine", "team": "team", "environment": "environment",
              "cluster": "cluster"}
DEFAULT_INTERVAL_S = 60.0


def compute(ctx: Context) -> pl.DataFrame:
    beats = sources.events(ctx.client, "agent.heartbeat", [
        "agent_id", "agent_status", "heartbeat_interval_seconds", *DIMENSIONS.values()],
        lookback_start(ctx), max(ctx.points))

    def one(rows: pl.DataFrame, at: datetime, start: datetime) -> pl.DataFrame:
        if not rows.height:
            return empty_overall("M8")
        latest = rows.group_by("agent_id").agg(pl.all().sort_by("event_time").last())
        age = (pl.lit(at) - pl.col("event_time")).dt.total_milliseconds() / 1000.0
        interval = pl.col("heartbeat_interval_seconds").fill_null(DEFAULT_INTERVAL_S)
        healthy = (pl.col("agent_status").is_in(["healthy", ""])) & (age <= 2 * interval)
        return per_dimension(latest, DIMENSIONS, [healthy.sum().alias("good"),
                                                  pl.len().alias("total")])

    frame = windowed(ctx, beats, one)
    return ratio(frame, "M8", pl.col("good"), pl.col("total")) if frame.height else empty()
