"""Shared fixtures. One chDB data path per test process (chDB allows one path per process);
tests isolate by database name instead."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.storage import connect
from policyscope.config import load_config
from schemas.migrations import migrate

SHARED = Path(__file__).resolve().parents[2] / "shared"
CONFORMANCE = SHARED / "conformance" / "otlp-examples"
_counter = itertools.count()


@pytest.fixture(autouse=True)
def _main_module_kept():
    """`sys.modules['__main__']` as it was before each test: Streamlit runs a page script as
    `__main__` (AppTest too) and leaves it there, and a process pool started later in the same
    test process (the collector's normalizer workers, spawned) re-runs `__main__` by its path
    in each child -- a dashboard page, which then fails there and breaks the pool."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def chdb_client(chdb_path):
    client, _ = connect(f"chdb://{chdb_path}", "default")
    yield client
    client.close()


@pytest.fixture
def database(chdb_client) -> Iterator[str]:
    """A fresh, migrated database for one test, dropped after it: the session's one engine
    then holds a test's tables only while it runs (every query of the system tables -- the
    SQL guard's fuzzing reads them after each statement -- grows with the tables kept)."""
    name = f"t{os.getpid()}_{next(_counter)}"
    chdb_client.command(f"CREATE DATABASE IF NOT EXISTS {name}")
    migrate(chdb_client, name)
    chdb_client.database = name  # unqualified table names in a test mean its own database
    yield name
    chdb_client.database = "default"
    chdb_client.command(f"DROP DATABASE IF EXISTS {name} SYNC")


@pytest.fixture
def config_factory(chdb_path, tmp_path):
    def make(**overrides):
        values = {"dsn": f"chdb://{chdb_path}", "http_port": 0, "grpc_port": 0,
                  "spool_dir": str(tmp_path / "spool"), "batch_max_delay": 0.05,
                  "normalize_workers": 0}
        values.update(overrides)
        return load_config(env={}, overrides=values)
    return make


@pytest.fixture
def collector(chdb_client, database, config_factory):
    """A running CollectorService on free ports, writing to this test's database."""
    from collector.service import CollectorService

    service = CollectorService(config_factory(), client=chdb_client, database=database)
    service.start()
    yield service
    service.shutdown()


@pytest.fixture
def collectors(chdb_client, database, config_factory):
    """Start running CollectorServices on this test's database with the config overrides
    given (`collectors(max_connections=2)`); every one started is shut down at the end."""
    from collector.service import CollectorService

    services = []

    def start(**overrides):
        service = CollectorService(config_factory(**overrides), client=chdb_client,
                                   database=database)
        service.start()
        services.append(service)
        return service

    yield start
    for service in services:
        service.shutdown()


TIERS = ("unit", "integration", "e2e")


def pytest_report_header(config) -> str:
    """Say at the top of every run whether the conformance-vector tests can run."""
    if CONFORMANCE.is_dir():
        return f"conformance vectors: {CONFORMANCE} ({len(list(CONFORMANCE.iterdir()))} files)"
    return (f"conformance vectors: ABSENT at {CONFORMANCE}; the tests that read them will "
            "skip (../shared is only beside CI and developer checkouts)")


def pytest_collection_modifyitems(config, items) -> None:
    """Every test carries a tier marker (`pytestmark = pytest.mark.unit`, ...)."""
    unmarked = sorted({item.nodeid.split("::")[0] for item in items
                       if not any(item.get_closest_marker(t) for t in TIERS)})
    if unmarked:
        raise pytest.UsageError("tests without a tier marker (" + ", ".join(TIERS) + "): "
                                + ", ".join(unmarked))


def conformance_dir() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance vectors not present at {CONFORMANCE} "
                    "(../shared is only beside CI and developer checkouts)")
    return CONFORMANCE
