"""ClickHouse -> Polars: the only place the batch layer reads storage, everything as Arrow.

- `rollups`: the rollup tables and readers of their rows;
- `windowed`: window sums over the rollups (inside ClickHouse for few points, dense numpy for
  many) -- what the SLI families and SLO counts call;
- `events`: raw event kinds the rollups do not cover, and the batch layer's own tables
  (triage verdicts, fired alerts);
- `watermarks`: the batch's watermark and its probes of every SLI source table
  (`schemas.tables.SLI_SOURCES`) for the newest ingest and for late rows;
- `values`: the batch's output, `sli_values`, read back (`metrics.read.sli_values`).

The SLI families read only through these functions; the window sums themselves are
`metrics.window_sums`' (pure: frames in, frames out).
"""

from metrics.sources.events import events, fired_alerts, report_histories, triage_verdicts
from metrics.sources.rollups import (
    DECISION_DIMENSIONS,
    DECISIONS,
    FEW_POINTS,
    GATE_DIMENSIONS,
    GATES,
    KEYS,
    ROLLUPS,
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
from metrics.sources.values import sli_values
from metrics.sources.watermarks import ingested_through, late_minutes, watermark

__all__ = ["DECISIONS", "DECISION_DIMENSIONS", "FEW_POINTS", "GATES", "GATE_DIMENSIONS", "KEYS",
           "ROLLUPS", "Rollup", "events", "fill_windows", "filtered_hours", "filtered_minutes",
           "fired_alerts", "ingested_through", "late_minutes", "report_histories",
           "rollup_hours", "rollup_segments",
           "rollup_window_reduce", "rollup_window_sums", "sli_values", "triage_verdicts",
           "utc_datetime", "watermark", "window_totals", "window_totals_sets"]
