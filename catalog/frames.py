"""The catalog for the dashboards, as Polars frames keyed by policy id: the latest version
(`catalog_frame`), the policies seen in decisions over a range but absent from it
(`missing_policies`), and `annotate`, which joins catalog columns onto any frame with a
policy column and flags the rows whose policy is not in the catalog (they are kept, never
dropped: an uncatalogued policy is a gap to see, not noise to hide).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
from clickhouse_connect.driver.client import Client

from catalog import store
from catalog.model import Catalog

SCHEMA = {
    "policy_id": pl.String, "title": pl.String, "owner": pl.String, "category": pl.String,
    "severity": pl.String,
    "controls": pl.List(pl.Struct({"framework": pl.String, "control": pl.String})),
    "controls_text": pl.String, "runbook": pl.String, "engine": pl.String,
    "description": pl.String,
}
MISSING_SCHEMA = {"policy_id": pl.String, "decisions": pl.Int64}
IN_CATALOG = "in_catalog"


def to_frame(catalog: Catalog) -> pl.DataFrame:
    """One row per policy, sorted by id; `controls_text` is the controls as one cell
    ("SOC 2 CC6.1; NIST SP 800-53 Rev. 5 AC-6")."""
    rows = [{"policy_id": p.id, "title": p.title, "owner": p.owner, "category": p.category,
             "severity": p.severity,
             "controls": [{"framework": c.framework, "control": c.control}
                          for c in p.controls],
             "controls_text": "; ".join(map(str, p.controls)), "runbook": p.runbook,
             "engine": p.engine, "description": p.description} for p in catalog]
    return pl.DataFrame(rows, schema=SCHEMA)


def catalog_frame(client: Client, at: datetime | None = None) -> pl.DataFrame:
    """The latest stored catalog (or the one in force at `at`), keyed by `policy_id`; an
    empty frame of the same columns when none was ever loaded."""
    version = store.latest(client, at)
    return to_frame(version.catalog if version else Catalog())


def missing_policies(client: Client, start: datetime, end: datetime,
                     catalog: Catalog | None = None) -> pl.DataFrame:
    """Policies with decisions in `[start, end)` (to the minute) that the catalog lacks:
    policy_id and its number of decisions, most decisions first. `catalog` defaults to the
    latest stored one (with none stored, every policy seen is missing)."""
    if catalog is None:
        version = store.latest(client)
        catalog = version.catalog if version else Catalog()
    seen = store.decision_counts(client, start, end)
    rows = sorted(((pid, n) for pid, n in seen.items() if pid not in catalog),
                  key=lambda r: (-r[1], r[0]))
    return pl.DataFrame(rows, schema=MISSING_SCHEMA, orient="row")


def annotate(frame: pl.DataFrame, catalog: pl.DataFrame, *, on: str = "policy_id",
             columns: tuple[str, ...] = ("title", "owner", "category", "runbook")
             ) -> pl.DataFrame:
    """`frame` with the catalog's `columns` for its policy column `on` (a left join: every
    row stays, in order) and `in_catalog` (False where the policy is not in the catalog,
    its catalog columns null)."""
    right = catalog.select(pl.col("policy_id").alias(on), *columns) \
        .with_columns(pl.lit(True).alias(IN_CATALOG))
    joined = frame.join(right, on=on, how="left", maintain_order="left")
    return joined.with_columns(pl.col(IN_CATALOG).fill_null(False))
