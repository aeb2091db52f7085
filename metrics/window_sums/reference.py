"""What a window sum is, stated plainly: the definition every engine computes (the tests'
oracle; too slow for a run).

For rows (t, keys..., measures...) and intervals (at, window, start, and any other columns):
the sum of each measure over the rows with start <= t < at, per key, for every interval and
every key the rows hold (0 where none of that key's rows lies in the interval).
"""

from __future__ import annotations

import polars as pl


def window_sums(rows: pl.DataFrame, intervals: pl.DataFrame, keys: list[str],
                measures: list[str]) -> pl.DataFrame:
    """Columns at, window, the intervals' other columns, keys..., measures; one row per
    (interval, key), intervals in their order, keys in order of first appearance."""
    every_key = rows.select(keys).unique(maintain_order=True).rows()
    out = []
    for interval in intervals.iter_rows(named=True):
        inside = rows.filter((pl.col("t") >= interval["start"]) & (pl.col("t") < interval["at"]))
        sums = {tuple(row[:len(keys)]): row[len(keys):] for row in inside.group_by(keys).agg(
            pl.col(m).sum() for m in measures).iter_rows()}
        others = [v for c, v in interval.items() if c != "start"]
        for key in every_key:
            out.append([*others, *key, *sums.get(key, [0] * len(measures))])
    schema = {**{c: t for c, t in intervals.schema.items() if c != "start"},
              **{k: rows.schema[k] for k in keys}, **{m: rows.schema[m] for m in measures}}
    return pl.DataFrame(out, schema=schema, orient="row").select(
        "at", "window", *[c for c in intervals.columns if c not in ("at", "window", "start")],
        *keys, *measures)
