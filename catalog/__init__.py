"""The policy catalog: what each policy is, who owns it, which compliance controls it serves
and where its runbook is, as code (`policies/*.yaml`), stored versioned in ClickHouse.

`model` holds the records and the version digest (pure), `parse` reads catalog files into
them and collects every problem with its file and line (pure, apart from reading the
files), `store` is every ClickHouse read and write of the package, `load` validates and
stores a version (what `policyscope catalog load` and `policyscope import catalog` run),
`frames` gives the dashboards the latest catalog and the policies seen in decisions but
absent from it. A stage-layer package (ARCHITECTURE.md, "Layers"): the alert evaluator
(`slo`) and the dashboards read it; it reads only `core` and `schemas`.
"""
