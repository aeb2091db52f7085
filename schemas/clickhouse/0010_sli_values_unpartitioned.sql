-- 0010: sli_values without monthly partitions. Reads select by (sli, window, dimension, value)
-- and a time, which the sort key serves; partitions bought nothing for them, but every insert
-- spanning two months was scattered into a part per month: a 30-day backfill wrote twice the
-- parts (16 instead of 8) and ClickHouse spent ~30% more CPU inserting (2.3 s -> 1.6 s for
-- 7.8M rows, measured in chDB). Rows still expire by the TTL (in merges instead of dropped
-- parts). REPLACE keeps the rows: it fills a new table from the old one and swaps them.
CREATE OR REPLACE TABLE {db}.sli_values
(
    sli LowCardinality(String),
    window LowCardinality(String),
    dimension LowCardinality(String),
    dimension_value LowCardinality(String),
    at DateTime('UTC'),
    good Nullable(Float64),
    total Nullable(Float64),
    value Nullable(Float64),
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (sli, window, dimension, dimension_value, at)
TTL at + INTERVAL 400 DAY
AS SELECT * FROM {db}.sli_values;
