"""The ClickHouse migrations, applied by the real engine (chDB), agree with schemas/events.py."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from schemas import migrations
from schemas.events import DECISIONS, EVENTS, TABLES

pytestmark = pytest.mark.integration

TABLE_IDS = [t.name for t in TABLES]
# Columns the DDL adds after the event record: (name, type, default kind).
EXTRA_COLUMNS = [("ingested_at", "DateTime64(3, 'UTC')", "DEFAULT")]


def _columns(client, database: str, table: str) -> list[tuple]:
    return client.query(
        "SELECT name, type, compression_codec, default_kind FROM system.columns "
        "WHERE database = {db:String} AND table = {table:String} ORDER BY position",
        parameters={"db": database, "table": table}).result_rows


def _show_create(client, database: str) -> dict[str, str]:
    return {t.name: str(client.command(f"SHOW CREATE TABLE {database}.{t.name}")) for t in TABLES}


def _engine_full(client, database: str, table: str) -> str:
    rows = client.query(
        "SELECT engine_full FROM system.tables WHERE database = {db:String} "
        "AND name = {table:String}", parameters={"db": database, "table": table}).result_rows
    assert len(rows) == 1, f"{database}.{table} does not exist"
    return rows[0][0]


def _migrate_before(client, database: str, version: int) -> None:
    """Every migration numbered below `version`, as a database made then holds them."""
    for mig in migrations.available():
        if mig.version < version:
            for statement in mig.statements(database):
                client.command(statement)


def _apply(client, database: str, version: int) -> None:
    """Migration `version`'s statements, as `migrate` runs them."""
    (mig,) = [m for m in migrations.available() if m.version == version]
    for statement in mig.statements(database):
        client.command(statement)


def _codec(text: str) -> str:
    """A codec as ClickHouse reports it, without the widths it fills in (Delta(8) -> Delta)."""
    text = re.sub(r"^CODEC\((.*)\)$", r"\1", text)
    return re.sub(r"\b(Delta|DoubleDelta|Gorilla)\(\d+\)", r"\1", text)


