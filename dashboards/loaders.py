"""The pages' cached loaders: a few storage clients per store (`st.cache_resource`) and query
results cached for `TTL` seconds (`st.cache_data`), keyed by the store and the query's
arguments, so reruns (a widget change, another page) do not query again within a minute.

    totals = loaders.load(live.decision_totals, start, end, where)
    totals, rows = loaders.load_all(call(live.decision_totals, start, end, where),
                                    call(live.breakdown, start, end, where))

A page states its independent reads up front with `load_all`, which runs those not cached
concurrently, each on a client of its own (a client runs one call at a time), the way a
Grafana dashboard queries its panels at once: a page of ten small reads then waits about as
long as its slowest few, not their sum. `reading` starts them the same way and hands each
result over when the page asks for it, so a page draws its quick sections while its slow
reads run. `load` is one read, in the script's own thread.

The query functions (`dashboards.queries`) take the client first; arguments must be
hashable by Streamlit (str, numbers, datetimes, dicts, tuples) and results picklable.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import FunctionType
from typing import Any, Callable

import streamlit as st
from clickhouse_connect.driver.client import Client
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.script_run_context import (
    SCRIPT_RUN_CONTEXT_ATTR_NAME,
    ScriptRunContext,
)

from core import storage
from dashboards import filters
from dashboards.config import current
from dashboards.queries import filter_options, for_pages, open_client

TTL = 60  # seconds: the SLI batch and the alert evaluator run every minute
CONCURRENCY = 3  # clients per store, so reads at once: a small page's reads, all of them


def store() -> str:
    """The store pages read (DSN without credentials, and database): part of every cache key."""
    storage_config = current().storage
    return f"{storage_config.dsn.rsplit('@', 1)[-1]}|{storage_config.database}"


class ClientPool:
    """Up to `size` clients on one store, handed out one caller at a time. The first is
    opened at once and is also `client()` (the pages' writes); the others are opened as
    concurrent reads first need them (`core.storage.another`: on chDB another handle of the
    one engine, on a server another HTTP session), each with the pages' session settings
    (`dashboards.queries.READ_SETTINGS`)."""

    def __init__(self, size: int) -> None:
        self.primary = open_client()
        self._idle: queue.LifoQueue[Client] = queue.LifoQueue()
        self._idle.put(self.primary)
        self._opened, self._size, self._lock = 1, size, threading.Lock()

    @contextmanager
    def acquire(self) -> Iterator[Client]:
        try:
            client = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                more = self._opened < self._size
                self._opened += more
            client = for_pages(storage.another(self.primary)) if more else self._idle.get()
        try:
            yield client
        finally:
            self._idle.put(client)


@st.cache_resource(show_spinner=False)
def _pool(key: str) -> ClientPool:
    return ClientPool(CONCURRENCY)


def client() -> Client:
    return _pool(store()).primary


def _name(function: FunctionType) -> str:
    return f"{function.__module__}.{function.__qualname__}"


@st.cache_data(ttl=TTL, show_spinner=False, hash_funcs={FunctionType: _name})
def _load(key: str, query: FunctionType, args: tuple, kwargs: dict) -> Any:
    with _pool(key).acquire() as reader:
        return query(reader, *args, **kwargs)


def load(query: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`query(client, *args, **kwargs)`, cached for `TTL` seconds."""
    return _load(store(), query, args, kwargs)


@dataclass(frozen=True)
class Call:
    """One read for `load_all`: `query(client, *args, **kwargs)`."""

    query: Callable[..., Any]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


def call(query: Callable[..., Any], *args: Any, **kwargs: Any) -> Call:
    return Call(query, args, kwargs)


class Reads:
    """The results of `reading`'s calls, by position: `reads[i]` waits for call i only (a
    failed call raises there, as `load` would)."""

    def __init__(self, results: list[Callable[[], Any]]) -> None:
        self._results = results

    def __getitem__(self, index: int) -> Any:
        return self._results[index]()

    def __len__(self) -> int:
        return len(self._results)


_readers: ThreadPoolExecutor | None = None
_readers_lock = threading.Lock()


def _reader_threads() -> ThreadPoolExecutor:
    """The process's `CONCURRENCY` reader threads, started when first needed and kept: a page
    run does not start and join threads of its own, which a page whose reads are cached
    would otherwise spend much of its run on."""
    global _readers
    with _readers_lock:
        if _readers is None:
            _readers = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="page-read")
        return _readers


def _in_run(run: ScriptRunContext | None, variables: contextvars.Context,
            function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` on a reader thread as part of the page run that asked for it: with
    that run's context (the cache and any warning belong to it) and context variables, which
    the thread drops again afterwards."""
    thread = threading.current_thread()
    setattr(thread, SCRIPT_RUN_CONTEXT_ATTR_NAME, run)
    try:
        return variables.run(function, *args)
    finally:
        setattr(thread, SCRIPT_RUN_CONTEXT_ATTR_NAME, None)


@contextmanager
def reading(*calls: Call) -> Iterator[Reads]:
    """The calls started at once on the reader threads, up to `CONCURRENCY` at a time (cached
    ones return at once), for a page that draws what has arrived while the rest is read:
    each result is waited for when it is asked for. Leaving the block waits for every call."""
    key = store()
    if len(calls) < 2:
        yield Reads([lambda c=c: _load(key, c.query, c.args, c.kwargs) for c in calls])
        return
    run, pool = get_script_run_ctx(suppress_warning=True), _reader_threads()
    futures = [pool.submit(_in_run, run, contextvars.copy_context(), _load, key, c.query,
                           c.args, c.kwargs) for c in calls]
    try:
        yield Reads([f.result for f in futures])
    finally:
        wait(futures)


def load_all(*calls: Call) -> list[Any]:
    """What `load` gives for each call, in order: the reads run at once (`reading`). The
    first failure is raised, as `load` would raise it."""
    with reading(*calls) as reads:
        return [reads[i] for i in range(len(reads))]


def page_filters() -> filters.Filters:
    """The global filters, drawn in the sidebar (`filters.sidebar`) with the values decisions
    carried over the last 30 days: the first call of every page."""
    since = (datetime.now(timezone.utc) - timedelta(days=30)).replace(
        minute=0, second=0, microsecond=0)
    return filters.sidebar(load(filter_options, since))
