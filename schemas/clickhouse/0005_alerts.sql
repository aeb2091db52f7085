-- 0005: the alert evaluator's state and history (slo/).

-- Current state of every alert: one per (SLO, severity tier, dimension values) = alert_id.
-- Re-evaluations insert a newer row (ReplacingMergeTree on updated_at); read with FINAL.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id String,
    slo LowCardinality(String),
    severity LowCardinality(String),
    dimensions Map(LowCardinality(String), String),
    state LowCardinality(String),
    pending_since Nullable(DateTime64(3, 'UTC')),
    fired_at Nullable(DateTime64(3, 'UTC')),
    resolved_at Nullable(DateTime64(3, 'UTC')),
    long_window LowCardinality(String),
    short_window LowCardinality(String),
    factor Float64,
    burn_long Nullable(Float64),
    burn_short Nullable(Float64),
    budget_remaining Nullable(Float64),
    time_to_exhaustion_s Nullable(Float64),
    silenced Bool,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY alert_id;

-- Silences and maintenance windows created from the CLI (files in <slo_dir>/silences/ are
-- read directly). Expired ones stay for the audit trail.
CREATE TABLE IF NOT EXISTS {db}.silences
(
    silence_id String,
    matchers Map(String, String),
    starts_at DateTime64(3, 'UTC'),
    ends_at DateTime64(3, 'UTC'),
    comment String,
    created_by String,
    created_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY silence_id;

-- Error-budget policy actions taken (once per SLO, dimension values, threshold and period).
CREATE TABLE IF NOT EXISTS {db}.budget_policy_events
(
    slo LowCardinality(String),
    dimensions Map(LowCardinality(String), String),
    threshold Float64,
    action LowCardinality(String),
    owner String,
    budget_consumed Float64,
    period_start DateTime('UTC'),
    at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (slo, dimensions, threshold, action, period_start);

-- Notifications that could not be delivered after every retry (or were refused).
CREATE TABLE IF NOT EXISTS {db}.notification_dead_letters
(
    notifier LowCardinality(String),
    slo LowCardinality(String),
    severity LowCardinality(String),
    alert_ids Array(String),
    error String,
    attempts UInt32,
    payload String,
    at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (at, notifier);
