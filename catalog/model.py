"""The policy catalog's records: a `Policy` per policy id, its compliance `Control`s, and a
`Catalog` (one version's content: the policies sorted by id, with the digest that identifies
it), and a stored `Version` (a catalog with when and from where it was loaded).

The digest is a SHA-256 of the catalog's canonical JSON (policies by id, keys sorted), so
it depends on the content only: the same policies from other files, in another order or
with other comments and formatting, are the same version. Where a policy was read from
(`Policy.source`, `Policy.line`) is kept for messages and is not part of the content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

# the keys of a policy entry, in the order they are shown and stored
REQUIRED = ("id", "title", "owner", "category", "severity", "controls", "runbook")
OPTIONAL = ("engine", "description")
KEYS = (*REQUIRED, *OPTIONAL)


@dataclass(frozen=True, order=True)
class Control:
    """One compliance control a policy serves: `framework` names the standard (`SOC 2`,
    `CIS Kubernetes Benchmark v1.8`, `NIST SP 800-53 Rev. 5`), `control` its item there
    (`CC6.1`, `5.2.7`, `AC-6`)."""

    framework: str
    control: str

    def __str__(self) -> str:
        return f"{self.framework} {self.control}"


@dataclass(frozen=True)
class Policy:
    """One catalog entry. `owner` is the team that owns the policy (alerts about it go to
    them); `severity` is its default severity, one of `schemas.events.SEVERITIES`; `runbook`
    an http(s) URL; `engine` and `description` may be empty."""

    id: str
    title: str
    owner: str
    category: str
    severity: str
    controls: tuple[Control, ...]
    runbook: str
    engine: str = ""
    description: str = ""
    source: str = field(default="", compare=False)  # file it was read from
    line: int = field(default=0, compare=False)  # 1-based line of its entry there

    def to_dict(self) -> dict[str, Any]:
        """The content as JSON-ready values (no source position)."""
        return {"id": self.id, "title": self.title, "owner": self.owner,
                "category": self.category, "severity": self.severity,
                "controls": [{"framework": c.framework, "control": c.control}
                             for c in self.controls],
                "runbook": self.runbook, "engine": self.engine,
                "description": self.description}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        return cls(id=data["id"], title=data["title"], owner=data["owner"],
                   category=data["category"], severity=data["severity"],
                   controls=tuple(Control(c["framework"], c["control"])
                                  for c in data.get("controls", ())),
                   runbook=data["runbook"], engine=data.get("engine", ""),
                   description=data.get("description", ""))


@dataclass(frozen=True)
class Catalog:
    """One version of the catalog: its policies sorted by id (ids are unique)."""

    policies: tuple[Policy, ...] = ()

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.policies, key=lambda p: p.id))
        ids = [p.id for p in ordered]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"policy ids given twice: {', '.join(repeated)}")
        object.__setattr__(self, "policies", ordered)

    @classmethod
    def of(cls, policies: Iterable[Policy]) -> Catalog:
        return cls(tuple(policies))

    def __iter__(self) -> Iterator[Policy]:
        return iter(self.policies)

    def __len__(self) -> int:
        return len(self.policies)

    def __contains__(self, policy_id: object) -> bool:
        return policy_id in self.by_id

    @cached_property
    def by_id(self) -> Mapping[str, Policy]:
        return {p.id: p for p in self.policies}

    def get(self, policy_id: str) -> Policy | None:
        return self.by_id.get(policy_id)

    def canonical_json(self) -> str:
        """The content as compact JSON with sorted keys: what the digest is taken over."""
        return json.dumps([p.to_dict() for p in self.policies], sort_keys=True,
                          separators=(",", ":"), ensure_ascii=False)

    @cached_property
    def digest(self) -> str:
        """SHA-256 (hex) of `canonical_json()`: equal content, equal digest."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Version:
    """A stored catalog version: loaded at `loaded_at` (UTC) from `source` (the paths given,
    or what an import named)."""

    catalog: Catalog
    loaded_at: datetime
    digest: str
    source: str = ""

    def __len__(self) -> int:
        return len(self.catalog)
