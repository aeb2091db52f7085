-- 0016: the last snapshot of every state-only import source (importers/snapshots.py), so the
-- diff of a PolicyReport, a Gatekeeper constraint's status or (later) a vulnerability scan
-- against its previous import works from any machine and after a restart.
-- One row per (source_key, finding_id): the finding's latest state, `observed_at` the time of
-- the snapshot that stated it (the version: ReplacingMergeTree keeps the latest). `open` false
-- once a complete listing no longer held it (remediated); `violation_id` and `first_seen`
-- identify its lifecycle, `attributes` (canonical JSON) are what its remediated event carries.
-- The row with finding_id '' is the source's header: `observed_at` is its last snapshot's
-- time, whatever changed. Only changes are written per import (and the header), so the table
-- grows with the findings ever seen, not with the number of imports.
CREATE TABLE IF NOT EXISTS {db}.import_snapshots
(
    source_key String,
    finding_id String,
    observed_at DateTime64(3, 'UTC'),
    open Bool,
    violation_id String,
    first_seen DateTime64(3, 'UTC'),
    attributes String CODEC(ZSTD(1)),
    saved_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(observed_at)
ORDER BY (source_key, finding_id);
