-- 0019: the triage queue checks its decisions against the current verdicts by an integer.
-- Every read of the queue's totals and page (triage/store.py `_queued_sql`) checks each deny
-- and warn of its range against the current verdicts' ids; by the event id string that hashed
-- 650k strings for a 30-day queue of a 10M-decision store (45 ms of a 100 ms read). `id_hash`
-- is cityHash64 of the event id: a DEFAULT, so the rows the view of 0018 inserts get it, and
-- MATERIALIZE computes it for the parts already stored (a mutation; until it has run, reads
-- compute the same default). The queue compares it with cityHash64 of the verdicts' ids; two
-- ids of one range with one 64-bit hash would let a subject without a verdict pass for one
-- with it, as two groups with one fingerprint hash would merge (0018).
ALTER TABLE {db}.triage_subjects ADD COLUMN IF NOT EXISTS id_hash UInt64 DEFAULT cityHash64(event_id);

ALTER TABLE {db}.triage_subjects MATERIALIZE COLUMN id_hash;
