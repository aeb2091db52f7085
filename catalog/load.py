"""Validating and storing a catalog version: what `policyscope catalog load` and
`policyscope import catalog FILE|-` run.

A catalog is stored whole or not at all: any problem in any file raises `CatalogInvalid`
listing every one, and nothing is written. A catalog whose content (digest) equals the
latest stored version adds no version, so loading on every start or every CI run is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from clickhouse_connect.driver.client import Client

from catalog import store
from catalog.model import Catalog, Version
from catalog.parse import CatalogInvalid, check_paths, check_sources

__all__ = ["CatalogInvalid", "Loaded", "load_at_start", "load_catalog", "load_paths",
           "load_text"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    """The outcome of a load: the latest version after it, and whether this load added it
    (False: the content was already the latest version)."""

    version: Version
    added: bool

    def describe(self) -> str:
        v = self.version
        what = "stored as a new version" if self.added else "unchanged: already the latest " \
                                                            "version"
        return (f"catalog {v.digest[:12]} ({len(v)} policies) {what}, loaded at "
                f"{v.loaded_at.isoformat(timespec='seconds')}")


def load_catalog(client: Client, catalog: Catalog, *, source: str,
                 loaded_at: datetime | None = None) -> Loaded:
    """Store `catalog` as a new version unless it is the latest already. `loaded_at`
    (timezone-aware) defaults to the server's clock."""
    previous = store.latest(client)
    if previous is not None and previous.digest == catalog.digest:
        return Loaded(previous, False)
    # the previous version's time and the new digest: two loads of the same content racing
    # from the same latest version share it, and the table keeps one of them
    token = f"policy-catalog:{previous.loaded_at.isoformat() if previous else '-'}:" \
            f"{catalog.digest}"
    store.insert_version(client, catalog, source=source, token=token, loaded_at=loaded_at)
    now = store.latest(client)
    assert now is not None  # just inserted (or deduplicated against an equal one)
    return Loaded(now, now.digest == catalog.digest and
                  (previous is None or now.loaded_at != previous.loaded_at))


def load_paths(client: Client, paths: Iterable[str | Path], *,
               loaded_at: datetime | None = None) -> Loaded:
    """Check catalog files and directories together and store them as one version.
    Raises CatalogInvalid (nothing stored) when any has a problem."""
    paths = [str(p) for p in paths]
    catalog = check_paths(paths).catalog
    return load_catalog(client, catalog, source=", ".join(paths), loaded_at=loaded_at)


def load_text(client: Client, text: str, *, source: str = "-",
              loaded_at: datetime | None = None) -> Loaded:
    """One catalog document given as text (standard input for `import catalog -`), named
    `source` in messages. Raises CatalogInvalid (nothing stored) on any problem."""
    catalog = check_sources([(source, text)]).catalog
    return load_catalog(client, catalog, source=source, loaded_at=loaded_at)


def load_at_start(client: Client, directory: Path) -> Loaded | None:
    """What `policyscope up` and `worker` do when they start: the catalog directory's files
    stored as a version when the directory exists (unchanged content adds none). An invalid
    catalog is logged with every problem and not stored: the stack still starts (decisions of
    policies the stored catalog lacks are flagged, never dropped). None when nothing loaded."""
    if not directory.is_dir():
        log.info("no policy catalog at %s (catalog.catalog_dir): policies show uncatalogued",
                 directory)
        return None
    try:
        loaded = load_paths(client, [directory])
    except CatalogInvalid as exc:
        log.error("the policy catalog in %s is not valid, not loaded (run `policyscope "
                  "catalog validate`):\n%s", directory, exc)
        return None
    log.info("%s", loaded.describe())
    return loaded
