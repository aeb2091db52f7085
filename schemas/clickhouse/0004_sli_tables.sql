-- 0004: what the batch layer writes and reads besides the rollups.

-- SLI values in long format: one row per (SLI, window, dimension, value, evaluation time).
-- ReplacingMergeTree on computed_at: recomputing a point (late data, backfill) replaces it;
-- read with FINAL. `value` is NULL for an empty window, never 0 or 1.
CREATE TABLE IF NOT EXISTS {db}.sli_values
(
    sli LowCardinality(String),
    window LowCardinality(String),
    dimension LowCardinality(String),
    dimension_value String,
    at DateTime('UTC'),
    good Nullable(Float64),
    total Nullable(Float64),
    value Nullable(Float64),
    computed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(at)
ORDER BY (sli, window, dimension, dimension_value, at)
TTL at + INTERVAL 400 DAY;

-- The batch watermark: the last evaluation time written and the newest ingest it had seen.
CREATE TABLE IF NOT EXISTS {db}.sli_watermark
(
    job LowCardinality(String),
    last_at DateTime('UTC'),
    ingested_through DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY job;

-- Analysts' triage verdicts on denies and violations (written by the triage dashboard), the
-- source of the false-positive rate (M4). The subject's time and dimensions are copied so
-- the SLI needs no join against raw events.
CREATE TABLE IF NOT EXISTS {db}.triage_verdicts
(
    subject_id String,
    subject_kind LowCardinality(String),
    subject_time DateTime64(3, 'UTC'),
    verdict LowCardinality(String),
    reason String,
    analyst String,
    team LowCardinality(String),
    service LowCardinality(String),
    policy_id LowCardinality(String),
    engine LowCardinality(String),
    environment LowCardinality(String),
    cluster LowCardinality(String),
    triaged_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(triaged_at)
ORDER BY (subject_kind, subject_id);

-- Alert lifecycle history (the alert evaluator writes it), the source of M7 alert-to-page.
CREATE TABLE IF NOT EXISTS {db}.alert_events
(
    alert_id String,
    slo LowCardinality(String),
    severity LowCardinality(String),
    state LowCardinality(String),
    at DateTime64(3, 'UTC'),
    team LowCardinality(String),
    service LowCardinality(String),
    dimensions Map(LowCardinality(String), String),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (slo, at, alert_id);
