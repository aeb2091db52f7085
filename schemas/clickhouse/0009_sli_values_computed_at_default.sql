-- 0009: sli_values.computed_at defaults to the server's clock at insert. A batch write leaves
-- the column out: a backfill's ~8M rows carried the same 8-byte stamp each (62 MB of the
-- Arrow payload), and one clock now orders the versions ReplacingMergeTree keeps.
ALTER TABLE {db}.sli_values MODIFY COLUMN computed_at DateTime64(3, 'UTC') DEFAULT now64(3);
