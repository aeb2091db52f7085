-- 0021: each agent's latest heartbeat per day. The On-call page lists the agents that sent a
-- heartbeat in its range with their latest report (M8's known agents); read from
-- policy_events, a 30-day range grouped every heartbeat of the 30 days by agent (an agent
-- beating every 10 s sends 8,640 a day). This rollup keeps, per day, agent and the
-- dimensions the page filters by, the latest report (engine, status, interval by event time)
-- and the latest heartbeat's time, filled at insert time by its view; the page reads the
-- range's whole days here and only its partial days at the edges from the raw heartbeats
-- (dashboards/queries/oncall.py `agents`). The same heartbeat inserted twice changes nothing
-- (argMax / max). Filled once from the stored heartbeats when created empty. TTL as the
-- other rollups.
CREATE TABLE IF NOT EXISTS {db}.agent_heartbeats_1d
(
    day DateTime('UTC'),
    agent_id String CODEC(ZSTD(1)),
    team LowCardinality(String),
    environment LowCardinality(String),
    cluster LowCardinality(String),
    latest AggregateFunction(argMax, Tuple(LowCardinality(String), LowCardinality(String), Nullable(Float64)), DateTime64(3, 'UTC')),
    last_heartbeat SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, agent_id, team, environment, cluster)
TTL day + INTERVAL 400 DAY;

INSERT INTO {db}.agent_heartbeats_1d
SELECT toDateTime(toStartOfDay(event_time), 'UTC') AS day, agent_id, team, environment,
       cluster, argMaxState((engine, agent_status, heartbeat_interval_seconds), event_time),
       max(event_time)
FROM {db}.policy_events
WHERE (SELECT count() FROM {db}.agent_heartbeats_1d) = 0 AND event_kind = 'agent.heartbeat'
GROUP BY day, agent_id, team, environment, cluster;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.agent_heartbeats_1d_mv TO {db}.agent_heartbeats_1d AS
SELECT toDateTime(toStartOfDay(event_time), 'UTC') AS day, agent_id, team, environment,
       cluster,
       argMaxState((engine, agent_status, heartbeat_interval_seconds), event_time) AS latest,
       max(event_time) AS last_heartbeat
FROM {db}.policy_events
WHERE event_kind = 'agent.heartbeat'
GROUP BY day, agent_id, team, environment, cluster;
