"""The ground every layer stands on: configuration loading (`config`), the one way into
ClickHouse (`storage`), the duration and size grammar (`units`) and the read-only SQL guard
(`readonly_sql`). It imports nothing of PolicyScope's; everything else may import it."""
