-- 0022: a verdict carries its decision's version, enforcement mode and outcome, and the
-- subject's resource. The Policy tuning page counts a policy's verdicts by version, by mode
-- (what enforcing an audit policy would block, and how many of those denies are known false
-- positives) and by resource (dashboards/queries/tuning.py `verdict_counts`). Verdicts held
-- only the policy and the dimensions, so the page looked each verdict's decision up among the
-- policy's denies and warns of triage_subjects (a 30-day range of a 10M-decision store: the
-- page's costliest read). History entries now copy these fields from the subject like the
-- others (triage/entries.py), the view of 0012 carries them to triage_verdicts, and the page
-- reads triage_verdicts alone. A violation has no version, mode or outcome: ''.
ALTER TABLE {db}.triage_history ADD COLUMN IF NOT EXISTS policy_version LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS enforcement LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS outcome LowCardinality(String) DEFAULT '';

ALTER TABLE {db}.triage_verdicts ADD COLUMN IF NOT EXISTS policy_version LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS enforcement LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS outcome LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS resource_kind LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS resource_name String DEFAULT '';

-- The same view, with the new columns: MODIFY QUERY swaps it without a moment when
-- history entries would not reach triage_verdicts.
ALTER TABLE {db}.triage_verdicts_mv MODIFY QUERY
SELECT subject_id, subject_kind, subject_time, verdict, reason, analyst, team, service,
       policy_id, engine, environment, cluster, triaged_at, expires_at, source, rule_id,
       fingerprint, entry_id, policy_version, enforcement, outcome, resource_kind,
       resource_name
FROM {db}.triage_history;

-- The decision verdicts stored before: their latest row again, with the fields of its
-- decision (the same triaged_at, so this row, inserted last, is the one FINAL keeps). A
-- decision subject's outcome is never '' (deny or warn), so a repeat finds nothing to fill.
-- A verdict whose decision is no longer stored (past its TTL) keeps ''.
INSERT INTO {db}.triage_verdicts (subject_id, subject_kind, subject_time, verdict, reason,
    analyst, team, service, policy_id, engine, environment, cluster, triaged_at, expires_at,
    source, rule_id, fingerprint, entry_id, policy_version, enforcement, outcome,
    resource_kind, resource_name)
SELECT v.subject_id, v.subject_kind, v.subject_time, v.verdict, v.reason, v.analyst, v.team,
       v.service, v.policy_id, v.engine, v.environment, v.cluster, v.triaged_at, v.expires_at,
       v.source, v.rule_id, v.fingerprint, v.entry_id, s.policy_version, s.enforcement,
       s.outcome, s.resource_kind, s.resource_name
FROM (SELECT * FROM {db}.triage_verdicts FINAL
      WHERE subject_kind = 'decision' AND outcome = '') AS v
INNER JOIN (SELECT event_id, any(policy_version) AS policy_version,
                   any(enforcement) AS enforcement, any(outcome) AS outcome,
                   any(resource_kind) AS resource_kind, any(resource_name) AS resource_name
            FROM {db}.triage_subjects
            WHERE event_id IN (SELECT subject_id FROM {db}.triage_verdicts
                               WHERE subject_kind = 'decision' AND outcome = '')
            GROUP BY event_id) AS s ON s.event_id = v.subject_id;
