-- 0012: the triage workflow (triage/): every verdict appended to a history, the sticky rules,
-- and a view that keeps triage_verdicts (what M4 reads) the latest entry per subject.

-- Every verdict ever given, never changed: a label, an undo (a new entry restoring the state
-- before the undone action, `undoes` naming it) or a sticky rule's propagation (source
-- 'rule', rule_id). verdict '' is "no verdict" (an undo of a subject's first label). The
-- subject's time, fingerprint fields (policy_id, rule, resource_kind, resource_name,
-- subject_reason = the event's reason) and dimensions are copied from its event, so nothing
-- here needs a join against raw events. triaged_at strictly increases per subject.
CREATE TABLE IF NOT EXISTS {db}.triage_history
(
    entry_id String,
    action_id String,
    subject_kind LowCardinality(String),
    subject_id String,
    subject_time DateTime64(3, 'UTC'),
    fingerprint String,
    policy_id LowCardinality(String),
    rule LowCardinality(String),
    resource_kind LowCardinality(String),
    resource_name String,
    subject_reason String,
    namespace LowCardinality(String),
    severity LowCardinality(String),
    team LowCardinality(String),
    service LowCardinality(String),
    engine LowCardinality(String),
    environment LowCardinality(String),
    cluster LowCardinality(String),
    previous_verdict LowCardinality(String),
    verdict LowCardinality(String),
    reason String,
    expires_at Nullable(DateTime64(3, 'UTC')),
    source LowCardinality(String),
    rule_id String,
    analyst String,
    undoes String,
    triaged_at DateTime64(3, 'UTC'),
    INDEX idx_action_id action_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_entry_id entry_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(triaged_at)
ORDER BY (subject_kind, subject_id, triaged_at);

-- triage_verdicts gains what the latest entry says beyond the verdict: until when a benign
-- verdict holds, whether a hand or a sticky rule gave it, and the entry it comes from.
ALTER TABLE {db}.triage_verdicts ADD COLUMN IF NOT EXISTS expires_at Nullable(DateTime64(3, 'UTC')),
    ADD COLUMN IF NOT EXISTS source LowCardinality(String) DEFAULT 'hand',
    ADD COLUMN IF NOT EXISTS rule_id String DEFAULT '',
    ADD COLUMN IF NOT EXISTS fingerprint String DEFAULT '',
    ADD COLUMN IF NOT EXISTS entry_id String DEFAULT '';

-- Every history entry lands in triage_verdicts too, in the same insert: its
-- ReplacingMergeTree(triaged_at) keeps the latest per (subject_kind, subject_id).
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.triage_verdicts_mv TO {db}.triage_verdicts AS
SELECT subject_id, subject_kind, subject_time, verdict, reason, analyst, team, service,
       policy_id, engine, environment, cluster, triaged_at, expires_at, source, rule_id,
       fingerprint, entry_id
FROM {db}.triage_history;

-- Sticky rules: a verdict a fingerprint's later subjects get automatically. Append-only: a
-- rule's state changes (created active, later disabled) are new rows; the latest per rule_id
-- (changed_at) counts.
CREATE TABLE IF NOT EXISTS {db}.triage_rules
(
    rule_id String,
    fingerprint String,
    policy_id LowCardinality(String),
    rule LowCardinality(String),
    resource_kind LowCardinality(String),
    resource_name String,
    subject_reason String,
    verdict LowCardinality(String),
    reason String,
    expires_at Nullable(DateTime64(3, 'UTC')),
    state LowCardinality(String),
    created_by String,
    created_at DateTime64(3, 'UTC'),
    changed_by String,
    changed_at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (rule_id, changed_at);
