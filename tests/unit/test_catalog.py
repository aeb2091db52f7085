"""The policy catalog's parsing and validation (catalog/parse.py, catalog/model.py): every
problem of every file is reported with its file, line, key path and what was expected; ids are
unique across files; the digest depends on the content only; the shipped example catalog
(policies/) is valid and covers every policy the demo evaluates."""

from __future__ import annotations

import doctest
import re
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import catalog.parse
from catalog.model import Catalog, Control, Policy
from catalog.parse import CatalogInvalid, check_paths, check_sources, parse_text
from schemas.events import SEVERITIES

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "policies"

ENTRY = """\
  - id: {id}
    title: Containers run as a non-root user
    owner: platform
    category: workload-hardening
    severity: {severity}
    controls:
      - {{framework: CIS Kubernetes Benchmark v1.8, control: 5.2.7}}
      - {{framework: SOC 2, control: CC6.1}}
    runbook: {runbook}
"""


def entry(id: str = "k8s.require-non-root", severity: str = "high",
          runbook: str = "https://wiki.example.com/runbooks/non-root") -> str:
    return ENTRY.format(id=id, severity=severity, runbook=runbook)


def doc(*entries: str) -> str:
    return "policies:\n" + "".join(entries)


def messages(text: str, source: str = "p.yaml") -> list[str]:
    return [str(p) for p in parse_text(text, source)[1]]


def test_a_valid_entry_becomes_a_typed_record():
    (policy,), problems = parse_text(doc(entry()), "p.yaml")
    assert problems == []
    assert policy == Policy(
        id="k8s.require-non-root", title="Containers run as a non-root user", owner="platform",
        category="workload-hardening", severity="high",
        controls=(Control("CIS Kubernetes Benchmark v1.8", "5.2.7"), Control("SOC 2", "CC6.1")),
        runbook="https://wiki.example.com/runbooks/non-root")
    assert (policy.source, policy.line) == ("p.yaml", 2)


def test_values_are_the_text_written_so_a_numeric_control_keeps_its_digits():
    text = doc(entry().replace("control: 5.2.7", "control: 5.20"))
    (policy,), _ = parse_text(text)
    assert policy.controls[0].control == "5.20"


@pytest.mark.parametrize("severity", ["hgh", "High", "warning", "P1"])
def test_an_unknown_severity_is_named_with_its_line_and_the_five_allowed(severity):
    assert messages(doc(entry(), entry("k8s.b", severity=severity))) == [
        f"p.yaml:15: policies[1].severity: unknown severity {severity!r}; expected one of "
        "critical, high, medium, low, info"]
    assert SEVERITIES == ("critical", "high", "medium", "low", "info")


@pytest.mark.parametrize("runbook,fragment", [
    pytest.param("javascript:alert(1)", "has scheme 'javascript'", id="javascript"),
    pytest.param("file:///etc/passwd", "has scheme 'file'", id="file"),
    pytest.param("ftp://files.example.com/r.txt", "has scheme 'ftp'", id="ftp"),
    pytest.param("docs/runbooks/x.md", "is not an absolute URL", id="a relative path"),
    pytest.param("https:///nohost", "names no host", id="no host"),
    pytest.param("https://wiki.example.com:port/x", "is not a URL", id="a bad port"),
])
def test_a_runbook_that_is_not_an_http_link_is_refused(runbook, fragment):
    (problem,) = parse_text(doc(entry(runbook=runbook)), "p.yaml")[1]
    assert (problem.line, problem.path) == (10, "policies[0].runbook")
    assert fragment in problem.message and "expected an http or https URL" in problem.message


def test_http_and_https_runbooks_in_any_case_are_accepted():
    text = doc(entry(runbook="HTTPS://Wiki.Example.com/a"), entry("k8s.b", runbook="http://w/b"))
    assert parse_text(text)[1] == []


def test_every_missing_required_key_is_named_at_the_entrys_line():
    text = doc("  - id: k8s.a\n    title: A\n    severity: low\n")
    assert messages(text) == [f"p.yaml:2: policies[0]: missing required key {k!r}"
                              for k in ("owner", "category", "controls", "runbook")]


def test_an_unknown_key_suggests_the_nearest_known_one():
    text = doc(entry().replace("    owner: platform\n", "    ownr: platform\n"))
    assert messages(text) == [
        "p.yaml:2: policies[0]: missing required key 'owner'",
        "p.yaml:4: policies[0].ownr: unknown key 'ownr' (did you mean 'owner'?)"]


