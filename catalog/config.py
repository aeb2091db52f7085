"""The policy catalog's config section (`catalog:` in the config file): where the catalog
files are, for `policyscope catalog validate` / `load` when no paths are given."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from core.config import Section


class CatalogConfig(Section):
    catalog_dir: Path = Field(Path("./policies"), description=(
        "directory of policy catalog files (policies/*.yaml: id, title, owner, category, "
        "severity, controls, runbook); `policyscope catalog load` stores them as a version"))
