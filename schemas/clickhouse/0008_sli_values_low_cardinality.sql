-- 0008: sli_values.dimension_value as LowCardinality(String). A store holds a few hundred
-- distinct values (teams, services, policies, ...) in millions of rows; dictionary-encoded,
-- a 30-day backfill's ~8M rows insert ~1.5x faster (sorting and compressing small integer
-- keys instead of strings) and read back smaller. Existing rows are rewritten by the mutation.
ALTER TABLE {db}.sli_values MODIFY COLUMN dimension_value LowCardinality(String);