def test_a_key_given_twice_is_refused_naming_both_lines():
    text = doc(entry() + "    runbook: https://wiki.example.com/other\n")
    assert messages(text) == [
        "p.yaml:11: policies[0].runbook: key given twice (first on line 10)"]


@pytest.mark.parametrize("replace,expected", [
    pytest.param(("title: Containers run as a non-root user", "title: [a, b]"),
                 "p.yaml:3: policies[0].title: expected a string, got a list", id="a list"),
    pytest.param(("title: Containers run as a non-root user", "title:"),
                 "p.yaml:3: policies[0].title: expected a non-empty string, got nothing",
                 id="nothing"),
    pytest.param(("id: k8s.require-non-root", "id: 'k8s require non root'"),
                 "p.yaml:2: policies[0].id: policy id 'k8s require non root' holds whitespace",
                 id="an id with spaces"),
    pytest.param(("- {framework: SOC 2, control: CC6.1}", "- {framework: SOC 2}"),
                 "p.yaml:9: policies[0].controls[1]: missing required key 'control'",
                 id="a control without its item"),
    pytest.param(("- {framework: SOC 2, control: CC6.1}", "- SOC 2 CC6.1"),
                 "p.yaml:9: policies[0].controls[1]: expected a control {framework, control} "
                 "(a mapping), got 'SOC 2 CC6.1'", id="a control as one string"),
    pytest.param(("- {framework: SOC 2, control: CC6.1}",
                  "- {framework: CIS Kubernetes Benchmark v1.8, control: 5.2.7}"),
                 "p.yaml:9: policies[0].controls[1]: control CIS Kubernetes Benchmark v1.8 "
                 "5.2.7 is listed twice (first on line 8)", id="a control twice"),
])
def test_a_value_of_the_wrong_shape_says_what_was_expected(replace, expected):
    (message,) = messages(doc(entry().replace(*replace)))
    assert message.startswith(expected)


@pytest.mark.parametrize("text,expected", [
    pytest.param("", "p.yaml: the file is empty", id="empty"),
    pytest.param("- id: x\n", "p.yaml:1: expected a catalog (a mapping), got a list",
                 id="a bare list"),
    pytest.param("policy:\n  - id: x\n", "p.yaml:1: policy: unknown key 'policy' (did you "
                                         "mean 'policies'?)", id="a misspelt section"),
    pytest.param("policies: {id: x}\n", "p.yaml:1: policies: expected a list of policies, "
                                        "got a mapping", id="policies as a mapping"),
    pytest.param("policies:\n  - id: [\n", "p.yaml:3: not valid YAML", id="broken YAML"),
    pytest.param("a: 1\n---\nb: 2\n", "p.yaml:2: not valid YAML", id="two documents"),
])
def test_a_malformed_file_is_named_with_its_position(text, expected):
    assert messages(text)[0].startswith(expected)


def test_all_problems_of_a_file_are_reported_at_once_and_no_partial_catalog_is_given():
    text = doc(entry(severity="urgent"), entry("k8s.b", runbook="javascript:x"), entry("k8s.c"))
    policies, problems = parse_text(text, "p.yaml")
    assert [p.path for p in problems] == ["policies[0].severity", "policies[1].runbook"]
    assert [p.id for p in policies] == ["k8s.c"]  # valid on its own, but:
    checked = check_sources([("p.yaml", text)])
    with pytest.raises(CatalogInvalid) as raised:
        checked.catalog
    assert len(raised.value.problems) == 2


def test_an_id_given_twice_across_files_names_where_it_was_first_given(tmp_path):
    (tmp_path / "a.yaml").write_text(doc(entry("k8s.a"), entry("k8s.b")))
    (tmp_path / "b.yaml").write_text(doc(entry("k8s.c"), entry("k8s.b")))
    checked = check_paths([tmp_path])
    assert [str(p) for p in checked.problems] == [
        f"{tmp_path / 'b.yaml'}:11: policy id 'k8s.b' is given twice: first at "
        f"{tmp_path / 'a.yaml'}:11"]
    assert [p.id for p in checked.policies] == ["k8s.a", "k8s.b", "k8s.c"]


