-- 0003: SLI rollups, fed by materialized views at insert time, so the batch layer reads
-- O(windows x dimensions) rows, not O(events). Minute tables serve window edges and short
-- windows; hour tables serve the whole hours of long windows (metrics/windows.py combines them
-- exactly). Counts are plain sums; latency is a fixed log-scale histogram (bucket index ->
-- count, boundaries in metrics/latency.py, 10 per decade from 10 us to 100 s, index 0 = over
-- 100 s), which merges exactly across any window, unlike averaged percentiles.
-- The collector inserts each event once (collector/writer.py), so the views never see a
-- duplicate. max_ingested_at lets the batch find minutes that late events changed.
CREATE TABLE IF NOT EXISTS {db}.decisions_1m
(
    minute DateTime('UTC'),
    team LowCardinality(String),
    service LowCardinality(String),
    policy_id LowCardinality(String),
    engine LowCardinality(String),
    environment LowCardinality(String),
    cluster LowCardinality(String),
    total SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    denies SimpleAggregateFunction(sum, UInt64),
    warns SimpleAggregateFunction(sum, UInt64),
    latency_count SimpleAggregateFunction(sum, UInt64),
    latency_buckets SimpleAggregateFunction(sumMap, Map(UInt8, UInt64)),
    max_ingested_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, team, service, policy_id, engine, environment, cluster)
TTL minute + INTERVAL 400 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.decisions_1m_mv TO {db}.decisions_1m AS
SELECT toStartOfMinute(event_time) AS minute, team, service, policy_id, engine, environment, cluster,
       count() AS total,
       countIf(outcome = 'error') AS errors,
       countIf(outcome = 'deny') AS denies,
       countIf(outcome = 'warn') AS warns,
       countIf(latency_seconds IS NOT NULL) AS latency_count,
       sumMapIf(map(toUInt8(arrayFirstIndex(b -> assumeNotNull(latency_seconds) <= b, [1e-05, 1.25e-05, 1.5e-05, 2e-05, 2.5e-05, 3e-05, 4e-05, 5e-05, 6e-05, 8e-05, 0.0001, 0.000125, 0.00015, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005, 0.0006, 0.0008, 0.001, 0.00125, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.5, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0])), toUInt64(1)),
                latency_seconds IS NOT NULL) AS latency_buckets,
       max(ingested_at) AS max_ingested_at
FROM {db}.policy_decisions
GROUP BY minute, team, service, policy_id, engine, environment, cluster;

CREATE TABLE IF NOT EXISTS {db}.decisions_1h
(
    hour DateTime('UTC'),
    team LowCardinality(String),
    service LowCardinality(String),
    policy_id LowCardinality(String),
    engine LowCardinality(String),
    environment LowCardinality(String),
    cluster LowCardinality(String),
    total SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    denies SimpleAggregateFunction(sum, UInt64),
    warns SimpleAggregateFunction(sum, UInt64),
    latency_count SimpleAggregateFunction(sum, UInt64),
    latency_buckets SimpleAggregateFunction(sumMap, Map(UInt8, UInt64)),
    max_ingested_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, team, service, policy_id, engine, environment, cluster)
TTL hour + INTERVAL 400 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.decisions_1h_mv TO {db}.decisions_1h AS
SELECT toStartOfHour(event_time) AS hour, team, service, policy_id, engine, environment, cluster,
       count() AS total,
       countIf(outcome = 'error') AS errors,
       countIf(outcome = 'deny') AS denies,
       countIf(outcome = 'warn') AS warns,
       countIf(latency_seconds IS NOT NULL) AS latency_count,
       sumMapIf(map(toUInt8(arrayFirstIndex(b -> assumeNotNull(latency_seconds) <= b, [1e-05, 1.25e-05, 1.5e-05, 2e-05, 2.5e-05, 3e-05, 4e-05, 5e-05, 6e-05, 8e-05, 0.0001, 0.000125, 0.00015, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005, 0.0006, 0.0008, 0.001, 0.00125, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.5, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0])), toUInt64(1)),
                latency_seconds IS NOT NULL) AS latency_buckets,
       max(ingested_at) AS max_ingested_at
FROM {db}.policy_decisions
GROUP BY hour, team, service, policy_id, engine, environment, cluster;

CREATE TABLE IF NOT EXISTS {db}.gates_1m
(
    minute DateTime('UTC'),
    team LowCardinality(String),
    service LowCardinality(String),
    environment LowCardinality(String),
    cluster LowCardinality(String),
    policy_id LowCardinality(String),
    total SimpleAggregateFunction(sum, UInt64),
    blocked SimpleAggregateFunction(sum, UInt64),
    overridden SimpleAggregateFunction(sum, UInt64),
    max_ingested_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, team, service, environment, cluster, policy_id)
TTL minute + INTERVAL 400 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.gates_1m_mv TO {db}.gates_1m AS
SELECT toStartOfMinute(event_time) AS minute, team, service, environment, cluster, policy_id,
       count() AS total,
       countIf(gate_outcome = 'blocked') AS blocked,
       countIf(gate_outcome = 'overridden') AS overridden,
       max(ingested_at) AS max_ingested_at
FROM {db}.policy_events
WHERE event_kind = 'deploy.gate'
GROUP BY minute, team, service, environment, cluster, policy_id;

CREATE TABLE IF NOT EXISTS {db}.gates_1h
(
    hour DateTime('UTC'),
    team LowCardinality(String),
    service LowCardinality(String),
    environment LowCardinality(String),
    cluster LowCardinality(String),
    policy_id LowCardinality(String),
    total SimpleAggregateFunction(sum, UInt64),
    blocked SimpleAggregateFunction(sum, UInt64),
    overridden SimpleAggregateFunction(sum, UInt64),
    max_ingested_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, team, service, environment, cluster, policy_id)
TTL hour + INTERVAL 400 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.gates_1h_mv TO {db}.gates_1h AS
SELECT toStartOfHour(event_time) AS hour, team, service, environment, cluster, policy_id,
       count() AS total,
       countIf(gate_outcome = 'blocked') AS blocked,
       countIf(gate_outcome = 'overridden') AS overridden,
       max(ingested_at) AS max_ingested_at
FROM {db}.policy_events
WHERE event_kind = 'deploy.gate'
GROUP BY hour, team, service, environment, cluster, policy_id;
