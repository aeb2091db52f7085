-- 0023: slo_standings in monthly partitions, not daily. A reader over an SLO's period (the
-- SLO page's burndown: the standing at 30 points of a 30-day period; the executive view's
-- week-ago standing) touched a part per day, and chDB's cost per part read was most of the
-- read: the burndown's statement on the pages benchmark's store, 49 ms over 31 daily parts,
-- 24 ms over 2 monthly ones (bench/RESULTS.md). Rows still expire by the TTL, in merges
-- instead of as dropped day parts (as sli_values' since 0010). REPLACE keeps the rows: it
-- fills a new table from the old one and swaps them; the columns are the old table's (0014),
-- taken from the SELECT, and the sort key is 0014's.
CREATE OR REPLACE TABLE {db}.slo_standings
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (definition, at, computed_at, position)
TTL at + INTERVAL 40 DAY
AS SELECT * FROM {db}.slo_standings;
