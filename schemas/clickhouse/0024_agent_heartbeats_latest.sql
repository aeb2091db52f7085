-- 0024: each agent's latest heartbeat, whenever it was. The On-call page's ranges end at the
-- current minute, so the agents with a heartbeat in a range are those whose latest heartbeat
-- is in it, with that heartbeat's report -- unless one lies at or after the range's end (an
-- agent's clock ahead, or a range ending in the past), which this table shows too, and then
-- the page reads the range's days from agent_heartbeats_1d and its edges raw, as before
-- (dashboards/queries/oncall.py `agents`). Per agent and the dimensions the page filters by,
-- the latest report (engine, status, interval by event time) and the latest heartbeat's time,
-- filled at insert time by its view: about a row per agent to read instead of the 1d rollup
-- and the raw heartbeats of a range's partial days (bench/RESULTS.md). The same heartbeat
-- inserted twice changes nothing (argMax / max). Filled once from the stored heartbeats when
-- created empty. TTL as the other rollups.
CREATE TABLE IF NOT EXISTS {db}.agent_heartbeats_latest
(
    agent_id String CODEC(ZSTD(1)),
    team LowCardinality(String),
    environment LowCardinality(String),
    cluster LowCardinality(String),
    latest AggregateFunction(argMax, Tuple(LowCardinality(String), LowCardinality(String), Nullable(Float64)), DateTime64(3, 'UTC')),
    last_heartbeat SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (agent_id, team, environment, cluster)
TTL toDateTime(last_heartbeat) + INTERVAL 400 DAY;

INSERT INTO {db}.agent_heartbeats_latest
SELECT agent_id, team, environment, cluster,
       argMaxState((engine, agent_status, heartbeat_interval_seconds), event_time),
       max(event_time)
FROM {db}.policy_events
WHERE (SELECT count() FROM {db}.agent_heartbeats_latest) = 0 AND event_kind = 'agent.heartbeat'
GROUP BY agent_id, team, environment, cluster;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.agent_heartbeats_latest_mv TO {db}.agent_heartbeats_latest AS
SELECT agent_id, team, environment, cluster,
       argMaxState((engine, agent_status, heartbeat_interval_seconds), event_time) AS latest,
       max(event_time) AS last_heartbeat
FROM {db}.policy_events
WHERE event_kind = 'agent.heartbeat'
GROUP BY agent_id, team, environment, cluster;
