"""Every query the dashboard pages run, one module per page (`live`, `executive`, `slos`,
`tuning`, `debug`), and the helpers they share here.

Functions take a clickhouse-connect client and return pandas frames (or plain values); the
pages call them through the cached loaders of `dashboards.loaders`. Values are always bound
as parameters (`{name:Type}`); identifiers come only from the table registry
(`schemas.tables`) and the SLI catalogue's dimension columns (`schemas.slis`), never from
input. Aggregates are read from the rollups and `sli_values` -- through the read API
(`metrics.read`) for window totals, latency percentiles and SLI values -- so a page's work
grows with windows and dimension values, not with events; the SLO standing is the one the
alert evaluator stored (`slo_standings`). Raw rows are read only where a page shows rows (a
search, an audit trail, the triage queue's subjects), bounded by the time range and a LIMIT,
and at the partial hours at a range's edges of the tuning rollups.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd
from clickhouse_connect.driver.client import Client

from core.storage import connect
from dashboards.config import DashboardSettings, current
from schemas.slis import DECISION

TIME = "DateTime64(3, 'UTC')"


# The session settings of every client the pages read through. A page is many small
# statements over a few thousand rows each. ClickHouse compiles an expression, an aggregate or
# a sort to machine code (LLVM) once it has met it a few times; the statement that reaches
# that count waits for the compiler, a stall several times its own length (bench/RESULTS.md,
# the pages section). Compiled code pays over millions of rows (the batch's scans keep it),
# not over a page's few thousand.
READ_SETTINGS = {"compile_expressions": 0, "compile_aggregate_expressions": 0,
                 "compile_sort_description": 0}


def for_pages(client: Client) -> Client:
    """`client` with the pages' session settings (`READ_SETTINGS`)."""
    for name, value in READ_SETTINGS.items():
        client.set_client_setting(name, value)
    return client


def open_client(config: DashboardSettings | None = None) -> Client:
    config = config or current()
    client, _ = connect(config.storage.dsn, config.storage.database)
    return for_pages(client)


def frame(client: Client, sql: str, parameters: Mapping[str, Any],
          columns: list[str]) -> pd.DataFrame:
    """Rows of `sql` as a frame with `columns` (named here: an empty result has no names)."""
    result = client.query(sql, parameters=dict(parameters))
    return pd.DataFrame(result.result_rows, columns=columns)


def dimension_filter(where: Mapping[str, str], prefix: str = "f",
                     columns: Mapping[str, str] = DECISION) -> tuple[str, dict[str, str]]:
    """' AND col = {f_team:String} ...' for the dimensions of `where` (names of the
    catalogue's decision dimensions, mapped to their columns), and its parameters.
    Raises ValueError for a dimension the columns lack (names are never put in SQL)."""
    sql, params = [], {}
    for name, value in where.items():
        if name not in columns:
            raise ValueError(f"no dimension {name!r}; expected one of {', '.join(columns)}")
        sql.append(f" AND {columns[name]} = {{{prefix}_{name}:String}}")
        params[f"{prefix}_{name}"] = value
    return "".join(sql), params


def time_range(start: datetime, end: datetime, column: str = "event_time"
               ) -> tuple[str, dict[str, datetime]]:
    """'column >= {start} AND column < {end}' (a half-open range) and its parameters."""
    return (f"{column} >= {{start:{TIME}}} AND {column} < {{end:{TIME}}}",
            {"start": start, "end": end})


def filter_options(client: Client, since: datetime) -> dict[str, list[str]]:
    """The values of each global filter dimension (team, environment, cluster) that decisions
    since `since` carried, from the per-value day rollup (a few rows per day)."""
    from schemas.tables import DECISION_ROLLUPS

    table = DECISION_ROLLUPS.table("1d", per_value=True)
    rows = client.query(f"""
        SELECT dimension, groupArray(DISTINCT dimension_value) FROM {table}
        WHERE day >= toStartOfDay({{since:DateTime('UTC')}})
          AND dimension IN ('team', 'environment', 'cluster') AND dimension_value != ''
        GROUP BY dimension""", parameters={"since": since}).result_rows
    return {dimension: sorted(values) for dimension, values in rows}
