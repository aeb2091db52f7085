-- 0007: day rollups of the hour rollups (combined and per dimension, decisions and gates).
-- A 30-day window then reads 30 day rows and at most 46 hour rows per key instead of 720
-- hour rows: the SLO evaluator and every minute's SLI run sum long windows from days, whole
-- hours at both edges and minutes inside the edge hours (metrics/windows.py `edges`).
-- The views read the hour tables' inserts (views cascade: every block the hour views write
-- passes through these), so sums stay exact. Each table is filled once from its hour table
-- when it is created empty (stores that already hold data).

CREATE TABLE IF NOT EXISTS {db}.decisions_1d
(
    day DateTime('UTC'),
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
    latency_buckets SimpleAggregateFunction(sumMap, Map(UInt8, UInt64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, team, service, policy_id, engine, environment, cluster)
TTL day + INTERVAL 400 DAY;

INSERT INTO {db}.decisions_1d
SELECT toStartOfDay(hour) AS day, team, service, policy_id, engine, environment, cluster,
       sum(total) AS total, sum(errors) AS errors, sum(denies) AS denies, sum(warns) AS warns,
       sum(latency_count) AS latency_count, sumMap(latency_buckets) AS latency_buckets
FROM {db}.decisions_1h
WHERE (SELECT count() FROM {db}.decisions_1d) = 0
GROUP BY day, team, service, policy_id, engine, environment, cluster;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.decisions_1d_mv TO {db}.decisions_1d AS
SELECT toStartOfDay(hour) AS day, team, service, policy_id, engine, environment, cluster,
       sum(total) AS total, sum(errors) AS errors, sum(denies) AS denies, sum(warns) AS warns,
       sum(latency_count) AS latency_count, sumMap(latency_buckets) AS latency_buckets
FROM {db}.decisions_1h
GROUP BY day, team, service, policy_id, engine, environment, cluster;

CREATE TABLE IF NOT EXISTS {db}.gates_1d
(
    day DateTime('UTC'),
    team LowCardinality(String),
    service LowCardinality(String),
    environment LowCardinality(String),
    cluster LowCardinality(String),
    policy_id LowCardinality(String),
    total SimpleAggregateFunction(sum, UInt64),
    blocked SimpleAggregateFunction(sum, UInt64),
    overridden SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, team, service, environment, cluster, policy_id)
TTL day + INTERVAL 400 DAY;

INSERT INTO {db}.gates_1d
SELECT toStartOfDay(hour) AS day, team, service, environment, cluster, policy_id,
       sum(total) AS total, sum(blocked) AS blocked, sum(overridden) AS overridden
FROM {db}.gates_1h
WHERE (SELECT count() FROM {db}.gates_1d) = 0
GROUP BY day, team, service, environment, cluster, policy_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.gates_1d_mv TO {db}.gates_1d AS
SELECT toStartOfDay(hour) AS day, team, service, environment, cluster, policy_id,
       sum(total) AS total, sum(blocked) AS blocked, sum(overridden) AS overridden
FROM {db}.gates_1h
GROUP BY day, team, service, environment, cluster, policy_id;

CREATE TABLE IF NOT EXISTS {db}.decisions_dims_1d
(
    day DateTime('UTC'),
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
PARTITION BY toYYYYMM(day)
ORDER BY (day, dimension, dimension_value)
TTL day + INTERVAL 400 DAY;

INSERT INTO {db}.decisions_dims_1d
SELECT toStartOfDay(hour) AS day, dimension, dimension_value,
       sum(total) AS total, sum(errors) AS errors, sum(denies) AS denies, sum(warns) AS warns,
       sum(latency_count) AS latency_count, sumMap(latency_buckets) AS latency_buckets
FROM {db}.decisions_dims_1h
WHERE (SELECT count() FROM {db}.decisions_dims_1d) = 0
GROUP BY day, dimension, dimension_value;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.decisions_dims_1d_mv TO {db}.decisions_dims_1d AS
SELECT toStartOfDay(hour) AS day, dimension, dimension_value,
       sum(total) AS total, sum(errors) AS errors, sum(denies) AS denies, sum(warns) AS warns,
       sum(latency_count) AS latency_count, sumMap(latency_buckets) AS latency_buckets
FROM {db}.decisions_dims_1h
GROUP BY day, dimension, dimension_value;

CREATE TABLE IF NOT EXISTS {db}.gates_dims_1d
(
    day DateTime('UTC'),
    dimension LowCardinality(String),
    dimension_value LowCardinality(String),
    total SimpleAggregateFunction(sum, UInt64),
    blocked SimpleAggregateFunction(sum, UInt64),
    overridden SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, dimension, dimension_value)
TTL day + INTERVAL 400 DAY;

INSERT INTO {db}.gates_dims_1d
SELECT toStartOfDay(hour) AS day, dimension, dimension_value,
       sum(total) AS total, sum(blocked) AS blocked, sum(overridden) AS overridden
FROM {db}.gates_dims_1h
WHERE (SELECT count() FROM {db}.gates_dims_1d) = 0
GROUP BY day, dimension, dimension_value;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.gates_dims_1d_mv TO {db}.gates_dims_1d AS
SELECT toStartOfDay(hour) AS day, dimension, dimension_value,
       sum(total) AS total, sum(blocked) AS blocked, sum(overridden) AS overridden
FROM {db}.gates_dims_1h
GROUP BY day, dimension, dimension_value;
