"""SLO specs: OpenSLO v1 documents parsed strictly, every problem named by file and key path."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import pydantic
import pytest
import yaml

from schemas.frames import RATIO_SLIS
from slo.burn_rate import DAY, HOUR, MINUTE, DEFAULT_POLICY
from slo.spec import (
    BAD_NUMERATOR_SLIS,
    MULTI_DIMENSION_SLIS,
    SLI_DIMENSIONS,
    SpecError,
    check_paths,
    events,
    load_dir,
    load_file,
    parse,
    validate_paths,
)

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "slo"
RATIO = "spec.indicator.spec.ratioMetric"
TOTAL = f"{RATIO}.total.metricSource.spec"
GOOD = f"{RATIO}.good.metricSource.spec"


def document(sli: str = "M1", target=0.999, **total_spec) -> dict:
    """The DESIGN §6 example, as parsed YAML; `total_spec` adds to the total source's spec."""
    numerator = "bad" if sli in BAD_NUMERATOR_SLIS else "good"
    return {
        "apiVersion": "openslo/v1", "kind": "SLO",
        "metadata": {"name": "admission-eval-success", "labels": {"team": "platform"}},
        "spec": {
            "service": "admission-control",
            "indicator": {"metadata": {"name": "eval-success"}, "spec": {"ratioMetric": {
                "counter": True,
                numerator: {"metricSource": {"type": "policyscope",
                                             "spec": {"sli": sli, "where": {"engine": "opa"}}}},
                "total": {"metricSource": {"type": "policyscope", "spec": {
                    "sli": sli, "where": {"engine": "opa"}, **total_spec}}},
            }}},
            "timeWindow": [{"duration": "30d", "isRolling": True}],
            "budgetingMethod": "Occurrences",
            "objectives": [{"displayName": "evaluations succeed", "target": target}],
        },
    }


def ratio_metric(doc: dict) -> dict:
    return doc["spec"]["indicator"]["spec"]["ratioMetric"]


def total_spec(doc: dict) -> dict:
    return ratio_metric(doc)["total"]["metricSource"]["spec"]


def good_spec(doc: dict) -> dict:
    return ratio_metric(doc)["good"]["metricSource"]["spec"]


def edit(doc: dict, change) -> dict:
    doc = copy.deepcopy(doc)
    change(doc)
    return doc


# -- the examples ------------------------------------------------------------------------------

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


@pytest.mark.parametrize("path", [pytest.param(p, id=f"example {p.name} validates")
                                  for p in EXAMPLE_FILES])
def test_every_example_file_validates(path):
    slo = load_file(path)
    assert slo.source == path
    assert validate_paths([path]) == []
    assert slo.warnings() == []


def test_the_examples_cover_every_ratio_sli_once_and_load_as_a_directory():
    slos = load_dir(EXAMPLES)
    assert len(EXAMPLE_FILES) == len(slos) >= 8
    assert sorted(s.sli for s in slos) == sorted(RATIO_SLIS)
    assert check_paths([EXAMPLES]) == (slos, [], [])


def test_the_design_example_parses_into_exact_evaluator_ready_values():
    slo = parse(document())
    assert slo.name == "admission-eval-success" and slo.sli == "M1"
    assert slo.objective == Fraction(999, 1000) and isinstance(slo.objective, Fraction)
    assert dict(slo.where) == {"engine": "opa"} and slo.by == ()
    assert slo.period_seconds == 30 * DAY and slo.period_name == "30d"
    assert slo.pairs == DEFAULT_POLICY
    assert (slo.min_events, slo.pending_seconds, slo.budget_policies) == (0, 0, ())
    assert slo.numerator == "good" and slo.budgeting_method == "Occurrences"
    assert slo.source is None


def test_an_slo_is_immutable():
    slo = parse(document())
    with pytest.raises(pydantic.ValidationError):
        slo.kind = "SLI"
    with pytest.raises(TypeError):
        slo.where["team"] = "x"


