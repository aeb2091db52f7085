-- 0025: idx_resource_name (0001, 0002) dropped from the raw decisions and events. Since 0015,
-- idx_resource covers a resource's name and id in one bloom filter, and every read that looks
-- a resource up in these tables (the Debug page's search and audit trail:
-- `resource_name = r OR resource_id = r`) is pruned by it. The name-only index could not prune
-- that OR but was still read and tested on every such read (about a fifth of a 30-day search
-- over 10M decisions: bench/RESULTS.md), and built on every insert.
ALTER TABLE {db}.policy_decisions DROP INDEX IF EXISTS idx_resource_name;

ALTER TABLE {db}.policy_events DROP INDEX IF EXISTS idx_resource_name;
