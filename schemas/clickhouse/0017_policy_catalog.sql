-- 0017: the policy catalog (catalog/), versioned: every load of a catalog whose content differs
-- from the latest version appends one row, the whole version: when it was loaded, the digest of
-- its content (catalog/model.py: SHA-256 of the canonical JSON), where it was loaded from, and
-- its policies as parallel arrays (sorted by policy id; controls as (framework, control) pairs
-- per policy). One row per version, so a version is stored whole or not at all, and an empty
-- catalog is a version too. Readers take the latest `loaded_at` (or the latest at or before a
-- time: the catalog as it was then). Append-only: nothing is updated or deleted.
-- Two loads of the same content racing each other insert with the same deduplication token
-- (the previous version's time and the new digest), so the table deduplicates the second.
-- A few rows per catalog change: no partitions, no TTL (the history is the audit trail).
CREATE TABLE IF NOT EXISTS {db}.policy_catalog
(
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3),
    digest String,
    source String,
    policy_id Array(String),
    title Array(String),
    owner Array(LowCardinality(String)),
    category Array(LowCardinality(String)),
    severity Array(LowCardinality(String)),
    controls Array(Array(Tuple(String, String))),
    runbook Array(String),
    engine Array(LowCardinality(String)),
    description Array(String)
)
ENGINE = MergeTree
ORDER BY (loaded_at, digest)
SETTINGS non_replicated_deduplication_window = 100;