# -- invalid specs -----------------------------------------------------------------------------

def _set(path: list, value):
    def change(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return change


_DELETE = object()
_OBJ = ["spec", "objectives", 0]
_TW = ["spec", "timeWindow", 0]
_RM = ["spec", "indicator", "spec", "ratioMetric"]
_TS = [*_RM, "total", "metricSource", "spec"]
_GS = [*_RM, "good", "metricSource", "spec"]
_ALERT_1H = {"severity": "page", "long": "1h", "short": "5m"}

INVALID = [
    pytest.param(_set(["spec", "servce"], "x"), "spec.servce",
                 "unknown key 'servce' (did you mean 'service'?)",
                 id="an unknown key is rejected with its path and a suggestion"),
    pytest.param(_set([*_TS, "wher"], {}), f"{TOTAL}.wher", "unknown key 'wher'",
                 id="an unknown key inside the policyscope source spec is rejected"),
    pytest.param(_set(["spec", "alertPolicies"], []), "spec.alertPolicies",
                 "valid OpenSLO, not supported",
                 id="valid OpenSLO that PolicyScope does not evaluate says so"),
    pytest.param(_set([*_GS, "by"], ["team"]), f"{GOOD}.by", "go in the total metric source's spec",
                 id="SLO settings on the numerator source point to the total source"),
    pytest.param(_set(["apiVersion"], "openslo/v2"), "apiVersion",
                 "must be 'openslo/v1', got 'openslo/v2'", id="a wrong apiVersion is rejected"),
    pytest.param(_set(["kind"], "SLI"), "kind", "must be 'SLO', got 'SLI'",
                 id="a wrong kind is rejected"),
    pytest.param(_set(["metadata", "name"], "Admission_SLO"), "metadata.name",
                 "must be a DNS label", id="a name that is not a DNS label is rejected"),
    pytest.param(_set(["spec", "service"], _DELETE), "spec.service", "required key is missing",
                 id="a missing required key is named"),
    pytest.param(_set([*_OBJ, "target"], 1.0), "spec.objectives[0].target",
                 "must be between 0 and 1 exclusive, got 1.0", id="target 1.0 is rejected"),
    pytest.param(_set([*_OBJ, "target"], 0), "spec.objectives[0].target",
                 "must be between 0 and 1 exclusive, got 0", id="target 0 is rejected"),
    pytest.param(_set([*_OBJ, "target"], 1.2), "spec.objectives[0].target",
                 "must be between 0 and 1 exclusive, got 1.2", id="target 1.2 is rejected"),
    pytest.param(_set([*_OBJ, "target"], "0.999"), "spec.objectives[0].target",
                 "must be a number", id="a quoted target is rejected as not a number"),
    pytest.param(lambda d: d["spec"]["objectives"].append({"target": 0.99}),
                 "spec.objectives", "must hold exactly one item, got 2",
                 id="two objectives are rejected"),
    pytest.param(_set([*_GS, "sli"], "M2"), f"{GOOD}.sli",
                 "must name the same SLI as total (M1), got M2",
                 id="good and total naming different SLIs are rejected"),
    pytest.param(_set([*_GS, "where"], {"engine": "kyverno"}), f"{GOOD}.where",
                 "must equal total's where",
                 id="good and total filtering differently are rejected"),
    pytest.param(_set([*_TS, "sli"], "M99"), f"{TOTAL}.sli", "must be a ratio SLI, one of M1",
                 id="an unknown SLI is rejected"),
    pytest.param(_set([*_TS, "sli"], "M3_p90"), f"{TOTAL}.sli",
                 "not ratios: watch them on dashboards",
                 id="a non-ratio SLI is rejected and pointed to dashboards"),
    pytest.param(_set([*_TS, "where"], {"teem": "a"}), f"{TOTAL}.where.teem",
                 "is not a dimension; expected one of team",
                 id="an unknown dimension in where is rejected"),
    pytest.param(_set([*_TS, "by"], ["region"]), f"{TOTAL}.by[0]", "is not a dimension",
                 id="an unknown dimension in by is rejected"),
    pytest.param(_set([*_TS, "by"], ["slo"]), f"{TOTAL}.by[0]", "M1 is not computed by slo",
                 id="a dimension the SLI is not computed by is rejected"),
    pytest.param(_set([*_TS, "by"], ["engine"]), f"{TOTAL}.by[0]", "already fixed by where",
                 id="by on a dimension fixed by where is rejected"),
    pytest.param(_set([*_TW, "duration"], "30 days"), "spec.timeWindow[0].duration",
                 "must be a duration like 30d", id="a bad period duration is rejected"),
    pytest.param(_set([*_TW, "duration"], "2d"), "spec.timeWindow[0].duration",
                 "must be at least 3d, the longest default alert window",
                 id="a rolling period shorter than the default alert windows is rejected"),
    pytest.param(lambda d: (_set([*_TW, "duration"], "7d")(d), _set([*_TS, "alerting"], {
                     "windows": [{**_ALERT_1H, "long": "30d", "short": "1d", "factor": 1}]})(d)),
                 f"{TOTAL}.alerting.windows[0].long", "must not exceed the period (7d), got 30d",
                 id="a long window longer than the period is rejected"),
    pytest.param(_set([*_RM, "counter"], "yes"), f"{RATIO}.counter", "valid boolean",
                 id="a counter flag that is not a boolean is rejected"),
    pytest.param(_set([*_TW, "duration"], "1Q"), "spec.timeWindow[0].duration",
                 "only calendar period supported is 1M", id="a calendar quarter is rejected"),
    pytest.param(_set([*_TW, "calendar"], {"startTime": "2024-01-01 00:00:00",
                                           "timeZone": "UTC"}),
                 "spec.timeWindow[0].isRolling", "rolling or calendar-aligned, not both",
                 id="a window both rolling and calendar is rejected"),
    pytest.param(_set(_TW, {"duration": "30d", "isRolling": False}),
                 "spec.timeWindow[0].duration", "calendar window must be 1M",
                 id="a calendar window that is not a month is rejected"),
    pytest.param(_set(_TW, {"duration": "1M", "isRolling": True}),
                 "spec.timeWindow[0].duration", "1M is a calendar month",
                 id="a rolling window of 1M is rejected"),
    pytest.param(_set(_TW, {"duration": "30d"}), "spec.timeWindow[0].isRolling", "required",
                 id="a window that does not say whether it rolls is rejected"),
    pytest.param(_set(_TW, {"duration": "1M", "calendar": {"startTime": "2024-01-15 00:00:00",
                                                           "timeZone": "UTC"}}),
                 "spec.timeWindow[0].calendar.startTime", "must be the start of a month",
                 id="a calendar month starting mid-month is rejected"),
    pytest.param(_set(_TW, {"duration": "1M", "calendar": {"startTime": "2024-01-01",
                                                           "timeZone": "Europe/Paris"}}),
                 "spec.timeWindow[0].calendar.timeZone", "must be 'UTC'",
                 id="a calendar month outside UTC is rejected"),
    pytest.param(_set(["spec", "budgetingMethod"], "Timeslices"),
                 "spec.objectives[0].timeSliceTarget",
                 "required when budgetingMethod is Timeslices",
                 id="Timeslices without timeSliceTarget is rejected"),
    pytest.param(_set([*_OBJ, "timeSliceWindow"], "1m"), "spec.objectives[0].timeSliceWindow",
                 "only allowed when budgetingMethod is Timeslices",
                 id="a time slice on an Occurrences SLO is rejected"),
    pytest.param(lambda d: (_set(["spec", "budgetingMethod"], "Timeslices")(d),
                            _set(_OBJ, {"target": 0.99, "timeSliceTarget": 0.95,
                                        "timeSliceWindow": "7m"})(d)),
                 "spec.objectives[0].timeSliceWindow", "must divide every alert window",
                 id="a time slice that does not divide the alert windows is rejected"),
    pytest.param(lambda d: (_set(["spec", "budgetingMethod"], "Timeslices")(d),
                            _set(_OBJ, {"target": 0.99, "timeSliceTarget": 0,
                                        "timeSliceWindow": "1m"})(d)),
                 "spec.objectives[0].timeSliceTarget", "between 0 and 1 excluding 0",
                 id="a time slice target of 0 is rejected"),
    pytest.param(_set([*_TS, "alerting"], {"windows": [{**_ALERT_1H, "budgetShare": 0.02,
                                                         "factor": 14.4}]}),
                 f"{TOTAL}.alerting.windows[0]", "exactly one of budgetShare",
                 id="budgetShare and factor both given are rejected"),
    pytest.param(_set([*_TS, "alerting"], {"windows": [_ALERT_1H]}),
                 f"{TOTAL}.alerting.windows[0]", "exactly one of budgetShare",
                 id="a window pair with neither budgetShare nor factor is rejected"),
    pytest.param(_set([*_TS, "alerting"], {"windows": [{**_ALERT_1H, "budgetShare": 1.5}]}),
                 f"{TOTAL}.alerting.windows[0].budgetShare", "between 0 and 1 excluding 0",
                 id="a budget share above 1 is rejected"),
    pytest.param(_set([*_TS, "alerting"], {"windows": [{**_ALERT_1H, "short": "1h",
                                                         "long": "5m", "factor": 6}]}),
                 f"{TOTAL}.alerting.windows[0].short", "must be shorter than long (5m)",
                 id="a short window longer than the long one is rejected"),
    pytest.param(_set([*_TS, "alerting"], {"windows": [{**_ALERT_1H, "long": "2d",
                                                         "factor": 6}]}),
                 f"{TOTAL}.alerting.windows[0].long", "must be one of the SLI windows",
                 id="a window the SLIs are not computed for is rejected"),
    pytest.param(_set([*_TS, "alerting"], {"windows": [{**_ALERT_1H, "severity": "sms",
                                                         "factor": 6}]}),
                 f"{TOTAL}.alerting.windows[0].severity", "must be 'page' or 'ticket'",
                 id="an unknown severity is rejected"),
    pytest.param(_set([*_TS, "alerting"], {"windows": [{**_ALERT_1H, "factor": 14.4},
                                                       {**_ALERT_1H, "factor": 6}]}),
                 f"{TOTAL}.alerting.windows[1]", "repeats windows 1h/5m",
                 id="a window pair given twice is rejected"),
    pytest.param(_set([*_TS, "alerting"], {"minEvents": -1}), f"{TOTAL}.alerting.minEvents",
                 "must be at least 0", id="a negative minEvents is rejected"),
    pytest.param(_set([*_TS, "alerting"], {"for": "soon"}), f"{TOTAL}.alerting.for",
                 "must be a duration like 30s", id="a bad pending duration is rejected"),
    pytest.param(_set([*_TS, "budgetPolicies"], [{"consumed": 0.25, "action": "page-ceo"}]),
                 f"{TOTAL}.budgetPolicies[0].action", "must be 'review-ticket'",
                 id="an unknown budget policy action is rejected"),
    pytest.param(_set([*_TS, "budgetPolicies"], [{"consumed": 0.25, "action": "review-ticket"},
                                                 {"consumed": 0.25, "action": "review-ticket"}]),
                 f"{TOTAL}.budgetPolicies[1]", "repeats review-ticket at 0.25",
                 id="a budget policy given twice is rejected"),
    pytest.param(_set([*_TS, "budgetPolicies"], [{"consumed": 0, "action": "review-ticket"}]),
                 f"{TOTAL}.budgetPolicies[0].consumed", "must be greater than 0",
                 id="a budget policy at 0 consumed is rejected"),
    pytest.param(_set([*_RM, "total", "metricSource", "type"], "prometheus"),
                 f"{RATIO}.total.metricSource.type", "must be 'policyscope'",
                 id="a metric source of another type is rejected"),
    pytest.param(lambda d: ratio_metric(d).__setitem__("bad", ratio_metric(d)["good"]),
                 RATIO, "exactly one numerator, good or bad",
                 id="good and bad both given are rejected"),
    pytest.param(lambda d: ratio_metric(d).__setitem__("bad", ratio_metric(d).pop("good")),
                 f"{RATIO}.bad", "M1's numerator counts good events",
                 id="a good-numerator SLI named under bad is rejected"),
]


@pytest.mark.parametrize("change,path,fragment", INVALID)
def test_invalid_specs_are_rejected_with_the_key_path(change, path, fragment):
    with pytest.raises(SpecError) as err:
        parse(edit(document(), change), "x.yaml")
    assert isinstance(err.value, ValueError)
    line = next((e for e in err.value.errors if e.startswith(f"x.yaml: {path}: ")), None)
    assert line is not None, err.value.errors
    assert fragment in line


def test_a_bad_numerator_sli_named_under_good_is_rejected():
    doc = document("M6")
    ratio_metric(doc)["good"] = ratio_metric(doc).pop("bad")
    with pytest.raises(SpecError, match=r"ratioMetric\.good: M6's numerator counts bad events"):
        parse(doc, "x.yaml")


def test_a_dimension_an_sli_lacks_is_rejected():
    doc = document("M8")
    del total_spec(doc)["where"], ratio_metric(doc)["good"]["metricSource"]["spec"]["where"]
    total_spec(doc)["by"] = ["policy"]
    with pytest.raises(SpecError, match=r"by\[0\]: M8 is not computed by policy; its "
                                        r"dimensions: engine, team, environment, cluster"):
        parse(doc, "x.yaml")


def test_an_sli_computed_one_dimension_at_a_time_takes_one_dimension():
    doc = document("M8", by=["team"])  # where engine=opa and by team
    with pytest.raises(SpecError, match=r"metricSource\.spec: where and by name 2 dimensions "
                                        r"\(engine, team\); M8 is computed by one dimension"):
        parse(doc, "x.yaml")


def test_an_sli_read_from_rollups_combines_where_and_by():
    slo = parse(document("M1", by=["team", "environment"]))
    assert dict(slo.where) == {"engine": "opa"} and slo.by == ("team", "environment")


def test_a_factor_on_a_calendar_month_is_rejected():
    doc = document(alerting={"windows": [{**_ALERT_1H, "factor": 14.4}]})
    doc["spec"]["timeWindow"] = [{"duration": "1M", "isRolling": False}]
    with pytest.raises(SpecError, match=r"windows\[0\]\.factor: a calendar month's factor "
                                        "varies"):
        parse(doc, "x.yaml")


def test_every_structural_problem_is_reported_at_once():
    doc = edit(document(), lambda d: (_set([*_OBJ, "target"], 2)(d), _set(["kind"], "X")(d),
                                      _set(["spec", "extra"], 1)(d)))
    with pytest.raises(SpecError) as err:
        parse(doc, "x.yaml")
    assert len(err.value.errors) == 3
    assert str(err.value) == "\n".join(err.value.errors)


# -- files -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,fragment", [
    pytest.param("spec: [\n", "not valid YAML", id="invalid YAML is rejected"),
    pytest.param("kind: SLO\nkind: SLI\n", "duplicate key 'kind'",
                 id="a key given twice is rejected, not silently overwritten"),
    pytest.param("a: 1\n---\nb: 2\n", "one SLO document per file",
                 id="two documents in one file are rejected"),
    pytest.param("- kind: SLO\n", "must be a mapping", id="a file that is a list is rejected"),
])
def test_unreadable_files_are_rejected_naming_the_file(tmp_path, text, fragment):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        load_file(path)
    assert err.value.errors[0].startswith(f"{path}: ") and fragment in err.value.errors[0]


