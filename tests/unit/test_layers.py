"""Imports point down the layers (ARCHITECTURE.md, "Layers"): the ground (`core`, and
`schemas`, which may import `core` but not the other way) -> the stages (`collector`,
`metrics`, `importers`, `catalog`: siblings, none imports another) -> `slo` | `triage`
(siblings) -> `dashboards` -> the app shell (`policyscope`). Every import in every module
counts, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {"core": 0, "schemas": 0, "collector": 1, "metrics": 1, "importers": 1,
          "catalog": 1, "slo": 2, "triage": 2, "dashboards": 3, "policyscope": 4}
ALSO_ALLOWED = {("schemas", "core")}  # the ground's one direction


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def violations(root: Path = ROOT) -> list[str]:
    out = []
    for package, rank in LAYERS.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, target in imports(path):
                if target not in LAYERS or target == package:
                    continue
                if LAYERS[target] < rank or (package, target) in ALSO_ALLOWED:
                    continue
                kind = "a sibling" if LAYERS[target] == rank else "a higher layer"
                out.append(f"{path.relative_to(root)}:{line} imports {target} "
                           f"({kind}: layer {LAYERS[target]} from layer {rank})")
    return out


def test_every_import_points_down_the_layers():
    assert violations() == []


def test_the_check_sees_an_upward_import_inside_a_function(tmp_path):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "jobs.py").write_text(
        "import polars\n\ndef run():\n    from dashboards import charts\n")
    (tmp_path / "collector").mkdir()
    (tmp_path / "collector" / "rows.py").write_text("from metrics.windows import WINDOWS\n")
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "config.py").write_text("from schemas.events import TABLES\n")
    assert violations(tmp_path) == [
        "core/config.py:1 imports schemas (a sibling: layer 0 from layer 0)",
        "collector/rows.py:1 imports metrics (a sibling: layer 1 from layer 1)",
        "metrics/jobs.py:4 imports dashboards (a higher layer: layer 3 from layer 1)",
    ]
