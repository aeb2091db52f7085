"""ClickHouse -> Polars: the only place the batch layer reads storage, everything as Arrow.

- `rollups`: the rollup tables and readers of their rows;
- `windowed`: window sums over the rollups (inside ClickHouse for few points, dense numpy for
  many) -- what the SLI families and SLO counts call;
- `events`: raw event kinds the rollups do not cover, and the batch layer's own tables.
"""

from metrics.sources.events import events, report_histories, table_rows
from metrics.sources.rollups import (
    DECISION_DIMENSIONS,
    DECISIONS,
    FEW_POINTS,
    GATE_DIMENSIONS,
    GATES,
    KEYS,
    Rollup,
    filtered_hours,
    filtered_minutes,
    rollup_hours,
    rollup_segments,
    utc_datetime,
)
from metrics.sources.windowed import (
    fill_windows,
    rollup_window_reduce,
    rollup_window_sums,
    window_totals,
    window_totals_sets,
)

__all__ = ["DECISIONS", "DECISION_DIMENSIONS", "FEW_POINTS", "GATES", "GATE_DIMENSIONS", "KEYS",
           "Rollup", "events", "fill_windows", "filtered_hours", "filtered_minutes",
           "report_histories", "rollup_hours", "rollup_segments",
           "rollup_window_reduce", "rollup_window_sums",
           "table_rows", "utc_datetime", "window_totals", "window_totals_sets"]
