-- 0018: the triage queue's decisions, narrow. The queue's subjects are the deny and warn
-- decisions of the range without a current verdict, grouped by fingerprint (triage/store.py);
-- read from policy_decisions, every read scanned the columns of every decision of the range
-- (a 30-day queue of a 10M-decision store: 2 s, the denies and warns being 6 % of the rows).
-- This table holds only those decisions, and only the columns a subject has, filled at insert
-- time by its view like the rollups, so the queue reads its own rows. Fingerprints are nearly
-- unique per decision (resource names), so an aggregate rollup would be as large: this is a
-- copy, not a rollup. `fingerprint` is cityHash64 of the five fingerprint fields (policy_id,
-- rule, resource_kind, resource_name, reason), what the queue groups by (triage/store.py
-- computes the same for violations). Same engine, id and TTL as policy_decisions (the TTL follows
-- `retention_days` with the raw tables: schemas/migrations.py `apply_retention`).
-- Filled once from the raw decisions when created empty (stores that already hold data).
CREATE TABLE IF NOT EXISTS {db}.triage_subjects
(
    event_id String CODEC(ZSTD(1)),
    event_time DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    outcome LowCardinality(String),
    policy_id LowCardinality(String),
    policy_version LowCardinality(String),
    enforcement LowCardinality(String),
    rule LowCardinality(String),
    resource_kind LowCardinality(String),
    resource_name String CODEC(ZSTD(1)),
    reason String CODEC(ZSTD(1)),
    namespace LowCardinality(String),
    severity LowCardinality(String),
    team LowCardinality(String),
    service LowCardinality(String),
    engine LowCardinality(String),
    environment LowCardinality(String),
    cluster LowCardinality(String),
    ingested_at DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    fingerprint UInt64,
    INDEX idx_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_resource_name resource_name TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (toDate(event_time), event_time, event_id)
TTL toDateTime(event_time) + INTERVAL 395 DAY;

INSERT INTO {db}.triage_subjects
SELECT event_id, event_time, outcome, policy_id, policy_version, enforcement, rule, resource_kind, resource_name, reason, namespace,
       severity, team, service, engine, environment, cluster, ingested_at,
       cityHash64(policy_id, rule, resource_kind, resource_name, reason) AS fingerprint
FROM {db}.policy_decisions
WHERE (SELECT count() FROM {db}.triage_subjects) = 0 AND outcome IN ('deny', 'warn');

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.triage_subjects_mv TO {db}.triage_subjects AS
SELECT event_id, event_time, outcome, policy_id, policy_version, enforcement, rule, resource_kind, resource_name, reason, namespace,
       severity, team, service, engine, environment, cluster, ingested_at,
       cityHash64(policy_id, rule, resource_kind, resource_name, reason) AS fingerprint
FROM {db}.policy_decisions
WHERE outcome IN ('deny', 'warn');