def test_an_id_given_twice_in_one_file_is_refused_too():
    problems = check_sources([("p.yaml", doc(entry("k8s.a"), entry("k8s.a")))]).problems
    assert [str(p) for p in problems] == [
        "p.yaml:11: policy id 'k8s.a' is given twice: first at p.yaml:2"]


def test_missing_paths_and_empty_directories_are_problems(tmp_path):
    (tmp_path / "empty").mkdir()
    problems = check_paths([tmp_path / "empty", tmp_path / "nope.yaml"]).problems
    assert [p.message for p in problems] == [
        "no catalog files (*.yaml, *.yml) in this directory", "no such file or directory"]


def test_a_merge_key_gives_shared_defaults_and_own_keys_win():
    text = textwrap.dedent("""\
        policies:
          - &base
            id: k8s.a
            title: A
            owner: platform
            category: hardening
            severity: high
            controls: []
            runbook: https://wiki.example.com/a
          - <<: *base
            id: k8s.b
            severity: low
        """)
    policies, problems = parse_text(text)
    assert problems == []
    assert [(p.id, p.severity, p.owner, p.controls) for p in policies] == [
        ("k8s.a", "high", "platform", ()), ("k8s.b", "low", "platform", ())]


def test_the_digest_depends_on_the_content_only():
    a, _ = parse_text(doc(entry("k8s.a"), entry("k8s.b")), "one.yaml")
    b, _ = parse_text("# reordered, other file\n" + doc(entry("k8s.b"), entry("k8s.a")),
                      "two.yaml")
    assert Catalog.of(a).digest == Catalog.of(b).digest
    changed, _ = parse_text(doc(entry("k8s.a"), entry("k8s.b", severity="low")))
    assert Catalog.of(changed).digest != Catalog.of(a).digest
    assert re.fullmatch(r"[0-9a-f]{64}", Catalog.of(a).digest)


def test_a_catalog_refuses_duplicate_ids_and_round_trips_through_dicts():
    (policy,), _ = parse_text(doc(entry()))
    with pytest.raises(ValueError, match="given twice: k8s.require-non-root"):
        Catalog.of([policy, policy])
    assert Policy.from_dict(policy.to_dict()) == policy


def test_the_doctests_of_the_parser_pass():
    result = doctest.testmod(catalog.parse)
    assert result.attempted > 0 and result.failed == 0


# -- the shipped example catalog ------------------------------------------------------------

def test_the_example_catalog_is_valid_and_covers_every_demo_policy():
    from policyscope.demo.engine import CATALOG as DEMO

    checked = check_paths([EXAMPLE])
    assert checked.problems == ()
    ids = {p.id for p in checked.catalog}
    assert {spec.id for spec in DEMO} <= ids
    for policy in checked.catalog:
        assert policy.controls, f"{policy.id} maps to no compliance control"
        demo = next((s for s in DEMO if s.id == policy.id), None)
        if demo is not None:  # the catalog's default severity is the one the demo reports
            assert policy.severity == demo.severity, policy.id


def test_the_example_catalogs_runbooks_are_pages_of_this_repository():
    for policy in check_paths([EXAMPLE]).catalog:
        path = urlsplit(policy.runbook).path
        relative = path.split("/blob/main/", 1)[1]
        assert (ROOT / relative).is_file(), f"{policy.id}: {relative} does not exist"
        assert policy.id in (ROOT / relative).read_text()


# -- where the package's SQL lives ------------------------------------------------------------

def test_only_the_catalog_store_talks_to_clickhouse_and_it_names_tables_from_the_registry():
    import ast

    from schemas.tables import all_tables
    from tests.unit.test_slo_store import CLIENT_CALLS, SQL, _strings

    found = []
    table = re.compile(r"\b(" + "|".join(map(re.escape, all_tables())) + r")\b")
    for path in sorted((ROOT / "catalog").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        if path.name == "store.py":
            found += [f"{path.name}:{n.lineno} names a table" for n in _strings(tree)
                      if table.search(n.value)]
            continue
        found += [f"{path.name}:{n.lineno} calls .{n.func.attr}()" for n in ast.walk(tree)
                  if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                  and n.func.attr in CLIENT_CALLS]
        found += [f"{path.name}:{n.lineno} holds SQL" for n in _strings(tree)
                  if SQL.search(n.value)]
    assert found == []
