"""KIND `cyclonedx`: a CycloneDX JSON SBOM (`bomFormat: CycloneDX`, `specVersion` 1.2-1.7:
cyclonedx-py, syft `-o cyclonedx-json`, trivy `-f cyclonedx`, cdxgen ...) as one
`sbom.generated` event: an SBOM exists for this artifact (M9 SBOM coverage's numerator).

The artifact is `--artifact` when given, else the SBOM's subject `metadata.component`: for a
container image (`type: container`) its `name` -- the reference the tool was given
(`nginx:1.25`), what a workload inventory holds as its image -- and for anything else
`name@version` (`policyscope@0.1.0`), or the name alone when it has no version. M9 matches
the artifact against the inventory's images exactly, so when the SBOM's name differs from
the image reference your inventory holds, give `--artifact`. An SBOM without
`metadata.component` needs `--artifact`.

The event carries `sbom.format` = `cyclonedx-<specVersion>` and `sbom.component.count` =
the components the SBOM lists (nested ones included, the subject not). Its time is
`metadata.timestamp`, else the import's; its id is the artifact, `serialNumber`, `version`,
that time and the count, so importing the same SBOM again stores it once.
"""

from __future__ import annotations

from importers.documents import Document, Node
from importers.parsing import Options, Parsed
from importers.records import Event, stable_id

SPEC_VERSIONS = ("1.2", "1.3", "1.4", "1.5", "1.6", "1.7")


def parse(document: Document, options: Options) -> Parsed:
    root = document.json()
    root.mapping()
    root.one_of("bomFormat", ("CycloneDX",))
    spec = root.one_of("specVersion", SPEC_VERSIONS)
    metadata = root.child("metadata")
    if metadata.value is not None:
        metadata.mapping()
    subject = metadata.child("component")
    artifact = options.artifact or _artifact(subject)
    if not artifact:
        raise subject.fail("the SBOM's subject (metadata.component with a name), or "
                           "--artifact NAME")
    count = _count(root)
    when = metadata.time_ms("timestamp")
    time_ms = options.at_ms if when is None else when
    serial, version = root.text("serialNumber"), root.integer("version")
    attrs = {"artifact.image": artifact, "sbom.format": f"cyclonedx-{spec}",
             "sbom.component.count": count, "policy.engine": "cyclonedx",
             "sbom.serial_number": serial}
    uid = stable_id("cyclonedx", artifact, serial, version, spec, count, time_ms)
    return Parsed(events=[Event("sbom.generated", attrs, time_ms, uid)], objects=1)


def _artifact(subject: Node) -> str:
    if subject.value is None:
        return ""
    subject.mapping()
    name, version = subject.text("name"), subject.text("version")
    if not name or subject.text("type") == "container" or not version:
        return name
    return f"{name}@{version}"


def _count(root: Node) -> int:
    """Components of the SBOM, nested ones included (each checked to be an object)."""
    count, pending = 0, [root]
    while pending:
        node = pending.pop()
        for component in node.items("components"):
            component.mapping()
            count += 1
            pending.append(component)
    return count
