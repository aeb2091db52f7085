-- 0023: slo_standings in monthly partitions, not daily. A reader over an SLO's period (the
-- SLO page's burndown: the standing at 30 points of a 30-day period; the executive view's
-- week-ago standing) touched a part per day, and chDB's cost per part read was most of the
-- read: the burndown's statement on the pages benchmark's store, 49 ms over 31 daily parts,
-- 24 ms over 2 monthly ones (bench/RESULTS.md). Rows still expire by the TTL, in merges
-- instead of as dropped day parts (as sli_values' since 0010). REPLACE keeps the rows: it
-- fills a new table from the old one and swaps them.
CREATE OR REPLACE TABLE {db}.slo_standings
(
    slo LowCardinality(String),
    definition LowCardinality(String),
    at DateTime('UTC'),
    computed_at DateTime64(3, 'UTC'),
    position UInt32,
    dimensions Map(LowCardinality(String), String),
    objective Float64,
    period LowCardinality(String),
    good Int64,
    total Int64,
    budget_remaining Nullable(Float64),
    time_to_exhaustion_s Nullable(Float64),
    pair_severity Array(LowCardinality(String)),
    pair_long_window Array(LowCardinality(String)),
    pair_short_window Array(LowCardinality(String)),
    pair_factor Array(Float64),
    pair_burn_long Array(Nullable(Float64)),
    pair_burn_short Array(Nullable(Float64)),
    pair_firing Array(Bool)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (definition, at, computed_at, position)
TTL at + INTERVAL 40 DAY
AS SELECT * FROM {db}.slo_standings;
