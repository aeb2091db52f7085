"""`dashboards.loaders.load_all`: a page's reads at once, each on a client of its own, results
in the order asked, cached as `load` caches them, the first failure raised."""

from __future__ import annotations

import threading
import time

import pytest
import streamlit as st

from dashboards import loaders

pytestmark = pytest.mark.integration

seen: list[tuple[str, int, int]] = []  # (query, thread, client) of each run of one below
lock = threading.Lock()
inside = threading.Barrier(2, timeout=30)


def _record(query: str, client) -> None:
    with lock:
        seen.append((query, threading.get_ident(), id(client)))


def number(client, n: int) -> int:
    _record("number", client)
    return int(client.command(f"SELECT {int(n)} + 0"))


def meet(client, n: int) -> int:
    """Returns only once another call is inside it too: two calls must run at once."""
    _record("meet", client)
    inside.wait()
    return int(client.command(f"SELECT {int(n)}"))


def slow_failure(client) -> None:
    time.sleep(0.05)
    raise LookupError("no such thing")


@pytest.fixture(autouse=True)
def fresh(dashboard_db):
    seen.clear()
    st.cache_data.clear()
    yield


def test_results_come_in_the_order_asked_and_reads_overlap_on_clients_of_their_own():
    got = loaders.load_all(loaders.call(meet, 1), loaders.call(meet, 2),
                           *(loaders.call(number, n) for n in range(3, 8)))
    assert got == [1, 2, 3, 4, 5, 6, 7]
    # the two `meet` calls ran at once (else the barrier would have timed out), on two
    # threads and two clients: a client runs one call at a time
    meets = [(thread, client) for query, thread, client in seen if query == "meet"]
    assert len({thread for thread, _ in meets}) == 2 and len({c for _, c in meets}) == 2
    assert len({c for _, _, c in seen}) <= loaders.CONCURRENCY


def test_cached_reads_are_not_run_again_and_load_shares_the_cache():
    assert loaders.load_all(loaders.call(number, 40), loaders.call(number, 41)) == [40, 41]
    assert len(seen) == 2
    assert loaders.load(number, 41) == 41
    assert loaders.load_all(loaders.call(number, 40), loaders.call(number, 42)) == [40, 42]
    assert len(seen) == 3  # only 42 was read


def test_the_first_failure_is_raised_as_load_would_raise_it():
    with pytest.raises(LookupError, match="no such thing"):
        loaders.load_all(loaders.call(number, 1), loaders.call(slow_failure))
    with pytest.raises(LookupError, match="no such thing"):
        loaders.load(slow_failure)


def test_one_call_runs_in_the_callers_thread():
    assert loaders.load_all(loaders.call(number, 9)) == [9]
    assert seen[0][1] == threading.get_ident()
    assert loaders.load_all() == []


def compiling(client, n: int) -> tuple[int, tuple]:
    """The client's id and whether it compiles expressions, aggregates, sorts (1 = yes),
    once another call holds a client too."""
    inside.wait()
    row = client.query("SELECT getSetting('compile_expressions'), "
                       "getSetting('compile_aggregate_expressions'), "
                       "getSetting('compile_sort_description')").result_rows[0]
    return id(client), tuple(int(v) for v in row)


def test_every_client_the_pages_read_through_runs_without_the_expression_compiler():
    # two calls at once: the pool's first client and one it opened for the second
    first, second = loaders.load_all(loaders.call(compiling, 1), loaders.call(compiling, 2))
    assert first[0] != second[0]
    assert first[1] == second[1] == (0, 0, 0)
    primary = loaders.client().query("SELECT getSetting('compile_expressions')")
    assert primary.result_rows == [(False,)]
