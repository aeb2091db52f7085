-- 0014: the standing of every SLO as the alert evaluator computed it (slo/alerting.py, every
-- run: each minute after the SLI batch), one row per SLO, dimension values and minute: what
-- `policyscope slo status --at <minute>` prints (budget left, good / total over the period,
-- time to exhaustion, burn per alert pair), so the dashboards read the latest standing and its
-- history over the period instead of evaluating every SLO again on each page load
-- (slo/report.py `standings`).
-- `definition` is a digest of the SLO (its name and spec) and the latency threshold it was
-- evaluated with: a reader only takes rows whose digest is that of the SLO as defined now.
-- `position` is the row's place in the evaluation (dimension values in `slo status` order).
-- Pairs as parallel arrays, in the SLO's pair order. A minute evaluated again (late data,
-- `alerts evaluate --at`) appends a new run: readers take the latest `computed_at` of each
-- (definition, at), so append-only is enough.
-- ~1 row per SLO and dimension value per minute; TTL 40 days covers the longest budget period
-- (a calendar month) and the week-ago comparison, with margin; whole days are dropped at once.
CREATE TABLE IF NOT EXISTS {db}.slo_standings
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
PARTITION BY toYYYYMMDD(at)
ORDER BY (definition, at, computed_at, position)
TTL at + INTERVAL 40 DAY
SETTINGS ttl_only_drop_parts = 1;
