"""The policy catalog on the pages: the latest stored version as a frame keyed by policy
(`catalog.frames.catalog_frame`), and a policy's entry. A policy the catalog lacks is shown
flagged ("not in catalog"), never dropped."""

from __future__ import annotations

import pandas as pd
from clickhouse_connect.driver.client import Client

from catalog.frames import catalog_frame

COLUMNS = ["policy", "title", "owner", "category", "severity", "controls", "runbook"]


def policies(client: Client) -> pd.DataFrame:
    """One row per catalogued policy (`COLUMNS`; controls as one text cell; a runbook that is
    not an http(s) URL blanked); empty when no catalog was ever loaded."""
    frame = catalog_frame(client).select(
        "policy_id", "title", "owner", "category", "severity", "controls_text", "runbook")
    out = frame.to_pandas()
    out.columns = COLUMNS
    # shown as a link: only http(s), whatever reached the table (the loader refuses others)
    out["runbook"] = out["runbook"].where(out["runbook"].str.match(r"(?i)^https?://"), "")
    return out


def annotate(rows: pd.DataFrame, catalog: pd.DataFrame, on: str = "policy",
             columns: tuple[str, ...] = ("title", "owner", "runbook")) -> pd.DataFrame:
    """`rows` with the catalog's `columns` for its policy column `on` (every row kept, in
    order; '' where the catalog has no entry or no value) and `catalog`: "yes", or "not in
    catalog" where the policy lacks an entry. Looked up by dict: the tables are a few dozen
    rows, where a pandas merge costs several times more."""
    policies = rows[on].tolist()
    entries = catalog["policy"].tolist()
    out = rows.reset_index(drop=True)
    for column in columns:
        found = dict(zip(entries, catalog[column].tolist()))
        out[column] = pd.Series(["" if pd.isna(v := found.get(p)) else v for p in policies],
                                dtype=catalog[column].dtype)
    known = set(entries)
    out["catalog"] = pd.Series(["yes" if p in known else "not in catalog" for p in policies],
                               dtype="str")
    return out
