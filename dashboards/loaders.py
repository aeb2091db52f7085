"""The pages' cached loaders: one storage client per store (`st.cache_resource`) and query
results cached for `TTL` seconds (`st.cache_data`), keyed by the store and the query's
arguments, so reruns (a widget change, another page) do not query again within a minute.

    totals = loaders.load(live.decision_totals, start, end, where)

The query functions (`dashboards.queries`) take the client first; arguments must be
hashable by Streamlit (str, numbers, datetimes, dicts, tuples) and results picklable.
"""

from __future__ import annotations

from types import FunctionType
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import streamlit as st
from clickhouse_connect.driver.client import Client

from dashboards import filters
from dashboards.config import current
from dashboards.queries import filter_options, open_client

TTL = 60  # seconds: the SLI batch and the alert evaluator run every minute


def store() -> str:
    """The store pages read (DSN without credentials, and database): part of every cache key."""
    storage = current().storage
    return f"{storage.dsn.rsplit('@', 1)[-1]}|{storage.database}"


@st.cache_resource(show_spinner=False)
def _client(key: str) -> Client:
    return open_client()


def client() -> Client:
    return _client(store())


def _name(function: FunctionType) -> str:
    return f"{function.__module__}.{function.__qualname__}"


@st.cache_data(ttl=TTL, show_spinner=False, hash_funcs={FunctionType: _name})
def _load(key: str, query: FunctionType, args: tuple, kwargs: dict) -> Any:
    return query(client(), *args, **kwargs)


def load(query: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`query(client, *args, **kwargs)`, cached for `TTL` seconds."""
    return _load(store(), query, args, kwargs)


def page_filters() -> filters.Filters:
    """The global filters, drawn in the sidebar (`filters.sidebar`) with the values decisions
    carried over the last 30 days: the first call of every page."""
    since = (datetime.now(timezone.utc) - timedelta(days=30)).replace(
        minute=0, second=0, microsecond=0)
    return filters.sidebar(load(filter_options, since))
