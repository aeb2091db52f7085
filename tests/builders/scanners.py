"""Running the real CI scanners offline for the importer tests, and searching storage for a
value that must not be there.

checkov's pins (cyclonedx-python-lib < 8, packaging < 24, bc-detect-secrets over
detect-secrets' own module) cannot share the project venv with the dev tools, so it lives in
its own venv, `.venv/tools/checkov` (`make test` makes it: the Makefile's CHECKOV rule), or
where POLICYSCOPE_CHECKOV points. detect-secrets and bandit are in the dev extra.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "tests" / "data" / "terraform"
BANDIT_FIXTURE = ROOT / "tests" / "data" / "bandit"
TOOL = Path(sys.executable).parent  # detect-secrets, bandit: the venv's console scripts

# what keeps checkov from calling home: no API key, no download of Bridgecrew's mappings /
# guidelines, no SCA package scan; HOME is the test's own
CHECKOV_OFFLINE = {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
                   "BC_API_KEY": "", "PRISMA_API_URL": "", "LOG_LEVEL": "WARNING"}


def checkov_binary() -> str:
    for candidate in (os.environ.get("POLICYSCOPE_CHECKOV"),
                      str(ROOT / ".venv" / "tools" / "checkov" / "bin" / "checkov"),
                      shutil.which("checkov")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("checkov is not installed: `make .venv/tools/checkov/bin/checkov` (what "
                "`make test` does first), or set POLICYSCOPE_CHECKOV to a checkov binary")


def run_checkov(home: Path, output: str, out_dir: Path | None = None) -> str:
    """`checkov -d tests/data/terraform --framework terraform -o <output>`; its report text.
    Exit code 1 is checkov's "checks failed", expected here."""
    args = [checkov_binary(), "-d", str(TERRAFORM), "--framework", "terraform", "-o", output,
            "--compact", "--skip-download"]
    if out_dir is not None:
        args += ["--output-file-path", str(out_dir)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           **CHECKOV_OFFLINE}
    done = subprocess.run(args, capture_output=True, text=True, timeout=240, env=env,
                          cwd=home)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    if out_dir is not None:
        return next(out_dir.glob("*.sarif")).read_text()
    return done.stdout


def tool(name: str, *args: str, cwd: Path, ok: tuple[int, ...] = (0,)) -> str:
    done = subprocess.run([str(TOOL / name), *args], capture_output=True, text=True,
                          timeout=180, cwd=cwd)
    assert done.returncode in ok, done.stderr[-2000:]
    return done.stdout


def cli(*args: str, env: dict | None = None, stdin: str | None = None):
    """`policyscope ...` in its own process, without the caller's POLICYSCOPE_* settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("POLICYSCOPE_")}
    return subprocess.run([sys.executable, "-m", "policyscope.cli", *args], capture_output=True,
                          text=True, timeout=180, input=stdin, env={**base, **(env or {})},
                          cwd=ROOT)


def stored_occurrences(client, database: str, needle: str) -> dict[str, int]:
    """Rows of every column of policy_events and policy_decisions (maps and arrays as their
    text) holding `needle`, per table.column: {} when it is nowhere."""
    found = {}
    for table in ("policy_events", "policy_decisions"):
        columns = [r[0] for r in client.query(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = "
            "{t:String}", parameters={"db": database, "t": table}).result_rows]
        assert columns, f"no columns for {database}.{table}"
        counts = client.query(
            "SELECT " + ", ".join(f"countIf(position(toString(`{c}`), {{n:String}}) > 0)"
                                  for c in columns) + f" FROM {database}.{table}",
            parameters={"n": needle}).result_rows[0]
        found.update({f"{table}.{c}": n for c, n in zip(columns, counts) if n})
    return found


def files_holding(directory: Path, needle: str) -> list[str]:
    """Files under `directory` whose bytes contain `needle` (the spool, a dead-letter dir)."""
    assert directory.is_dir(), f"{directory} does not exist: nothing was searched"
    raw = needle.encode()
    return [str(p) for p in directory.rglob("*") if p.is_file() and raw in p.read_bytes()]
