"""The event record (schemas/events.py) and everything derived from it agree.

Generated docs, arrow schemas and pandera frame models are checked here; the ClickHouse DDL is
checked against a real engine in tests/integration/test_migrations.py.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pandera.errors
import polars as pl
import pyarrow as pa
import pytest

from schemas import conventions
from schemas.events import (
    DECISIONS,
    EVENT_KINDS,
    EVENT_NAME_ATTRIBUTE,
    EVENTS,
    OUTCOMES,
    TABLES,
    UID_ATTRIBUTE,
    ValueType,
)
from schemas.frames import FRAMES, DecisionFrame, EventFrame

pytestmark = pytest.mark.unit

TABLE_IDS = [t.name for t in TABLES]

# The Arrow type each ClickHouse type must travel as, written out independently of arrow_type().
ARROW_FOR_CLICKHOUSE = {
    "String": pa.string(),
    "LowCardinality(String)": pa.string(),
    "DateTime64(3, 'UTC')": pa.timestamp("ms", tz="UTC"),
    "Nullable(Float64)": pa.float64(),
    "Nullable(UInt64)": pa.uint64(),
    "Nullable(Bool)": pa.bool_(),
    "Map(LowCardinality(String), String)": pa.map_(pa.string(), pa.string()),
}


# -- conventions.md ----------------------------------------------------------------------------

def test_conventions_md_is_rendered_from_events_py():
    on_disk = conventions.PATH.read_text(encoding="utf-8")
    assert on_disk == conventions.render(), (
        "schemas/conventions.md is stale: run `python -m schemas.conventions` and commit it")


def test_conventions_check_flag_exits_1_when_the_file_is_stale(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "conventions.md"
    stale.write_text("# out of date\n", encoding="utf-8")
    monkeypatch.setattr(conventions, "PATH", stale)
    assert conventions.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().out
    assert stale.read_text(encoding="utf-8") == "# out of date\n"  # --check never writes
    assert conventions.main([]) == 0
    assert conventions.main(["--check"]) == 0


@pytest.mark.parametrize("table", TABLES, ids=TABLE_IDS)
def test_conventions_md_documents_every_column_and_attribute(table):
    text = conventions.render()
    for column in table.columns:
        assert f"`{column.name}`" in text
        for key in column.attributes:
            assert f"`{key}`" in text


def test_every_column_without_an_attribute_has_a_documented_record_source():
    from_record = {c.name for t in TABLES for c in t.columns if not c.attributes}
    assert from_record == set(conventions.RECORD_SOURCES)


def test_every_value_type_has_a_documented_coercion_rule():
    assert set(conventions.VALUE_RULES) == set(ValueType)


# -- events.py self-consistency ----------------------------------------------------------------

@pytest.mark.parametrize("kind", EVENT_KINDS.values(), ids=list(EVENT_KINDS))
def test_every_required_column_of_a_kind_exists_in_its_table_and_has_an_attribute(kind):
    columns = {c.name: c for c in kind.table.columns}
    for name in kind.required:
        assert name in columns, f"{kind.name} requires {name}, not a column of {kind.table.name}"
        assert columns[name].attributes, f"{kind.name} requires {name}, which no attribute fills"


def test_every_kind_is_named_by_its_key_and_decisions_alone_go_to_policy_decisions():
    assert all(name == kind.name for name, kind in EVENT_KINDS.items())
    assert [k for k, v in EVENT_KINDS.items() if v.table is DECISIONS] == ["policy.decision"]


@pytest.mark.parametrize("table", TABLES, ids=TABLE_IDS)
def test_attribute_keys_are_unique_within_a_table(table):
    keys = Counter(key for c in table.columns for key in c.attributes)
    assert [k for k, n in keys.items() if n > 1] == []
    assert EVENT_NAME_ATTRIBUTE not in keys and UID_ATTRIBUTE not in keys


@pytest.mark.parametrize("table", TABLES, ids=TABLE_IDS)
def test_column_names_are_unique_within_a_table(table):
    assert len(set(table.column_names)) == len(table.column_names)


@pytest.mark.parametrize("table", TABLES, ids=TABLE_IDS)
def test_enum_columns_have_allowed_values_and_a_valid_default(table):
    for c in table.columns:
        if c.value_type is ValueType.ENUM:
            assert c.allowed, f"enum column {c.name} has no allowed values"
            assert all(v == v.strip().lower() for v in c.allowed), c.allowed
            assert c.default == "" or c.default in c.allowed, (c.name, c.default)
            assert c.clickhouse_type == "LowCardinality(String)"
        else:
            assert c.allowed == (), f"{c.name} is not an enum but lists allowed values"


@pytest.mark.parametrize("table", TABLES, ids=TABLE_IDS)
def test_only_nullable_columns_default_to_null(table):
    for c in table.columns:
        if c.name == "attributes":
            continue  # a map: empty, never NULL; filled by the normalizer
        assert (c.default is None) == c.nullable, (c.name, c.default, c.clickhouse_type)


@pytest.mark.parametrize("table", TABLES, ids=TABLE_IDS)
def test_arrow_schema_matches_the_column_list(table):
    schema = table.arrow_schema()
    assert tuple(schema.names) == table.column_names
    for column, arrow_field in zip(table.columns, schema):
        assert arrow_field.type == ARROW_FOR_CLICKHOUSE[column.clickhouse_type], column.name


def test_both_tables_start_with_the_same_common_columns():
    common = [n for n in DECISIONS.column_names if n in EVENTS.column_names]
    assert list(DECISIONS.column_names[:len(common)]) == common
    assert list(EVENTS.column_names[:len(common)]) == common


# -- pandera frame models ----------------------------------------------------------------------

def _decisions(**overrides) -> pl.DataFrame:
    data = {
        "event_time": [dt.datetime(2025, 1, 1, 12, tzinfo=dt.timezone.utc)] * 2,
        "team": ["payments", "search"],
        "service": ["api", "web"],
        "policy_id": ["k8s.require-non-root", "k8s.no-latest-tag"],
        "engine": ["kyverno", "gatekeeper"],
        "environment": ["prod", "staging"],
        "cluster": ["eu-1", "us-1"],
        "enforcement": ["enforce", "audit"],
        "severity": ["high", ""],
        "outcome": ["allow", "deny"],
        "latency_seconds": [0.004, None],
    }
    data.update(overrides)
    return pl.DataFrame(data, schema_overrides={"latency_seconds": pl.Float64})


def _events(**overrides) -> pl.DataFrame:
    data = {
        "event_time": [dt.datetime(2025, 1, 1, 12, tzinfo=dt.timezone.utc)] * 2,
        "team": ["payments", "search"],
        "service": ["api", ""],
        "policy_id": ["k8s.require-non-root", ""],
        "engine": ["kyverno", ""],
        "environment": ["prod", "prod"],
        "cluster": ["eu-1", "eu-1"],
        "enforcement": ["enforce", "enforce"],
        "severity": ["high", ""],
        "event_kind": ["policy.violation", "agent.heartbeat"],
        "violation_id": ["v-1", ""],
        "violation_status": ["opened", ""],
        "remediation_kind": ["", ""],
        "gate_outcome": ["", ""],
        "agent_status": ["", "healthy"],
        "dropped_events": pl.Series([None, 3], dtype=pl.UInt64),
        "workload_enforced": pl.Series([None, None], dtype=pl.Boolean),
        "image": ["", ""],
        "vulnerability_id": ["", ""],
    }
    data.update(overrides)
    return pl.DataFrame(data)


def test_a_valid_decision_frame_passes_with_event_time_in_milliseconds():
    out = DecisionFrame.validate(_decisions(), lazy=True)
    assert out.schema["event_time"] == pl.Datetime("ms", "UTC")
    assert out.height == 2


def test_a_valid_event_frame_passes():
    assert EventFrame.validate(_events(), lazy=True).height == 2


@pytest.mark.parametrize(("model", "frame", "column", "value"), [
    pytest.param(DecisionFrame, lambda: _decisions(outcome=["allow", "alow"]), "outcome",
                 "alow", id="a decision with outcome 'alow' fails naming the outcome column"),
    pytest.param(DecisionFrame, lambda: _decisions(latency_seconds=[0.1, -0.5]),
                 "latency_seconds", "-0.5", id="a negative latency fails"),
    pytest.param(DecisionFrame, lambda: _decisions(enforcement=["enforce", ""]), "enforcement",
                 "", id="an empty enforcement fails: it always has the default 'enforce'"),
    pytest.param(EventFrame, lambda: _events(event_kind=["policy.violation", "policy.decision"]),
                 "event_kind", "policy.decision",
                 id="a decision kind in the events frame fails: decisions have their own table"),
    pytest.param(EventFrame, lambda: _events(violation_status=["opened", "closed"]),
                 "violation_status", "closed", id="an unknown violation status fails"),
])
def test_an_invalid_frame_fails_naming_the_column_and_value(model, frame, column, value):
    with pytest.raises(pandera.errors.SchemaErrors) as caught:
        model.validate(frame(), lazy=True)
    failures = caught.value.failure_cases
    assert failures["column"].to_list() == [column]
    assert failures["failure_case"].to_list() == [value]
    assert f"'{column}'" in str(caught.value)


def test_a_decision_frame_without_the_outcome_column_fails():
    with pytest.raises(pandera.errors.SchemaErrors, match="outcome"):
        DecisionFrame.validate(_decisions().drop("outcome"), lazy=True)


@pytest.mark.parametrize("table", TABLES, ids=TABLE_IDS)
def test_frame_models_use_real_columns_and_the_events_py_allowed_values(table):
    schema = FRAMES[table.name].to_schema()
    columns = {c.name: c for c in table.columns}
    kinds = {k.name for k in EVENT_KINDS.values() if k.table is table}
    for name, frame_column in schema.columns.items():
        assert name in columns, f"{FRAMES[table.name].__name__}.{name} is not a column"
        column = columns[name]
        allowed = [set(check.statistics["allowed_values"]) for check in frame_column.checks
                   if check.name == "isin"]
        if column.value_type is ValueType.ENUM:
            # '' is allowed unless every kind stored in this table requires the column.
            required = all(name in k.required for k in EVENT_KINDS.values()
                           if k.table is table)
            expected = set(column.allowed) | ({""} if column.default == "" and not required
                                              else set())
            assert allowed == [expected], name
        elif name == "event_kind":
            assert allowed == [kinds]
        else:
            assert allowed == [], name
        assert frame_column.nullable == column.nullable, name


def test_frame_outcomes_are_the_events_py_constant():
    schema = DecisionFrame.to_schema()
    (check,) = schema.columns["outcome"].checks
    assert list(check.statistics["allowed_values"]) == list(OUTCOMES)


# -- the SLI catalogue and the table registry (schemas/slis.py, schemas/tables.py) --------------

def test_every_source_an_sli_reads_is_a_registered_table_probed_for_late_rows():
    from schemas import slis, tables

    for sli in slis.SLIS.values():
        for source in sli.sources:
            assert source in tables.ROLLUPS or source in tables.all_tables(), (sli.id, source)
            assert tables.probed(source), (sli.id, source)


def test_the_catalogue_lists_each_sli_once_with_a_known_kind_and_family():
    from schemas import slis

    assert len(slis.SLIS) == len(set(slis.SLIS)) == 21
    assert {s.kind for s in slis.SLIS.values()} <= set(slis.KINDS)
    assert {s.family for s in slis.SLIS.values()} == set(slis.FAMILIES)
    assert all(s.kind == "ratio" for s in slis.SLIS.values() if s.bad_numerator or s.counts)


def test_ratio_validation_uses_the_catalogues_ratio_slis():
    from schemas import slis
    from schemas.frames import RATIO_SLIS

    assert RATIO_SLIS == tuple(s.id for s in slis.SLIS.values() if s.kind == "ratio")
    assert RATIO_SLIS == slis.SLO_SLIS


def test_the_rollup_families_have_every_grain_per_value_and_all_but_5m_combined():
    from schemas import tables

    for family in tables.ROLLUPS.values():
        assert [t.grain for t in family.tables if t.per_value] == list(tables.GRAINS)
        assert [t.grain for t in family.tables if not t.per_value] == ["1m", "1h", "1d"]
        with pytest.raises(KeyError, match="no 5m rollup"):
            family.table("5m")
