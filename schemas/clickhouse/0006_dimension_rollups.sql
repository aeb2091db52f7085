-- 0006: the SLI rollups again, but one row per single dimension value (and one overall,
-- dimension ''), which is exactly what the batch layer reads: a month of hours is then
-- ~(hours x dimension values) rows, read without GROUPING SETS over every combination.
-- The combined rollups of 0003 stay for SLOs that filter and group by several dimensions.
-- Each table is filled once from the 0003 rollups when it is created empty (stores that
-- already hold data); from then on its view keeps it current.

CREATE TABLE IF NOT EXISTS {db}.decisions_dims_1m
(
    minute DateTime('UTC'),
    dimension LowCardinality(String),
    dimension_value LowCardinality(String),
    total SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    denies SimpleAggregateFunction(sum, UInt64),
    warns SimpleAggregateFunction(sum, UInt64),
    latency_count SimpleAggregateFunction(sum, UInt64),
    latency_buckets SimpleAggregateFunction(sumMap, Map(UInt8, UInt64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, dimension, dimension_value)
TTL minute + INTERVAL 400 DAY;

INSERT INTO {db}.decisions_dims_1m
SELECT minute, pair.1, pair.2, sum(total), sum(errors), sum(denies), sum(warns),
       sum(latency_count), sumMap(latency_buckets)
FROM {db}.decisions_1m
ARRAY JOIN [('', ''), ('team', team), ('service', service), ('policy', policy_id), ('engine', engine), ('environment', environment), ('cluster', cluster)] AS pair
WHERE (SELECT count() FROM {db}.decisions_dims_1m) = 0
GROUP BY minute, pair.1, pair.2;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.decisions_dims_1m_mv TO {db}.decisions_dims_1m AS
SELECT toStartOfMinute(event_time) AS minute, pair.1 AS dimension, pair.2 AS dimension_value,
       count() AS total,
       countIf(outcome = 'error') AS errors,
       countIf(outcome = 'deny') AS denies,
       countIf(outcome = 'warn') AS warns,
       countIf(latency_seconds IS NOT NULL) AS latency_count,
       sumMapIf(map(toUInt8(arrayFirstIndex(b -> assumeNotNull(latency_seconds) <= b, [1e-05, 1.25e-05, 1.5e-05, 2e-05, 2.5e-05, 3e-05, 4e-05, 5e-05, 6e-05, 8e-05, 0.0001, 0.000125, 0.00015, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005, 0.0006, 0.0008, 0.001, 0.00125, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.5, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0])), toUInt64(1)),
                latency_seconds IS NOT NULL) AS latency_buckets
FROM {db}.policy_decisions
ARRAY JOIN [('', ''), ('team', team), ('service', service), ('policy', policy_id), ('engine', engine), ('environment', environment), ('cluster', cluster)] AS pair
GROUP BY minute, dimension, dimension_value;

CREATE TABLE IF NOT EXISTS {db}.gates_dims_1m
(
    minute DateTime('UTC'),
    dimension LowCardinality(String),
    dimension_value LowCardinality(String),
    total SimpleAggregateFunction(sum, UInt64),
    blocked SimpleAggregateFunction(sum, UInt64),
    overridden SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, dimension, dimension_value)
TTL minute + INTERVAL 400 DAY;

INSERT INTO {db}.gates_dims_1m
SELECT minute, pair.1, pair.2, sum(total), sum(blocked), sum(overridden)
FROM {db}.gates_1m
ARRAY JOIN [('', ''), ('team', team), ('service', service), ('policy', policy_id), ('environment', environment), ('cluster', cluster)] AS pair
WHERE (SELECT count() FROM {db}.gates_dims_1m) = 0
GROUP BY minute, pair.1, pair.2;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.gates_dims_1m_mv TO {db}.gates_dims_1m AS
SELECT toStartOfMinute(event_time) AS minute, pair.1 AS dimension, pair.2 AS dimension_value,
       count() AS total,
       countIf(gate_outcome = 'blocked') AS blocked,
       countIf(gate_outcome = 'overridden') AS overridden
FROM {db}.policy_events
ARRAY JOIN [('', ''), ('team', team), ('service', service), ('policy', policy_id), ('environment', environment), ('cluster', cluster)] AS pair
WHERE event_kind = 'deploy.gate'
GROUP BY minute, dimension, dimension_value;

CREATE TABLE IF NOT EXISTS {db}.decisions_dims_1h
(
    hour DateTime('UTC'),
    dimension LowCardinality(String),
    dimension_value LowCardinality(String),
    total SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    denies SimpleAggregateFunction(sum, UInt64),
    warns SimpleAggregateFunction(sum, UInt64),
    latency_count SimpleAggregateFunction(sum, UInt64),
    latency_buckets SimpleAggregateFunction(sumMap, Map(UInt8, UInt64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, dimension, dimension_value)
TTL hour + INTERVAL 400 DAY;

INSERT INTO {db}.decisions_dims_1h
SELECT hour, pair.1, pair.2, sum(total), sum(errors), sum(denies), sum(warns),
       sum(latency_count), sumMap(latency_buckets)
FROM {db}.decisions_1h
ARRAY JOIN [('', ''), ('team', team), ('service', service), ('policy', policy_id), ('engine', engine), ('environment', environment), ('cluster', cluster)] AS pair
WHERE (SELECT count() FROM {db}.decisions_dims_1h) = 0
GROUP BY hour, pair.1, pair.2;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.decisions_dims_1h_mv TO {db}.decisions_dims_1h AS
SELECT toStartOfHour(event_time) AS hour, pair.1 AS dimension, pair.2 AS dimension_value,
       count() AS total,
       countIf(outcome = 'error') AS errors,
       countIf(outcome = 'deny') AS denies,
       countIf(outcome = 'warn') AS warns,
       countIf(latency_seconds IS NOT NULL) AS latency_count,
       sumMapIf(map(toUInt8(arrayFirstIndex(b -> assumeNotNull(latency_seconds) <= b, [1e-05, 1.25e-05, 1.5e-05, 2e-05, 2.5e-05, 3e-05, 4e-05, 5e-05, 6e-05, 8e-05, 0.0001, 0.000125, 0.00015, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005, 0.0006, 0.0008, 0.001, 0.00125, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.5, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0])), toUInt64(1)),
                latency_seconds IS NOT NULL) AS latency_buckets
FROM {db}.policy_decisions
ARRAY JOIN [('', ''), ('team', team), ('service', service), ('policy', policy_id), ('engine', engine), ('environment', environment), ('cluster', cluster)] AS pair
GROUP BY hour, dimension, dimension_value;

CREATE TABLE IF NOT EXISTS {db}.gates_dims_1h
(
    hour DateTime('UTC'),
    dimension LowCardinality(String),
    dimension_value LowCardinality(String),
    total SimpleAggregateFunction(sum, UInt64),
    blocked SimpleAggregateFunction(sum, UInt64),
    overridden SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, dimension, dimension_value)
TTL hour + INTERVAL 400 DAY;

INSERT INTO {db}.gates_dims_1h
SELECT hour, pair.1, pair.2, sum(total), sum(blocked), sum(overridden)
FROM {db}.gates_1h
ARRAY JOIN [('', ''), ('team', team), ('service', service), ('policy', policy_id), ('environment', environment), ('cluster', cluster)] AS pair
WHERE (SELECT count() FROM {db}.gates_dims_1h) = 0
GROUP BY hour, pair.1, pair.2;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.gates_dims_1h_mv TO {db}.gates_dims_1h AS
SELECT toStartOfHour(event_time) AS hour, pair.1 AS dimension, pair.2 AS dimension_value,
       count() AS total,
       countIf(gate_outcome = 'blocked') AS blocked,
       countIf(gate_outcome = 'overridden') AS overridden
FROM {db}.policy_events
ARRAY JOIN [('', ''), ('team', team), ('service', service), ('policy', policy_id), ('environment', environment), ('cluster', cluster)] AS pair
WHERE event_kind = 'deploy.gate'
GROUP BY hour, dimension, dimension_value;
