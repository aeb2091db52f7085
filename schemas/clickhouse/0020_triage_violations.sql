-- 0020: the triage queue's violations, one row per violation. A violation is a queue subject
-- from its first 'opened' event (its time and fields) while its latest event is 'opened' or
-- 'updated'. Read from policy_events, each of the queue's reads (its totals, its page's
-- groups, their subjects) grouped every violation event of the range by violation id and
-- hashed each one's fingerprint fields. This table keeps that state per violation, filled at
-- insert time by its view: an AggregatingMergeTree whose rows merge into one per violation,
-- so a read merges a few rows per violation and hashes nothing.
--   id_hash        cityHash64(violation_id): what the queue groups by and checks against the
--                  current verdicts (as 0019 for decisions)
--   opened_at      the first 'opened' event's time (NULL: none yet)
--   fingerprint    that event's fingerprint hash (cityHash64 of policy_id, rule,
--                  resource_kind, resource_name, reason: as 0018 stores it for decisions)
--   fields         that event's fields, what a subject shows and the filters compare
--   status         the status of the latest event
--   ingested_at    when the latest of its events landed (sticky rules: "ingested since")
--   event_time     the latest event's time (the TTL: these are raw rows aggregated, so the
--                  table keeps the raw tables' retention, schemas/migrations.py
--                  `apply_retention`)
-- "First" and "latest" are by event time. The same event inserted twice changes nothing
-- (min / max / argMin / argMax). The states hold plain values compared by a time: with
-- tuples as comparison keys, or the status as String, merging them cost more than grouping
-- the raw events did.
-- Filled once from the stored violation events when created empty.
CREATE TABLE IF NOT EXISTS {db}.triage_violations
(
    id_hash UInt64,
    violation_id String CODEC(ZSTD(1)),
    opened_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    fingerprint AggregateFunction(argMin, UInt64, DateTime64(3, 'UTC')),
    fields AggregateFunction(argMin, Tuple(String, String, String, String, String, String, String, String, String, String, String, String), DateTime64(3, 'UTC')),
    status AggregateFunction(argMax, LowCardinality(String), DateTime64(3, 'UTC')),
    ingested_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    event_time SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (id_hash, violation_id)
TTL toDateTime(event_time) + INTERVAL 395 DAY;

INSERT INTO {db}.triage_violations
SELECT cityHash64(violation_id) AS id_hash, violation_id,
       min(if(s = 'opened', t, NULL)) AS opened_at,
       argMinStateIf(h, t, s = 'opened') AS fingerprint,
       argMinStateIf(f, t, s = 'opened') AS fields,
       argMaxState(s, t) AS status,
       max(i) AS ingested_at,
       max(t) AS event_time
FROM (SELECT violation_id, event_time AS t, ingested_at AS i, violation_status AS s,
             cityHash64(policy_id, rule, resource_kind, resource_name, reason) AS h,
             (toString(policy_id), toString(rule), toString(resource_kind), resource_name, reason,
              toString(namespace), toString(severity), toString(team), toString(service),
              toString(engine), toString(environment), toString(cluster)) AS f
      FROM {db}.policy_events
      WHERE event_kind = 'policy.violation')
WHERE (SELECT count() FROM {db}.triage_violations) = 0
GROUP BY violation_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.triage_violations_mv TO {db}.triage_violations AS
SELECT cityHash64(violation_id) AS id_hash, violation_id,
       min(if(s = 'opened', t, NULL)) AS opened_at,
       argMinStateIf(h, t, s = 'opened') AS fingerprint,
       argMinStateIf(f, t, s = 'opened') AS fields,
       argMaxState(s, t) AS status,
       max(i) AS ingested_at,
       max(t) AS event_time
FROM (SELECT violation_id, event_time AS t, ingested_at AS i, violation_status AS s,
             cityHash64(policy_id, rule, resource_kind, resource_name, reason) AS h,
             (toString(policy_id), toString(rule), toString(resource_kind), resource_name, reason,
              toString(namespace), toString(severity), toString(team), toString(service),
              toString(engine), toString(environment), toString(cluster)) AS f
      FROM {db}.policy_events
      WHERE event_kind = 'policy.violation')
GROUP BY violation_id;
