"""Silences and maintenance windows, as code and from the CLI.

A silence has matchers (label -> value; labels are `slo`, `severity` and the SLO's dimension
names such as `team`) and a time range [starts_at, ends_at). An alert matched by an active
silence is still evaluated and recorded, but not notified. Files: YAML documents with
`kind: Silence` or `kind: MaintenanceWindow` in `<slo_dir>/silences/`; CLI-made silences live in
the `silences` table. Expired silences are kept for the audit trail and ignored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml
from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from slo import store

KINDS = ("Silence", "MaintenanceWindow")


class SilenceError(ValueError):
    """A silence file or flag is invalid; the message names the file and key."""


@dataclass(frozen=True)
class Silence:
    silence_id: str
    matchers: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    comment: str = ""
    created_by: str = ""
    source: str = ""  # the file a silence kept as code came from; "" for the table's

    def active(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.matchers.items())


def make_id(matchers: dict[str, str], starts_at: datetime, ends_at: datetime) -> str:
    text = json.dumps([sorted(matchers.items()), starts_at.isoformat(), ends_at.isoformat()])
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class _SilenceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    matchers: dict[str, str] = Field(min_length=1)
    startsAt: datetime  # noqa: N815 - the file's key
    endsAt: datetime  # noqa: N815
    comment: str = ""
    createdBy: str = ""  # noqa: N815

    @field_validator("startsAt", "endsAt")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class _SilenceDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    apiVersion: str = Field(pattern="^policyscope/v1$")  # noqa: N815
    kind: str
    metadata: dict = Field(default_factory=dict)
    spec: _SilenceSpec


def load_files(directory: Path) -> list[Silence]:
    """Silences from `<directory>/*.yaml`; raises SilenceError naming file and key path."""
    found = []
    if not directory.is_dir():
        return found
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        except yaml.YAMLError as exc:
            raise SilenceError(f"{path}: not valid YAML: {exc}") from exc
        for doc in docs:
            if not isinstance(doc, dict) or doc.get("kind") not in KINDS:
                raise SilenceError(f"{path}: kind must be one of {', '.join(KINDS)}")
            try:
                spec = _SilenceDoc.model_validate(doc).spec
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise SilenceError(f"{path}: {where}: {first['msg']}") from exc
            if spec.endsAt <= spec.startsAt:
                raise SilenceError(f"{path}: spec.endsAt must be after spec.startsAt")
            found.append(Silence(make_id(spec.matchers, spec.startsAt, spec.endsAt),
                                 spec.matchers, spec.startsAt, spec.endsAt, spec.comment,
                                 spec.createdBy, source=str(path)))
    return found


def load_table(client: Client, at: datetime) -> list[Silence]:
    """The CLI-made silences not yet ended at `at` (some may start later)."""
    return [Silence(**row) for row in store.active_silences(client, at)]


def add(client: Client, matchers: dict[str, str], starts_at: datetime, ends_at: datetime,
        comment: str, created_by: str) -> Silence:
    if not matchers:
        raise SilenceError("a silence needs at least one matcher, e.g. --match slo=my-slo")
    if ends_at <= starts_at:
        raise SilenceError("a silence must end after it starts")
    silence = Silence(make_id(matchers, starts_at, ends_at), matchers, starts_at, ends_at,
                      comment, created_by)
    store.add_silence(client, asdict(silence))
    return silence


def expire(client: Client, silence_id: str, at: datetime) -> bool:
    """End a CLI-made silence now; False when there is no active silence with that id."""
    current = [s for s in load_table(client, at) if s.silence_id == silence_id]
    if not current:
        return False
    store.expire_silence(client, asdict(current[0]), at)
    return True


def silenced(silences: list[Silence], labels: dict[str, str], at: datetime) -> bool:
    return any(s.active(at) and s.matches(labels) for s in silences)
