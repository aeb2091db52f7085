-- 0002: every other event kind (violations, gates, inventory, agents, SBOMs, secrets, vulns, drift).
-- Engine: ReplacingMergeTree keyed by the sorting key, which ends in event_id. The collector
-- already refuses rows whose event_id is stored (see collector/writer.py); the engine is the
-- backstop that collapses a duplicate two collectors raced in, at merge time.
-- ORDER BY: day first so every time-window query prunes by primary key, then the dimensions the
-- views filter on most (team, policy), then time and the id.
-- PARTITION BY month: retention drops whole parts; a month of decisions is a few GB compressed.
-- TTL: the default 395 days is replaced at start-up by `retention_days` from the config.
CREATE TABLE IF NOT EXISTS {db}.policy_events
(
    event_id String CODEC(ZSTD(1)),
    event_time DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    observed_time DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    engine LowCardinality(String),
    policy_id LowCardinality(String),
    policy_version LowCardinality(String),
    rule LowCardinality(String),
    enforcement LowCardinality(String),
    severity LowCardinality(String),
    team LowCardinality(String),
    service LowCardinality(String),
    environment LowCardinality(String),
    cluster LowCardinality(String),
    namespace LowCardinality(String),
    resource_kind LowCardinality(String),
    resource_name String CODEC(ZSTD(1)),
    resource_id String CODEC(ZSTD(1)),
    actor String CODEC(ZSTD(1)),
    reason String CODEC(ZSTD(1)),
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    event_kind LowCardinality(String),
    violation_id String CODEC(ZSTD(1)),
    violation_status LowCardinality(String),
    remediation_kind LowCardinality(String),
    deploy_id String CODEC(ZSTD(1)),
    gate_outcome LowCardinality(String),
    agent_id String CODEC(ZSTD(1)),
    agent_status LowCardinality(String),
    heartbeat_interval_seconds Nullable(Float64),
    dropped_events Nullable(UInt64),
    workload_id String CODEC(ZSTD(1)),
    workload_enforced Nullable(Bool),
    image String CODEC(ZSTD(1)),
    sbom_format LowCardinality(String),
    sbom_components Nullable(UInt64),
    secret_fingerprint String CODEC(ZSTD(1)),
    secret_rule LowCardinality(String),
    repository String CODEC(ZSTD(1)),
    file_path String CODEC(ZSTD(1)),
    vulnerability_id String CODEC(ZSTD(1)),
    package_name String CODEC(ZSTD(1)),
    package_version String CODEC(ZSTD(1)),
    package_fixed_version String CODEC(ZSTD(1)),
    drift_field String CODEC(ZSTD(1)),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1)),
    INDEX idx_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_resource_name resource_name TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (event_kind, toDate(event_time), team, event_time, event_id)
TTL toDateTime(event_time) + INTERVAL 395 DAY
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000
