-- 0001: policy decisions, one row per policy evaluation.
-- Engine: ReplacingMergeTree keyed by the sorting key, which ends in event_id. The collector
-- already refuses rows whose event_id is stored (see collector/writer.py); the engine is the
-- backstop that collapses a duplicate two collectors raced in, at merge time.
-- ORDER BY: day first so every time-window query prunes by primary key, then the dimensions the
-- views filter on most (team, policy), then time and the id.
-- PARTITION BY month: retention drops whole parts; a month of decisions is a few GB compressed.
-- TTL: the default 395 days is replaced at start-up by `retention_days` from the config.
CREATE TABLE IF NOT EXISTS {db}.policy_decisions
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
    outcome LowCardinality(String),
    latency_seconds Nullable(Float64) CODEC(Gorilla, ZSTD(1)),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1)),
    INDEX idx_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_resource_name resource_name TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (toDate(event_time), team, policy_id, event_time, event_id)
TTL toDateTime(event_time) + INTERVAL 395 DAY
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000
