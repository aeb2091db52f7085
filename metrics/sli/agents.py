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
from metrics.sli.base import Context, lookback_start, ratio, window_rows
from metrics.sli.latest import latest_reports, window_counts
from schemas import slis

DIMENSIONS = slis.family_dimensions("agents")  # name -> column (schemas/slis.py)
DEFAULT_INTERVAL_S = 60.0


def compute(ctx: Context) -> pl.DataFrame:
    beats = sources.report_histories(
        ctx.client, "agent.heartbeat", "agent_id", list(DIMENSIONS.values()),
        ["agent_status", "heartbeat_interval_seconds"], lookback_start(ctx), max(ctx.points),
        ctx.points, memo=ctx.memo)
    status_ok = beats.get_column("agent_status").is_in(["healthy", ""]).fill_null(False)
    interval = beats.get_column("heartbeat_interval_seconds").fill_null(DEFAULT_INTERVAL_S)
    status_ok, interval = status_ok.to_numpy(), interval.to_numpy()
    at, _ = ctx.interval_times
    cells = []
    for latest in latest_reports(ctx, beats, "agent_id", DIMENSIONS):
        # seconds from whole milliseconds, times 1 / 1000 as Polars divides: the same bits
        age = (at[latest.point] - latest.time) // 1000 * (1 / 1000.0)
        healthy = status_ok[latest.state] & (age <= 2 * interval[latest.state])
        cells.append(window_counts(ctx, latest, {"good": healthy}))
    return ratio(window_rows(ctx, cells), "M8", pl.col("good"), pl.col("n"))
