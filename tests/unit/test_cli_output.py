"""The CLI's one printer (policyscope/cli/output.py): table, JSON and CSV of the same rows."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from policyscope.cli import output

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
COLUMNS = ["n", "at", "labels", "tags", "price"]
ROWS = [(1, AT, {"team": "a"}, ["x", "y"], Decimal("1.50")),
        (22, date(2026, 11, 3), {}, (), None)]


def test_a_table_has_a_header_a_dashed_rule_and_a_row_count():
    lines = output.to_table(COLUMNS, ROWS).splitlines()
    assert lines[0].split() == COLUMNS
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert [len(dashes) for dashes in lines[1].split()] == [2, 25, 13, 10, 5]
    assert lines[2].split()[:2] == ["1", "2026-11-02T12:00:00+00:00"]
    assert lines[-1] == "(2 rows)"
    assert len(lines) == 2 + len(ROWS) + 1


def test_a_table_counts_one_row_and_none():
    assert output.to_table(["a"], [(1,)]).splitlines()[-1] == "(1 row)"
    assert output.to_table(["a"], []).splitlines() == ["a", "-", "(0 rows)"]


def test_columns_line_up_with_the_widest_value():
    assert output.to_table(["k", "v"], [("long-key", 1), ("k", 22)]).splitlines() == [
        "k         v ",
        "--------  --",
        "long-key  1 ",
        "k         22",
        "(2 rows)"]


def test_json_is_a_list_of_objects_with_dates_as_iso_text():
    records = json.loads(output.render(COLUMNS, ROWS, "json"))
    assert records == [
        {"n": 1, "at": "2026-11-02T12:00:00+00:00", "labels": {"team": "a"},
         "tags": ["x", "y"], "price": "1.50"},
        {"n": 22, "at": "2026-11-03", "labels": {}, "tags": [], "price": None}]


def test_to_json_makes_nested_values_plain_and_indents():
    text = output.to_json({"when": AT, "raw": b"\x01\xff", "nested": [{"d": date(2026, 1, 2)}]})
    assert json.loads(text) == {"when": "2026-11-02T12:00:00+00:00", "raw": "01ff",
                                "nested": [{"d": "2026-01-02"}]}
    assert text.startswith("{\n  ")


def test_csv_has_a_header_and_json_encodes_nested_values():
    text = output.render(COLUMNS, ROWS, "csv")
    assert text.splitlines()[0] == "n,at,labels,tags,price"
    assert not text.endswith("\n")
    header, first, second = list(csv.reader(io.StringIO(text)))
    assert header == COLUMNS
    assert first == ["1", "2026-11-02T12:00:00+00:00", '{"team": "a"}', '["x", "y"]', "1.50"]
    assert json.loads(first[2]) == {"team": "a"} and json.loads(first[3]) == ["x", "y"]
    assert second == ["22", "2026-11-03", "{}", "[]", ""]


def test_csv_quotes_commas_and_quotes():
    assert output.to_csv(["one", "two"], [(1, 'a,"b"')]).splitlines() == [
        "one,two", '1,"a,""b"""']


def test_render_table_is_to_table():
    assert output.render(COLUMNS, ROWS, "table") == output.to_table(COLUMNS, ROWS)


def test_an_unknown_format_raises_naming_the_formats():
    with pytest.raises(ValueError, match="'xml' is not one of table, json, csv"):
        output.render(COLUMNS, ROWS, "xml")


def test_emit_prints_through_render(capsys):
    output.emit(["a"], [(1,)], "csv")
    output.emit_json([{"a": AT}])
    assert capsys.readouterr().out == 'a\n1\n[\n  {\n    "a": "2026-11-02T12:00:00+00:00"\n  }\n]\n'


@pytest.mark.parametrize("value,cell", [(None, "-"), (0.123456, "0.123"), (20.0, "20"),
                                        (14.4, "14.4"), (123456.0, "1.23e+05")])
def test_a_number_cell_has_three_significant_digits(value, cell):
    assert output.number(value) == cell


def test_labels_join_key_value_pairs():
    assert output.labels({"team": "a", "service": "b"}) == "team=a,service=b"
    assert output.labels({"team": "a", "slo": "s"}, "; ") == "team=a; slo=s"
    assert output.labels({}) == ""
