"""KIND `pip-audit`: pip-audit's JSON report (`pip-audit -f json`) as `vuln.detected` events,
diffed per artifact (importers/vulns.py).

The report is `{"dependencies": [...], "fixes": [...]}` (pip-audit 2.x), or a bare array of
the dependencies (older versions): each `{name, version, vulns: [{id, fix_versions, aliases,
description}]}`, or `{name, skip_reason}` for one pip-audit could not audit. It names no
artifact: the artifact is `--artifact` (the application or image the requirements belong
to), else the repository (`--repository` or the CI's). The vulnerability id is a CVE among
`id` and `aliases` if there is one (pip-audit reports PYSEC- / GHSA- ids); the ecosystem is
PyPI.

pip-audit reports no severity (neither service it queries gives one): the events carry none
(the severity column's "unknown"), rather than a guessed one. A report with skipped
dependencies is a capped listing: a dependency not audited this time may still be
vulnerable, so nothing the report does not list is taken as remediated (importers/diff.py).
The event time is the import's (the report holds none).
"""

from __future__ import annotations

from importers.documents import Document, Node
from importers.parsing import Options, Parsed
from importers.vulns import Vulnerability, add_scan, artifact_of, preferred_id, strings


def parse(document: Document, options: Options) -> Parsed:
    root = document.json()
    if isinstance(root.value, list):
        dependencies = [Node(root.source, f"$[{i}]", v) for i, v in enumerate(root.value)]
    elif root.is_mapping() and "dependencies" in root.value:
        dependencies = root.items("dependencies", required=True)
    else:
        raise root.fail("a pip-audit JSON report (pip-audit -f json): {\"dependencies\": "
                        "[...]} or an array of dependencies", root.value)
    out = Parsed(objects=1)
    found: list[Vulnerability] = []
    skipped = 0
    for dependency in dependencies:
        dependency.mapping()
        name = dependency.text("name", required=True)
        if dependency.text("skip_reason"):
            skipped += 1
            continue
        version = dependency.text("version", required=True)
        for vuln in dependency.items("vulns"):
            found.append(_vulnerability(vuln, name, version))
    if skipped:
        out.skipped["dependencies pip-audit could not audit (nothing remediated)"] += skipped
    artifact = artifact_of(root, options, "", "pip-audit")
    add_scan(out, options, tool="pip-audit", artifact=artifact, vulnerabilities=found,
             time_ms=None, complete=not skipped)
    return out


def _vulnerability(vuln: Node, name: str, version: str) -> Vulnerability:
    vuln.mapping()
    vid = vuln.text("id", required=True)
    aliases, fixed = strings(vuln, "aliases"), strings(vuln, "fix_versions")
    ids = [vid, *aliases]
    return Vulnerability(id=preferred_id(ids), package=name, version=version,
                         ecosystem="PyPI", fixed=", ".join(fixed), aliases=tuple(ids),
                         title=vuln.text("description"))

