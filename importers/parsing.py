"""What every KIND's parser is given (`Options`) and gives back (`Parsed`).

A parser is `parse(document, options) -> Parsed`: it reads the whole input first and raises
`MalformedInput` at the first thing it cannot read, so a bad file imports nothing. It returns
the events the input states outright (decisions, inventory reports, heartbeats) and, for a
state-only source, its `Listing`s, which run.py diffs against the stored snapshots.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from importers.diff import Listing
from importers.facts import SourceFacts
from importers.records import Event
from schemas.events import SEVERITIES

SEVERITY_KEYS = ("policyscope.io/severity", "severity")  # labels first, then annotations


@dataclass(frozen=True)
class Options:
    facts: SourceFacts = field(default_factory=SourceFacts)
    at_ms: int = 0  # the snapshot / observation time of this import (--at, default now)
    team_label: str = "team"  # inventory: the label (else annotation) naming the team
    enforced_label: str = "policyscope.io/enforced"  # inventory: "true" / "false"
    prune: bool = False  # a List is complete: reports it no longer holds are diffed as empty
    artifact: str = ""  # SBOMs, vulnerability scans: --artifact, over the name in the file


@dataclass
class Parsed:
    events: list[Event] = field(default_factory=list)
    listings: list[Listing] = field(default_factory=list)
    prune_prefixes: list[str] = field(default_factory=list)  # see Options.prune
    skipped: Counter = field(default_factory=Counter)  # entries not imported, by reason
    objects: int = 0  # reports, constraints, lines, rows read


def severity_of(*maps: dict[str, str], default: str = "medium") -> str:
    """A severity named by one of SEVERITY_KEYS in the first map holding one (labels, then
    annotations); `default` when none does or the value is not a known severity."""
    for mapping in maps:
        for key in SEVERITY_KEYS:
            value = (mapping.get(key) or "").strip().lower()
            if value in SEVERITIES:
                return value
    return default
