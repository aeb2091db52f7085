"""Links into the dashboard open the view they name: a link built by `dashboards.filters.link`
opens its page with the filters set (and keeps them in the URL), and an alert notification's
link (`slo.alerting.dashboard_link`, to the root) opens the SLO page on the alert's SLO and
dimension values."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from dashboards.filters import Filters, link
from slo.alerting import dashboard_link
from tests.builders.dashboards import (
    metrics,
    open_page,
)
from tests.builders.rows import dec, insert_decisions
from tests.builders.slos import NAME, slo_doc

pytestmark = pytest.mark.integration


def params_of(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def seeded(chdb_client, dashboard_db, slo_dir):
    (slo_dir / f"{NAME}.yaml").write_text(yaml.safe_dump(slo_doc(by=["team"])))
    now = datetime.now(timezone.utc)
    insert_decisions(chdb_client, [
        *[dec(now - timedelta(hours=3), "allow", environment="staging") for _ in range(4)],
        dec(now - timedelta(minutes=5), "error", team="search"),
        dec(now - timedelta(minutes=5), "allow", team="search"),
    ])
    return dashboard_db


def test_a_link_with_filters_opens_the_page_filtered_and_keeps_them_in_the_url(seeded):
    url = link("live", "http://dash.example", Filters("6h", environment="staging"))
    at = open_page("live.py", params_of(url))

    assert at.selectbox(key="filter_range").value == "6h"
    assert at.selectbox(key="filter_environment").value == "staging"
    assert metrics(at)["Decisions"] == "4"
    assert at.query_params == {"range": "6h", "environment": "staging"}


def test_a_link_to_a_team_without_recent_data_still_offers_that_team(seeded):
    at = open_page("live.py", params_of(link("live", "", Filters(team="nobody"))))

    assert at.selectbox(key="filter_team").value == "nobody"
    assert "nobody" in at.selectbox(key="filter_team").options
    assert metrics(at)["Decisions"] == "0"


def test_an_alert_notifications_link_opens_its_slo_and_dimension_value(seeded):
    url = dashboard_link("http://dash.example:8501", NAME, {"team": "search"})
    at = open_page(None, params_of(url))

    assert at.title[0].value == "SLOs"
    assert at.selectbox(key="slo_name").value == NAME
    assert at.selectbox(key=f"slo_drill_{NAME}").value == "team=search"
    assert metrics(at)["Current SLI"] == "50.00%"
