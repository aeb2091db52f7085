"""Alert notifications carry the runbook link and the owning team of the policy an SLO is
about: which runbook wins (the SLO's own annotation, else the policy catalog's), and where
each notifier puts them (Alertmanager annotations, PagerDuty links and details, Slack's
section, the webhook's alert objects)."""

from __future__ import annotations

import doctest
import json
from datetime import UTC, datetime

import pytest

import slo.notify.slack
from catalog.model import Catalog, Control, Policy
from slo.alerting import runbook_and_owner
from slo.notify import AlertNotice, Notification
from slo.notify.alertmanager import postable
from slo.notify.pagerduty import event
from slo.notify.slack import render
from slo.spec import SpecError, parse
from tests.builders.slos import slo_doc

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
RUNBOOK = "https://wiki.example.com/runbooks/non-root"
CATALOG = Catalog.of([Policy(
    id="k8s.require-non-root", title="Containers run as non-root", owner="security",
    category="workload-hardening", severity="high", controls=(Control("SOC 2", "CC6.1"),),
    runbook=RUNBOOK)])


def notice(**overrides) -> AlertNotice:
    values = dict(alert_id="eval/page/policy=k8s.require-non-root", slo="eval",
                  severity="page", state="firing", summary="eval burns", long_window="1h",
                  short_window="5m", factor=14.4, burn_long=20.0, burn_short=30.0,
                  budget_remaining=0.5, time_to_exhaustion_s=3600.0,
                  dashboard_url="http://dash.example/?slo=eval", started_at=T0,
                  dimensions={"policy": "k8s.require-non-root"})
    values.update(overrides)
    return AlertNotice(**values)


def an_slo(*, by=None, where=None, runbook=None):
    document = slo_doc(by=by)
    if where:
        for side in ("good", "total"):
            document["spec"]["indicator"]["spec"]["ratioMetric"][side]["metricSource"][
                "spec"]["where"] = where
    if runbook is not None:
        document["metadata"]["annotations"] = {"runbook_url": runbook}
    return parse(document)


# -- which runbook and owner an alert gets ----------------------------------------------------

def test_a_policy_dimension_value_takes_its_catalog_runbook_and_owner():
    slo = an_slo(by=["policy"])
    assert runbook_and_owner(slo, {"policy": "k8s.require-non-root"}, CATALOG) == (
        RUNBOOK, "security")


def test_a_policy_in_the_slos_filter_takes_its_catalog_runbook_and_owner():
    slo = an_slo(where={"policy": "k8s.require-non-root"})
    assert runbook_and_owner(slo, {}, CATALOG) == (RUNBOOK, "security")


def test_the_slos_own_runbook_annotation_wins_over_the_catalog():
    own = "https://wiki.example.com/slo/eval"
    slo = an_slo(by=["policy"], runbook=own)
    assert runbook_and_owner(slo, {"policy": "k8s.require-non-root"}, CATALOG) == (
        own, "security")
    assert runbook_and_owner(an_slo(runbook=own), {}, None) == (own, "")


@pytest.mark.parametrize("dimensions,catalog", [
    pytest.param({"policy": "k8s.not-in-the-catalog"}, CATALOG, id="a policy not catalogued"),
    pytest.param({"team": "payments"}, CATALOG, id="no policy named"),
    pytest.param({"policy": "k8s.require-non-root"}, None, id="no catalog stored"),
])
def test_without_a_catalog_entry_the_links_stay_empty(dimensions, catalog):
    assert runbook_and_owner(an_slo(by=list(dimensions)), dimensions, catalog) == ("", "")


def test_an_slo_runbook_annotation_that_is_not_an_http_link_is_refused():
    with pytest.raises(SpecError) as raised:
        an_slo(runbook="javascript:alert(1)")
    assert "metadata.annotations.runbook_url: runbook 'javascript:alert(1)' has scheme " \
           "'javascript'" in str(raised.value)


# -- where each notifier puts them ------------------------------------------------------------

def test_alertmanager_carries_the_runbook_and_owner_as_annotations():
    body = postable(notice(runbook_url=RUNBOOK, owner_team="security"))
    assert body["annotations"]["runbook_url"] == RUNBOOK
    assert body["annotations"]["owner_team"] == "security"
    assert "runbook_url" not in body["labels"] and "owner_team" not in body["labels"]
    assert "runbook_url" not in postable(notice())["annotations"]  # empty: left out


def test_pagerduty_links_the_runbook_beside_the_dashboard():
    body = event(notice(runbook_url=RUNBOOK, owner_team="security"), "rk")
    assert body["links"] == [{"href": "http://dash.example/?slo=eval",
                              "text": "PolicyScope dashboard"},
                             {"href": RUNBOOK, "text": "Runbook"}]
    assert body["payload"]["custom_details"]["owner_team"] == "security"
    assert event(notice(), "rk")["links"] == [{"href": "http://dash.example/?slo=eval",
                                               "text": "PolicyScope dashboard"}]


def test_slack_shows_the_runbook_link_and_the_owner():
    text = render(Notification((notice(runbook_url=RUNBOOK + "?a=1|2",
                                       owner_team="security"),)))["blocks"][1]["text"]["text"]
    assert f"<{RUNBOOK}?a=1%7C2|Runbook> · owner: security" in text
    assert "Runbook" not in render(Notification((notice(),)))["blocks"][1]["text"]["text"]


def test_the_webhook_alert_object_carries_both():
    data = json.loads(json.dumps(notice(runbook_url=RUNBOOK, owner_team="security").to_dict()))
    assert (data["runbook_url"], data["owner_team"]) == (RUNBOOK, "security")


def test_the_slack_doctests_pass():
    result = doctest.testmod(slo.notify.slack)
    assert result.attempted > 0 and result.failed == 0