class _RecordingClient:
    """Delegates to a client and records every `command` statement sent through it."""

    def __init__(self, client):
        self._client = client
        self.commands: list[str] = []
        self.inserts: list[str] = []

    def command(self, statement, *args, **kwargs):
        self.commands.append(statement)
        return self._client.command(statement, *args, **kwargs)

    def insert(self, table, *args, **kwargs):
        self.inserts.append(table)
        return self._client.insert(table, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


@pytest.mark.parametrize("table", TABLES, ids=TABLE_IDS)
def test_migrated_columns_match_events_py_names_order_and_types(chdb_client, database, table):
    actual = [(name, ch_type) for name, ch_type, _, _ in _columns(chdb_client, database,
                                                                  table.name)]
    expected = [(c.name, c.clickhouse_type) for c in table.columns]
    expected += [(name, ch_type) for name, ch_type, _ in EXTRA_COLUMNS]
    assert actual == expected


@pytest.mark.parametrize("table", TABLES, ids=TABLE_IDS)
def test_migrated_codecs_and_defaults_match_events_py(chdb_client, database, table):
    rows = {name: (codec, kind) for name, _, codec, kind in _columns(chdb_client, database,
                                                                     table.name)}
    for column in table.columns:
        codec, default_kind = rows[column.name]
        assert _codec(codec) == column.codec, column.name
        assert default_kind == "", f"{column.name} has a DDL default; the normalizer fills it"
    for name, _, default_kind in EXTRA_COLUMNS:
        assert rows[name][1] == default_kind


def test_migrate_applies_every_file_once_and_a_second_run_is_a_no_op(chdb_client):
    database = "t_migrate_twice"
    chdb_client.command(f"DROP DATABASE IF EXISTS {database}")
    chdb_client.command(f"CREATE DATABASE {database}")
    try:
        first = migrations.migrate(chdb_client, database)
        assert first == [f"{m.version:04d}_{m.name}" for m in migrations.available()]
        before = _show_create(chdb_client, database)

        assert migrations.migrate(chdb_client, database) == []
        assert _show_create(chdb_client, database) == before
        versions = chdb_client.query(
            f"SELECT version FROM {database}.schema_migrations FINAL ORDER BY version"
        ).result_rows
        assert [v for (v,) in versions] == [m.version for m in migrations.available()]
    finally:
        chdb_client.command(f"DROP DATABASE IF EXISTS {database}")


def test_migrating_an_already_migrated_database_sends_no_ddl(chdb_client, database):
    spy = _RecordingClient(chdb_client)
    assert migrations.migrate(spy, database) == []
    # Only the bookkeeping table's CREATE ... IF NOT EXISTS, which every run issues.
    assert [c for c in spy.commands if "schema_migrations" not in c] == []
    assert spy.inserts == []


@pytest.mark.parametrize("table", TABLES, ids=TABLE_IDS)
def test_tables_start_with_the_default_395_day_ttl(chdb_client, database, table):
    assert "TTL toDateTime(event_time) + toIntervalDay(395)" in _engine_full(
        chdb_client, database, table.name)


def test_apply_retention_changes_the_ttl_and_repeating_it_does_not_alter(chdb_client, database):
    migrations.apply_retention(chdb_client, database, 30)
    for table in (DECISIONS, EVENTS):
        engine = _engine_full(chdb_client, database, table.name)
        assert "TTL toDateTime(event_time) + toIntervalDay(30)" in engine, engine
        assert "toIntervalDay(395)" not in engine

    before = _show_create(chdb_client, database)
    spy = _RecordingClient(chdb_client)
    migrations.apply_retention(spy, database, 30)
    assert [c for c in spy.commands if c.lstrip().upper().startswith("ALTER")] == []
    assert _show_create(chdb_client, database) == before


def test_apply_retention_with_a_prefix_of_the_current_days_still_alters(chdb_client, database):
    # 39 is a textual prefix of the current 395: the check must not mistake one for the other.
    migrations.apply_retention(chdb_client, database, 39)
    for table in TABLES:
        assert "toIntervalDay(39)" in _engine_full(chdb_client, database, table.name)


def test_migrate_with_retention_days_sets_the_ttl(chdb_client, database):
    assert migrations.migrate(chdb_client, database, retention_days=7) == []
    for table in TABLES:
        assert "toIntervalDay(7)" in _engine_full(chdb_client, database, table.name)


def test_migration_files_are_numbered_from_1_without_gaps_or_duplicates():
    shipped = sorted(entry.name for entry in
                     resources.files("schemas").joinpath("clickhouse").iterdir()
                     if entry.name.endswith(".sql"))
    pattern = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
    misnamed = [name for name in shipped if not pattern.match(name)]
    assert misnamed == [], "migration files must be named NNNN_snake_name.sql"
    numbers = [int(pattern.match(name).group(1)) for name in shipped]
    assert numbers == list(range(1, len(numbers) + 1))
    assert [m.version for m in migrations.available()] == numbers


@pytest.mark.parametrize("migration", migrations.available(),
                         ids=lambda m: f"{m.version:04d}_{m.name}")
def test_every_migration_statement_is_safe_to_repeat(migration):
    for statement in migration.statements("db"):
        assert "{db}" not in statement
        guarded_insert = statement.startswith("INSERT INTO ") and re.search(
            r"WHERE \(SELECT count\(\) FROM (\S+)\) = 0", statement) and re.search(
            r"WHERE \(SELECT count\(\) FROM (\S+)\) = 0", statement).group(1) \
            == statement.split()[2]  # fills its own table only while that is empty
        rebuild = re.match(r"CREATE OR REPLACE TABLE (\S+)\s", statement)
        self_rebuild = rebuild and statement.endswith(f"AS SELECT * FROM {rebuild.group(1)}")
        # refills its own latest rows whose new column is still '' (the 0022 test repeats it)
        refill = re.match(r"INSERT INTO (\S+) \(", statement)
        self_refill = refill and re.search(
            rf"FROM \(SELECT \* FROM {re.escape(refill.group(1))} FINAL\s+WHERE [^)]*"
            r"\b\w+ = ''\)", statement)
        assert guarded_insert or self_rebuild or self_refill or re.match(
            r"(CREATE (TABLE|VIEW|MATERIALIZED VIEW|DATABASE) IF NOT EXISTS|"
            r"ALTER TABLE \S+ (ADD|DROP|MODIFY) \w+ IF (NOT )?EXISTS|"
            r"ALTER TABLE \S+ MODIFY (COLUMN|TTL|SETTING|COMMENT|QUERY)\s|"
            # rebuilding an index, or a column computed by its DEFAULT, is harmless
            r"ALTER TABLE \S+ MATERIALIZE (INDEX|COLUMN) \w+$)",
            statement), f"not idempotent: {statement[:80]}"


def test_0010_rebuilds_sli_values_unpartitioned_keeping_its_rows_and_can_repeat(chdb_client):
    database = "t_migrate_0010"
    chdb_client.command(f"DROP DATABASE IF EXISTS {database}")
    chdb_client.command(f"CREATE DATABASE {database}")
    try:
        _migrate_before(chdb_client, database, 10)
        assert "PARTITION BY" in _engine_full(chdb_client, database, "sli_values")
        chdb_client.command(
            f"INSERT INTO {database}.sli_values (sli, window, dimension, dimension_value, at, "
            "good, total, value) VALUES ('M1', '1h', '', '', '2026-10-31 23:00:00', 9, 10, 0.9),"
            " ('M1', '1h', 'team', 'a', '2026-11-01 00:00:00', NULL, 0, NULL)")
        rows = f"SELECT * FROM {database}.sli_values ORDER BY at"
        before = chdb_client.query(rows).result_rows
        for _ in range(2):  # a crash before it is recorded runs it again
            _apply(chdb_client, database, 10)
            engine = _engine_full(chdb_client, database, "sli_values")
            assert "PARTITION BY" not in engine and "ReplacingMergeTree(computed_at)" in engine
            assert "TTL at + toIntervalDay(400)" in engine
            assert chdb_client.query(rows).result_rows == before
    finally:
        chdb_client.command(f"DROP DATABASE IF EXISTS {database}")


def test_0023_rebuilds_slo_standings_in_monthly_partitions_keeping_its_rows_and_can_repeat(
        chdb_client):
    database = "t_migrate_0023"
    chdb_client.command(f"DROP DATABASE IF EXISTS {database}")
    chdb_client.command(f"CREATE DATABASE {database}")
    try:
        _migrate_before(chdb_client, database, 23)
        assert "PARTITION BY toYYYYMMDD(at)" in _engine_full(chdb_client, database,
                                                              "slo_standings")
        chdb_client.command(
            f"INSERT INTO {database}.slo_standings (slo, definition, at, computed_at, position,"
            " dimensions, objective, period, good, total, budget_remaining, pair_severity) "
            "VALUES ('s', 'd1', '2026-10-31 23:59:00', '2026-10-31 23:59:30', 0, {'team': 'a'},"
            " 0.99, '30d', 9, 10, 0.5, ['page']), ('s', 'd1', '2026-11-01 00:00:00', "
            "'2026-11-01 00:00:30', 1, {}, 0.99, '30d', 8, 10, NULL, [])")
        rows = f"SELECT * FROM {database}.slo_standings ORDER BY at"
        columns = ("SELECT name, type FROM system.columns WHERE database = {d:String} AND "
                   "table = 'slo_standings' ORDER BY position")
        before = chdb_client.query(rows).result_rows
        types = chdb_client.query(columns, parameters={"d": database}).result_rows
        for _ in range(2):  # a crash before it is recorded runs it again
            _apply(chdb_client, database, 23)
            assert chdb_client.query(columns, parameters={"d": database}).result_rows == types
            engine = _engine_full(chdb_client, database, "slo_standings")
            assert "PARTITION BY toYYYYMM(at)" in engine
            assert "ORDER BY (definition, at, computed_at, position)" in engine
            assert "TTL at + toIntervalDay(40)" in engine
            assert chdb_client.query(rows).result_rows == before
            parts = chdb_client.query(
                "SELECT uniq(partition) FROM system.parts WHERE database = {d:String} AND "
                "table = 'slo_standings' AND active", parameters={"d": database}).result_rows
            assert parts == [(2,)]  # October and November
    finally:
        chdb_client.command(f"DROP DATABASE IF EXISTS {database}")


def test_0011_fills_five_minute_rollups_from_the_minutes_and_keeps_them_current(chdb_client):
    """Rows stored before the migration are rolled into five minutes once; rows inserted after
    reach them through the views; both equal the minute rollups summed per five minutes."""
    from datetime import datetime, timedelta, timezone

    from tests.builders.rows import ev, insert_decisions, insert_events

    database = "t_migrate_0011"
    chdb_client.command(f"DROP DATABASE IF EXISTS {database}")
    chdb_client.command(f"CREATE DATABASE {database}")
    previous = chdb_client.database
    chdb_client.database = database
    base = datetime(2026, 11, 2, 9, 58, tzinfo=timezone.utc)

    def traffic(first: int) -> None:
        times = [base + timedelta(seconds=37 * i) for i in range(first, first + 40)]
        insert_decisions(chdb_client, [
            {"event_time": t, "team": "ab"[i % 2], "outcome": ["allow", "deny", "error"][i % 3],
             "latency_seconds": [None, 0.004, 0.2][i % 3]} for i, t in enumerate(times)])
        insert_events(chdb_client, [ev("deploy.gate", t, team="ab"[i % 2], deploy_id=f"d{i}",
                                       gate_outcome=["passed", "blocked"][i % 2])
                                    for i, t in enumerate(times)])

    def agree() -> None:
        for table, measures in [
                ("decisions", "sum(total), sum(errors), sum(denies), sum(warns), "
                              "sum(latency_count), toString(sumMap(latency_buckets))"),
                ("gates", "sum(total), sum(blocked), sum(overridden)")]:
            fives = chdb_client.query(
                f"SELECT five, dimension, dimension_value, {measures} FROM {table}_dims_5m "
                "GROUP BY five, dimension, dimension_value ORDER BY ALL").result_rows
            minutes = chdb_client.query(
                f"SELECT toStartOfFiveMinutes(minute) AS five, dimension, dimension_value, "
                f"{measures} FROM {table}_dims_1m GROUP BY five, dimension, dimension_value "
                "ORDER BY ALL").result_rows
            assert fives == minutes and len(fives) > 4, table

    try:
        _migrate_before(chdb_client, database, 11)
        traffic(0)
        _apply(chdb_client, database, 11)
        agree()
        traffic(40)
        agree()
    finally:
        chdb_client.database = previous
        chdb_client.command(f"DROP DATABASE IF EXISTS {database}")


# -- the table registry (schemas/tables.py) -----------------------------------------------------

def _created(client, database: str, views: bool) -> set[str]:
    engine = "engine = 'MaterializedView'" if views else "engine != 'MaterializedView'"
    return {r[0] for r in client.query(
        f"SELECT name FROM system.tables WHERE database = {{db:String}} AND {engine}",
        parameters={"db": database}).result_rows}


def test_every_table_of_the_registry_exists_after_the_migrations(chdb_client, database):
    from schemas import tables

    for name in (*tables.all_tables(), *tables.all_views()):
        assert chdb_client.command(f"EXISTS TABLE {database}.{name}") == 1, name


def test_every_table_and_view_the_migrations_create_is_in_the_registry(chdb_client, database):
    from schemas import tables

    assert _created(chdb_client, database, views=False) == set(tables.all_tables())
    assert _created(chdb_client, database, views=True) == set(tables.all_views())


def test_the_registrys_columns_exist_in_their_tables(chdb_client, database):
    """Rollup time columns, the watermark probes' columns, and every SLI dimension's column
    in each table its SLI reads (a rollup family: its combined minute table)."""
    from schemas import slis, tables

    def columns(table: str) -> set[str]:
        return {name for name, *_ in _columns(chdb_client, database, table)}

    for family in tables.ROLLUPS.values():
        for rollup in family.tables:
            assert rollup.time_column in columns(rollup.name), rollup
    for source in tables.SLI_SOURCES:
        assert {source.event_time, source.ingested_at} <= columns(source.table), source
    for sli in slis.SLIS.values():
        for source in sli.sources:
            family = tables.ROLLUPS.get(source)
            table = family.table("1m") if family else source
            assert set(sli.dimensions.values()) <= columns(table), (sli.id, table)


def test_0015_fills_the_tuning_rollups_from_raw_decisions_and_keeps_them_current(chdb_client):
    """Decisions stored before the migration are rolled up once; decisions inserted after
    reach the rollups through the views; both equal the raw decisions counted per hour,
    policy, version, mode and dimensions (and the not-enforced denies per resource)."""
    from datetime import datetime, timedelta, timezone

    from tests.builders.dashboards import insert_decisions  # its rows carry version, mode

    database = "t_migrate_0015"
    chdb_client.command(f"DROP DATABASE IF EXISTS {database}")
    chdb_client.command(f"CREATE DATABASE {database}")
    previous = chdb_client.database
    chdb_client.database = database
    base = datetime(2026, 11, 2, 9, 40, tzinfo=timezone.utc)

    def traffic(first: int) -> None:
        insert_decisions(chdb_client, [
            {"event_time": base + timedelta(seconds=97 * i), "event_id": f"d{i}",
             "policy_id": "pq"[i % 2], "policy_version": ["v1", "v2", ""][i % 3],
             "enforcement": ["enforce", "audit", "dryrun", "warn"][i % 4], "team": "ab"[i % 7 % 2],
             "resource_kind": "Pod", "resource_name": f"r{i % 3}",
             "outcome": ["allow", "deny", "warn", "error", "deny"][i % 5],
             "latency_seconds": [None, 0.004, 0.2][i % 3]} for i in range(first, first + 60)])

    def agree() -> None:
        keys = "policy_id, policy_version, enforcement, team, environment, cluster"
        rolled = chdb_client.query(
            f"SELECT hour, {keys}, sum(total), sum(denies), sum(warns), sum(errors), "
            "toString(sumMap(latency_buckets)), min(first_seen), max(last_seen) "
            f"FROM decisions_versions_1h GROUP BY hour, {keys} ORDER BY ALL").result_rows
        raw = chdb_client.query(
            f"SELECT toStartOfHour(event_time) AS hour, {keys}, count(), "
            "countIf(outcome = 'deny'), countIf(outcome = 'warn'), countIf(outcome = 'error'), "
            "toString(sumMapIf(map(toUInt8(arrayFirstIndex(b -> assumeNotNull(latency_seconds) "
            "<= b, {bounds:Array(Float64)})), toUInt64(1)), latency_seconds IS NOT NULL)), "
            f"min(event_time), max(event_time) FROM policy_decisions GROUP BY hour, {keys} "
            "ORDER BY ALL", parameters={"bounds": list(BOUNDS)}).result_rows
        assert rolled == raw and len(rolled) > 10
        keys = "policy_id, enforcement, team, environment, cluster, resource_kind, resource_name"
        denies = chdb_client.query(
            f"SELECT hour, {keys}, sum(denies) FROM decisions_audit_denies_1h "
            f"GROUP BY hour, {keys} ORDER BY ALL").result_rows
        raw = chdb_client.query(
            f"SELECT toStartOfHour(event_time) AS hour, {keys}, count() FROM policy_decisions "
            f"WHERE outcome = 'deny' AND enforcement IN ('audit', 'dryrun', 'warn') "
            f"GROUP BY hour, {keys} ORDER BY ALL").result_rows
        assert denies == raw and len(denies) > 3

    from metrics.latency import BOUNDS

    try:
        _migrate_before(chdb_client, database, 15)
        traffic(0)
        _apply(chdb_client, database, 15)
        agree()
        traffic(60)
        agree()
    finally:
        chdb_client.database = previous
        chdb_client.command(f"DROP DATABASE IF EXISTS {database}")


def test_0019_gives_stored_and_later_triage_subjects_the_hash_of_their_id(chdb_client):
    """Decisions stored before 0019 get `id_hash` by its MATERIALIZE, later ones by its
    DEFAULT through 0018's view; both are cityHash64 of the event id, and 0019 can repeat."""
    from datetime import datetime, timezone

    from tests.builders.rows import dec, insert_decisions

    database = "t_migrate_0019"
    chdb_client.command(f"DROP DATABASE IF EXISTS {database}")
    chdb_client.command(f"CREATE DATABASE {database}")
    previous = chdb_client.database
    chdb_client.database = database
    try:
        _migrate_before(chdb_client, database, 19)
        when = datetime(2026, 11, 2, 10, tzinfo=timezone.utc)
        insert_decisions(chdb_client, [dec(when, "deny", event_id="before")])
        for _ in range(2):  # a crash before it is recorded runs it again
            _apply(chdb_client, database, 19)
        insert_decisions(chdb_client, [dec(when, "warn", event_id="after"),
                                       dec(when, "allow", event_id="allowed")])
        rows = chdb_client.query(
            f"SELECT event_id, id_hash, cityHash64(event_id) FROM {database}.triage_subjects "
            "ORDER BY event_id").result_rows
        assert [r[0] for r in rows] == ["after", "before"]  # allows are no subjects
        assert all(r[1] == r[2] != 0 for r in rows)
        parts, with_hash = chdb_client.query(
            "SELECT (SELECT count() FROM system.parts WHERE database = {d:String} AND "
            "table = 'triage_subjects' AND active), (SELECT count() FROM system.parts_columns "
            "WHERE database = {d:String} AND table = 'triage_subjects' AND active AND "
            "column = 'id_hash')", parameters={"d": database}).result_rows[0]
        assert parts >= 2 and with_hash == parts  # in every part, not computed when read
    finally:
        chdb_client.database = previous
        chdb_client.command(f"DROP DATABASE IF EXISTS {database}")


def test_0022_gives_stored_and_later_decision_verdicts_their_decisions_fields(chdb_client):
    """A decision verdict stored before 0022 gets its decision's version, mode, outcome and
    resource from triage_subjects; one whose decision is gone keeps ''; a violation's has
    none. 0022 can repeat without adding rows, and later history entries reach
    triage_verdicts with the fields through the view it changed."""
    from datetime import datetime, timezone

    from tests.builders.dashboards import insert_decisions
    from tests.builders.rows import dec

    database = "t_migrate_0022"
    chdb_client.command(f"DROP DATABASE IF EXISTS {database}")
    chdb_client.command(f"CREATE DATABASE {database}")
    previous = chdb_client.database
    chdb_client.database = database
    when = datetime(2026, 11, 2, 10, tzinfo=timezone.utc)

    def entry(kind, subject, at, **fields):
        columns = {"entry_id": f"e-{subject}-{at.minute}", "subject_kind": kind,
                   "subject_id": subject, "subject_time": when, "policy_id": "p",
                   "verdict": "false_positive", "triaged_at": at, **fields}
        chdb_client.insert("triage_history", [list(columns.values())],
                           column_names=list(columns))

    def verdicts():
        return chdb_client.query(
            "SELECT subject_id, policy_version, enforcement, outcome, resource_kind, "
            "resource_name FROM triage_verdicts FINAL ORDER BY subject_id").result_rows

    try:
        _migrate_before(chdb_client, database, 22)
        insert_decisions(chdb_client, [
            dec(when, "deny", event_id="d1", policy_id="p", policy_version="v3",
                enforcement="audit", resource_kind="Pod", resource_name="api"),
            dec(when, "warn", event_id="d2", policy_id="p", policy_version="v4",
                enforcement="enforce", resource_kind="Deployment", resource_name="web")])
        for subject in ("d1", "d2", "gone"):  # "gone": its decision is no longer stored
            entry("decision", subject, datetime(2026, 11, 2, 11, tzinfo=timezone.utc))
        entry("decision", "d2", datetime(2026, 11, 2, 11, 5, tzinfo=timezone.utc))  # latest
        entry("violation", "v1", datetime(2026, 11, 2, 11, tzinfo=timezone.utc))
        chdb_client.command("SYSTEM STOP MERGES triage_verdicts")  # rows counted as inserted
        counts = []
        for _ in range(2):  # a crash before it is recorded runs it again
            _apply(chdb_client, database, 22)
            counts.append(chdb_client.command("SELECT count() FROM triage_verdicts"))
        assert counts == [5 + 2, 5 + 2]  # d1 and d2 refilled once, nothing more
        assert verdicts() == [("d1", "v3", "audit", "deny", "Pod", "api"),
                              ("d2", "v4", "enforce", "warn", "Deployment", "web"),
                              ("gone", "", "", "", "", ""), ("v1", "", "", "", "", "")]
        entry("decision", "d3", datetime(2026, 11, 2, 12, tzinfo=timezone.utc),
              policy_version="v5", enforcement="dryrun", outcome="deny",
              resource_kind="Pod", resource_name="db")
        assert verdicts()[2] == ("d3", "v5", "dryrun", "deny", "Pod", "db")
    finally:
        chdb_client.database = previous
        chdb_client.command(f"DROP DATABASE IF EXISTS {database}")


def test_a_resource_lookup_in_the_raw_tables_is_pruned_by_the_one_index_over_name_and_id(
        chdb_client, database):
    """After 0025 the raw decisions and events keep one resource index, over name and id
    (0015), and the Debug page's lookup (`resource_name = r OR resource_id = r`) skips
    granules by it: of 4 parts of one granule each, only the one holding the resource is
    read."""
    from datetime import datetime, timedelta, timezone

    for table in (DECISIONS.name, EVENTS.name):
        indexes = {name for (name,) in chdb_client.query(
            "SELECT name FROM system.data_skipping_indices WHERE database = {db:String} "
            "AND table = {t:String}", parameters={"db": database, "t": table}).result_rows}
        assert "idx_resource" in indexes and "idx_resource_name" not in indexes, indexes

    at = datetime(2026, 11, 2, tzinfo=timezone.utc)
    for part in range(4):  # one insert each: a part of one granule
        chdb_client.insert(DECISIONS.name, [[f"e{part}", at + timedelta(minutes=part),
                                             f"pod-{part}", f"uid-{part}"]],
                           column_names=["event_id", "event_time", "resource_name",
                                         "resource_id"])
    plan = "\n".join(row[0] for row in chdb_client.query(
        f"EXPLAIN indexes = 1 SELECT event_id FROM {DECISIONS.name} "
        "WHERE resource_name = 'uid-2' OR resource_id = 'uid-2'").result_rows)
    skip = plan[plan.index("Skip"):]
    assert "idx_resource" in skip and "Granules: 1/4" in skip, plan
