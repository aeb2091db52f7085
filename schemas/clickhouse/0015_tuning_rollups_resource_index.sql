-- 0015: the dashboard pages' reads that grew with the range: the Policy tuning page's rollups
-- (dashboards/queries/tuning.py) and a resource index for the Debug page (at the end). The
-- SLI rollups keep neither policy version nor enforcement mode, so the page read one
-- policy's raw decisions over the range (1 s per query at 30 days of 10M decisions). Two hour
-- tables, keyed by policy first (every read is of one policy), fed at insert time like the SLI
-- rollups:
-- - decisions_versions_1h: per policy, version, enforcement mode and the dimensions the pages
--   filter by (team, environment, cluster): outcome counts, the latency histogram (bucket index ->
--   count, the bounds of metrics/latency.py as in 0003) and the first / last decision time;
-- - decisions_audit_denies_1h: the denies of decisions not enforced (audit, dryrun, warn: every
--   mode but enforce) per policy, mode, those dimensions and resource: what enforcing would
--   block.
-- Analysts' verdicts change after the fact, so they stay out (the page joins the few current
-- ones). Each table is filled once from the raw decisions when it is created empty (stores
-- that already hold data); from then on its view keeps it current.

CREATE TABLE IF NOT EXISTS {db}.decisions_versions_1h
(
    hour DateTime('UTC'),
    policy_id LowCardinality(String),
    policy_version LowCardinality(String),
    enforcement LowCardinality(String),
    team LowCardinality(String),
    environment LowCardinality(String),
    cluster LowCardinality(String),
    total SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    denies SimpleAggregateFunction(sum, UInt64),
    warns SimpleAggregateFunction(sum, UInt64),
    latency_buckets SimpleAggregateFunction(sumMap, Map(UInt8, UInt64)),
    first_seen SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (policy_id, hour, policy_version, enforcement, team, environment, cluster)
TTL hour + INTERVAL 400 DAY;

INSERT INTO {db}.decisions_versions_1h
SELECT toStartOfHour(event_time) AS hour, policy_id, policy_version, enforcement, team, environment, cluster,
       count() AS total,
       countIf(outcome = 'error') AS errors,
       countIf(outcome = 'deny') AS denies,
       countIf(outcome = 'warn') AS warns,
       sumMapIf(map(toUInt8(arrayFirstIndex(b -> assumeNotNull(latency_seconds) <= b, [1e-05, 1.25e-05, 1.5e-05, 2e-05, 2.5e-05, 3e-05, 4e-05, 5e-05, 6e-05, 8e-05, 0.0001, 0.000125, 0.00015, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005, 0.0006, 0.0008, 0.001, 0.00125, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.5, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0])), toUInt64(1)),
                latency_seconds IS NOT NULL) AS latency_buckets,
       min(event_time) AS first_seen,
       max(event_time) AS last_seen
FROM {db}.policy_decisions
WHERE (SELECT count() FROM {db}.decisions_versions_1h) = 0
GROUP BY hour, policy_id, policy_version, enforcement, team, environment, cluster;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.decisions_versions_1h_mv TO {db}.decisions_versions_1h AS
SELECT toStartOfHour(event_time) AS hour, policy_id, policy_version, enforcement, team, environment, cluster,
       count() AS total,
       countIf(outcome = 'error') AS errors,
       countIf(outcome = 'deny') AS denies,
       countIf(outcome = 'warn') AS warns,
       sumMapIf(map(toUInt8(arrayFirstIndex(b -> assumeNotNull(latency_seconds) <= b, [1e-05, 1.25e-05, 1.5e-05, 2e-05, 2.5e-05, 3e-05, 4e-05, 5e-05, 6e-05, 8e-05, 0.0001, 0.000125, 0.00015, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005, 0.0006, 0.0008, 0.001, 0.00125, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.5, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0])), toUInt64(1)),
                latency_seconds IS NOT NULL) AS latency_buckets,
       min(event_time) AS first_seen,
       max(event_time) AS last_seen
FROM {db}.policy_decisions
GROUP BY hour, policy_id, policy_version, enforcement, team, environment, cluster;

CREATE TABLE IF NOT EXISTS {db}.decisions_audit_denies_1h
(
    hour DateTime('UTC'),
    policy_id LowCardinality(String),
    enforcement LowCardinality(String),
    team LowCardinality(String),
    environment LowCardinality(String),
    cluster LowCardinality(String),
    resource_kind LowCardinality(String),
    resource_name String CODEC(ZSTD(1)),
    denies SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (policy_id, hour, enforcement, team, environment, cluster, resource_kind, resource_name)
TTL hour + INTERVAL 400 DAY;

INSERT INTO {db}.decisions_audit_denies_1h
SELECT toStartOfHour(event_time) AS hour, policy_id, enforcement, team, environment, cluster, resource_kind, resource_name,
       count() AS denies
FROM {db}.policy_decisions
WHERE (SELECT count() FROM {db}.decisions_audit_denies_1h) = 0 AND outcome = 'deny' AND enforcement != 'enforce'
GROUP BY hour, policy_id, enforcement, team, environment, cluster, resource_kind, resource_name;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.decisions_audit_denies_1h_mv TO {db}.decisions_audit_denies_1h AS
SELECT toStartOfHour(event_time) AS hour, policy_id, enforcement, team, environment, cluster, resource_kind, resource_name,
       count() AS denies
FROM {db}.policy_decisions
WHERE outcome = 'deny' AND enforcement != 'enforce'
GROUP BY hour, policy_id, enforcement, team, environment, cluster, resource_kind, resource_name;

-- The Debug page's audit trail and search look a resource up by name or id
-- (`resource_name = r OR resource_id = r`), over the range, and resource is not in the sort
-- keys: one bloom filter index over both columns lets either side of the OR skip a granule
-- (idx_resource_name of 0001 / 0002 covers the name alone, so the OR read every granule).
-- A resource is in a few decisions per million: a 30-day trail reads a few granules, not all.
-- MATERIALIZE builds it for the parts already stored (a mutation; repeating it rebuilds it).
ALTER TABLE {db}.policy_decisions ADD INDEX IF NOT EXISTS idx_resource (resource_name, resource_id) TYPE bloom_filter(0.01) GRANULARITY 1;

ALTER TABLE {db}.policy_decisions MATERIALIZE INDEX idx_resource;

ALTER TABLE {db}.policy_events ADD INDEX IF NOT EXISTS idx_resource (resource_name, resource_id) TYPE bloom_filter(0.01) GRANULARITY 1;

ALTER TABLE {db}.policy_events MATERIALIZE INDEX idx_resource;
