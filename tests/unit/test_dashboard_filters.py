"""The global filters as URL parameters: parsed leniently, written back minimal, and the links
built for a page round-trip through `parse`."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboards.filters import DEFAULT_RANGE, Filters, link, parse

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("params", "expected"), [
    pytest.param({}, Filters(), id="no parameters: the defaults"),
    pytest.param({"range": "7d", "team": "payments"}, Filters("7d", "payments"),
                 id="a range and a team"),
    pytest.param({"range": "3w"}, Filters(DEFAULT_RANGE), id="an unknown range: the default"),
    pytest.param({"cluster": ["eu-1", "us-1"]}, Filters(cluster="us-1"),
                 id="a repeated parameter: the last one, as st.query_params reads it"),
    pytest.param({"team": "  search "}, Filters(team="search"), id="values are trimmed"),
])
def test_parse(params, expected):
    assert parse(params) == expected


def test_a_link_carries_only_what_differs_from_the_defaults_and_the_page_parameters():
    url = link("slos", "http://dash.example:8501/", Filters("7d", team="payments"),
               slo="eval success", service="")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "dash.example:8501", "/slos")
    assert parse_qs(parts.query) == {"range": ["7d"], "team": ["payments"],
                                     "slo": ["eval success"]}


@pytest.mark.parametrize("filters", [
    pytest.param(Filters(), id="defaults"),
    pytest.param(Filters("30d", "a&b=c", "prod", "eu-1"), id="every filter, one with & and ="),
])
def test_a_links_filters_parse_back_to_the_same_filters(filters):
    query = parse_qs(urlsplit(link("debug", "", filters)).query)
    assert parse({k: v[-1] for k, v in query.items()}) == filters


def test_a_link_to_an_unknown_page_is_refused():
    with pytest.raises(ValueError, match="page 'alerts' is not one of executive"):
        link("alerts")


def test_the_range_is_whole_minutes_ending_after_the_current_one():
    start, end = Filters("1h").bounds(datetime(2026, 11, 2, 12, 0, 30, tzinfo=timezone.utc))
    assert (start.isoformat(), end.isoformat()) == ("2026-11-02T11:01:00+00:00",
                                                    "2026-11-02T12:01:00+00:00")


def test_sli_values_are_read_by_the_first_set_dimension():
    filters = Filters(environment="prod", cluster="eu-1")
    assert filters.sli_dimension == ("environment", "prod")
    assert filters.ignored_by_sli == ["cluster"]
    assert Filters().sli_dimension == ("", "")
