"""File importers: what policy engines and scanners write (PolicyReports, Gatekeeper status,
audit logs and export messages, inventories, agent heartbeats, ...) -> OTLP log records of the
wire contract (../shared/DESIGN.md section 3), the one input every source shares.

An importer never writes rows itself: it builds `ExportLogsServiceRequest`s whose records
carry the contract's attributes and a stable `log.record.uid` derived from their content
(`records.py`), and the app shell hands them to a collector over OTLP/HTTP (`otlp_http.py`)
or to the collector's own normalizer and writer in process (`policyscope/cli/imports.py`).
So every source still goes through `collector/rows.py`'s RowBuilder (coercion, rejects, ids,
redaction) without this package importing the collector, its sibling.

    registry.py   KIND -> parser: the one list of kinds (`policyscope import KIND FILE|-`)
    documents.py  reading JSON / JSON lines / CSV with positions for error messages
    facts.py      the source facts every import can carry (team, environment, cluster, CI)
    records.py    Event -> OTLP log records, stable ids
    diff.py       state-only sources: snapshots diffed into opened / remediated violations
    snapshots.py  the last snapshot of each source, kept in ClickHouse (import_snapshots)
    run.py        one import: parse, diff, requests, then the new snapshots once durable
"""
