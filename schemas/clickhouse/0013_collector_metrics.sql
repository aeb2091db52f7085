-- 0013: the collector's own counters (collector/self_metrics.py writes them every
-- `self_metrics_interval`; collector/self_metrics_read.py reads them back as deltas and rates).
-- One row per series per snapshot, like a Prometheus sample: `metric` with up to two labels
-- (`source`: the receiver / signal; `label`: a reject reason, a truncated column, a refused
-- limit), `kind` 'counter' (cumulative since `started_at`) or 'gauge' (the value at `at`).
-- Counters are cumulative, not deltas: a snapshot that fails to be written loses nothing (the
-- next one carries the totals) and a duplicated one adds nothing. A run of a collector process
-- is (instance, started_at); `seq` is 1 on the first snapshot a run stored, so a reader knows
-- when a counter starts from zero (a restart) without guessing from gaps.
-- ORDER BY series then time: a reader takes differences along each series as it is stored.
-- PARTITION BY day with TTL 35 days (a 30-day SLO window on telemetry loss, plus margin):
-- whole days are dropped at once. ~35 rows per snapshot, every 10 s: ~300k rows a day per
-- collector, a few MB compressed.
CREATE TABLE IF NOT EXISTS {db}.collector_metrics
(
    at DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    instance LowCardinality(String),
    hostname LowCardinality(String),
    started_at DateTime64(3, 'UTC'),
    seq UInt32 CODEC(Delta, ZSTD(1)),
    metric LowCardinality(String),
    kind LowCardinality(String),
    source LowCardinality(String),
    label LowCardinality(String),
    value Float64 CODEC(Gorilla, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(at)
ORDER BY (metric, instance, started_at, source, label, at)
TTL toDateTime(at) + INTERVAL 35 DAY
SETTINGS ttl_only_drop_parts = 1
