"""M8 agent health ratio, from `agent.heartbeat` events.

Known agents of a window are those that sent a heartbeat in it. An agent is healthy at the
evaluation time when its latest heartbeat reports `agent.status` healthy (or no status) and
is no older than 2 x its own `agent.heartbeat.interval` (60 s when it reports none).
good = healthy agents, total = known agents; overall, by engine, team, environment, cluster.
An empty window: total 0, value null.
"""

from __future__ import annotations

import polars as pl

from metrics import sources
from metrics.sli.base import (
    Context,
    aggregate,
    complete,
    latest_in_windows,
    lookback_start,
    ratio,
)

DIMENSIONS = {"engine": "engine", "team": "team", "environment": "environment",
              "cluster": "cluster"}
DEFAULT_INTERVAL_S = 60.0


def compute(ctx: Context) -> pl.DataFrame:
    beats = sources.latest_rows(
        ctx.client, "agent.heartbeat", "agent_id", list(DIMENSIONS.values()),
        ["agent_status", "heartbeat_interval_seconds"], lookback_start(ctx), max(ctx.points),
        ctx.points)
    latest = latest_in_windows(ctx, beats, "agent_id", DIMENSIONS)
    age = (pl.col("at") - pl.col("event_time")).dt.total_milliseconds() / 1000.0
    interval = pl.col("heartbeat_interval_seconds").fill_null(DEFAULT_INTERVAL_S)
    healthy = pl.col("agent_status").is_in(["healthy", ""]) & (age <= 2 * interval)
    frame = aggregate(latest, [healthy.sum().alias("good"), pl.len().alias("total")])
    return ratio(complete(ctx, frame, {"good": 0, "total": 0}), "M8", pl.col("good"),
                 pl.col("total"))