def test_duplicate_names_across_files_are_rejected_naming_both_files(tmp_path):
    for name in ("a.yaml", "b.yml"):
        (tmp_path / name).write_text(yaml.safe_dump(document()))
    with pytest.raises(SpecError) as err:
        load_dir(tmp_path)
    assert err.value.errors == [
        f"{tmp_path / 'b.yml'}: metadata.name: 'admission-eval-success' is already the name of "
        f"the SLO in {tmp_path / 'a.yaml'}"]


def test_validate_paths_lists_one_line_per_problem_across_files_and_directories(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "sub" / "bad.yaml"
    bad.parent.mkdir()
    good.write_text(yaml.safe_dump(document()))
    bad.write_text(yaml.safe_dump(edit(document(), lambda d: (
        _set(["metadata", "name"], "other")(d), _set([*_OBJ, "target"], 1)(d),
        _set(["spec", "budgetingMethod"], "Sometimes")(d)))))
    (tmp_path / "sub" / "notes.txt").write_text("not an SLO")
    assert validate_paths([good]) == []
    errors = validate_paths([good, bad.parent, tmp_path / "missing.yaml"])
    assert errors == [
        f"{bad}: spec.budgetingMethod: must be 'Occurrences' or 'Timeslices', got 'Sometimes'",
        f"{bad}: spec.objectives[0].target: must be between 0 and 1 exclusive, got 1",
        f"{tmp_path / 'missing.yaml'}: no such file or directory"]


# -- derived values ----------------------------------------------------------------------------

def test_a_28d_period_derives_the_factors_13_44_5_6_2_8_and_0_933():
    doc = edit(document(), _set(_TW, {"duration": "28d", "isRolling": True}))
    slo = parse(doc)
    assert slo.period_seconds == 28 * DAY
    assert [p.factor(slo.period_seconds) for p in slo.pairs] == [
        Fraction("13.44"), Fraction("5.6"), Fraction("2.8"), Fraction(14, 15)]


def test_a_calendar_month_has_no_fixed_period_but_knows_each_month():
    doc = edit(document(), _set(_TW, {"duration": "1M", "isRolling": False, "calendar": {
        "startTime": "2024-01-01 00:00:00", "timeZone": "UTC"}}))
    slo = parse(doc)
    assert slo.is_calendar and slo.period_seconds is None
    assert slo.period_for(date(2024, 2, 10)) == 29 * DAY
    assert slo.period_for(date(2023, 2, 10)) == 28 * DAY
    # 23:30 on Jan 31st in New York is already February in UTC
    new_york = timezone(timedelta(hours=-5))
    assert slo.period_for(datetime(2024, 1, 31, 23, 30, tzinfo=new_york)) == 29 * DAY


@pytest.mark.parametrize("window,share", [
    pytest.param({**_ALERT_1H, "budgetShare": 0.02}, Fraction(2, 100),
                 id="a budgetShare is kept exactly"),
    pytest.param({**_ALERT_1H, "factor": 14.4}, Fraction(2, 100),
                 id="a factor of 14.4 over 1h of 30d is a 2% budget share"),
])
def test_alert_window_overrides_replace_the_defaults(window, share):
    slo = parse(document(alerting={"windows": [window], "minEvents": 20, "for": "2m"}))
    (pair,) = slo.pairs
    assert (pair.severity, pair.long_window, pair.short_window) == ("page", HOUR, 5 * MINUTE)
    assert pair.budget_share == share
    assert pair.factor(slo.period_seconds) == Fraction("14.4")
    assert (slo.min_events, slo.pending_seconds) == (20, 120)


def test_budget_policies_come_ordered_by_the_share_consumed():
    slo = parse(document(budgetPolicies=[
        {"consumed": 1, "action": "freeze-enforce-rollouts"},
        {"consumed": 0.25, "action": "review-ticket"},
        {"consumed": 0.5, "action": "notify-owner", "owner": "team-payments"}]))
    assert [(p.consumed, p.action, p.owner) for p in slo.budget_policies] == [
        (Fraction(1, 4), "review-ticket", None), (Fraction(1, 2), "notify-owner", "team-payments"),
        (Fraction(1), "freeze-enforce-rollouts", None)]


def test_a_pair_that_can_never_fire_is_a_warning_not_an_error(tmp_path):
    path = tmp_path / "loose.yaml"
    path.write_text(yaml.safe_dump(document(target=0.9)))
    slos, errors, warnings = check_paths([path])
    assert errors == [] and len(slos) == 1
    assert warnings == [f"{path}: page 1h/5m can never fire: factor 14.4 x error budget 0.1 = "
                        "1.44 > 1 (an error rate above 100 %)"]


@pytest.mark.parametrize("sli,good,total,expected", [
    pytest.param("M1", 990, 1000, (10, 1000), id="M1 counts successes: bad = total - good"),
    pytest.param("L_under", 99.0, 100.0, (1, 100),
                 id="sli_values floats that are whole become integer counts"),
    pytest.param("M6", 50, 1000, (50, 1000), id="M6 counts blocked gates: bad = good"),
    pytest.param("M4", 3, 30, (3, 30), id="M4 counts false positives: bad = good"),
    pytest.param("M7", 2, 10, (2, 10), id="M7 counts pages: bad = good"),
    pytest.param("M1", 0, 0, (0, 0), id="an empty window has no events"),
])
def test_events_turns_an_sli_row_into_bad_and_total(sli, good, total, expected):
    assert events(sli, good, total) == expected


@pytest.mark.parametrize("good,total,fragment", [
    pytest.param(1.5, 10, "not a whole number", id="a fractional count is rejected"),
    pytest.param(11, 10, "between 0 and total", id="more good than total is rejected"),
])
def test_events_rejects_impossible_counts(good, total, fragment):
    with pytest.raises(ValueError, match=fragment):
        events("M1", good, total)


def test_the_spec_and_the_counts_take_the_slis_and_their_dimensions_from_the_catalogue():
    """What the families emit is checked against the catalogue in
    tests/integration/test_sli_catalogue.py; here, that the SLO side reads the catalogue."""
    from schemas.slis import SLIS, SLO_SLIS
    from slo.counts import FAMILY_OF, ROLLUP_SLIS

    assert set(RATIO_SLIS) == set(SLO_SLIS) == set(SLI_DIMENSIONS)
    assert {sli: SLIS[sli].dimensions.keys() for sli in SLI_DIMENSIONS} == {
        sli: set(dims) for sli, dims in SLI_DIMENSIONS.items()}
    assert BAD_NUMERATOR_SLIS == {s for s in SLO_SLIS if SLIS[s].bad_numerator}
    assert MULTI_DIMENSION_SLIS == set(ROLLUP_SLIS) == {s for s in SLO_SLIS if SLIS[s].counts}
    assert set(FAMILY_OF) | set(ROLLUP_SLIS) == set(SLO_SLIS)
    assert {sli: module.__name__ for sli, module in FAMILY_OF.items()} == {
        sli: f"metrics.sli.{SLIS[sli].family}" for sli in FAMILY_OF}


def test_the_rollup_slis_dimensions_are_their_rollups_columns():
    from metrics import sources
    from schemas.slis import SLIS

    for sli in MULTI_DIMENSION_SLIS:
        rollup = sources.ROLLUPS[SLIS[sli].counts.rollup]
        assert dict(SLIS[sli].dimensions) == rollup.dimensions, sli


def test_parse_rejects_a_document_that_is_not_a_mapping():
    with pytest.raises(SpecError, match="x.yaml: must be a mapping"):
        parse(["kind", "SLO"], "x.yaml")
