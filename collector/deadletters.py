"""Dead letters: the rows ClickHouse refused for themselves, parked so nothing acknowledged is
dropped, and what an operator does with them (`policyscope deadletters list | replay | purge`).

The writer bisects a batch the server keeps refusing until only the rows refused for
themselves remain (collector/writer.py) and parks those here, in `<spool_dir>/dead-letter/`:

    <parked_ns>.seg    the rows, in the spool's frame format (collector/spool.py)
    <parked_ns>.json   {"parked_at", "reasons": {CODE: {"rows", "message"}}, "replays", ...}

CODE is the server's error name (`VIOLATED_CONSTRAINT`, `TYPE_MISMATCH`), message the first
line of its answer. Both files are written under a temporary name, fsync'd and renamed, the
sidecar first: a `.seg` that can be listed always has its sidecar. A `.seg` parked before
reasons were recorded has none and lists as `UNRECORDED`.

`replay` re-inserts through the writer's own path (staging table, INSERT ... SELECT of the
event ids not stored yet, bisection of what is refused): replaying twice, or replaying rows a
client retry stored meanwhile, adds nothing. Rows still refused stay parked (their file
rewritten with the server's new reasons); the rest of the file is gone. `purge` deletes files,
all or those parked before a cutoff.

Quarantine: a native receiver that acknowledges a batch holding a record it can make no row of
(OPA's decision-log API retries a refused batch forever, so one bad event must not block the
rest) parks that record here too, before the acknowledgement, as a file of the table
`quarantine` (`quarantined()`: receive time, source, reason code, message, the record's text
with its erased / masked fields removed and secrets redacted). `list` shows them with their
reason codes; `replay` leaves them (there is nothing to insert); `purge` deletes them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import pyarrow as pa

from collector.spool import decode_segment, encode
from core.config import redact_dsn

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)

FOLDER = "dead-letter"
UNRECORDED = "UNRECORDED"  # parked before the writer recorded reasons
DAMAGED = "DAMAGED_FILE"  # part of the file cannot be read back
UNKNOWN_TABLE = "UNKNOWN_TABLE"  # a table this version of PolicyScope does not have
MESSAGE_CHARS = 300
QUARANTINE = "quarantine"  # the table of source records no row could be made of
QUARANTINE_SCHEMA = pa.schema([
    ("received_at", pa.timestamp("ms", tz="UTC")), ("source", pa.string()),
    ("reason", pa.string()), ("message", pa.string()), ("record", pa.string())])


def folder_of(spool_dir: Path) -> Path:
    """Where a collector with spool `spool_dir` parks dead letters."""
    return Path(spool_dir) / FOLDER


def reason_of(exc: Exception) -> str:
    """The server's error name (`TOO_MANY_PARTS`, `TYPE_MISMATCH`), else the exception type."""
    found = re.search(r"\(([A-Z][A-Z_]+)\)", str(exc))
    return found.group(1) if found else type(exc).__name__


def message_of(exc: Exception) -> str:
    """The first line of the server's answer, without the `Code: N. DB::Exception:` preamble
    and the version tail, credentials in URLs hidden; at most MESSAGE_CHARS."""
    line = str(exc).strip().split("\n")[0]
    line = re.sub(r"^.*?DB::Exception: ", "", line)
    line = re.sub(r"\s*\(version [^)]*\)\.?\s*$", "", line)
    return redact_dsn(line)[:MESSAGE_CHARS]


@dataclass
class Refused:
    """Rows the server refused for themselves, by table, with its reasons (rows per code and
    the first message seen per code)."""

    tables: dict[str, list[pa.Table]] = field(default_factory=dict)
    reasons: Counter = field(default_factory=Counter)
    messages: dict[str, str] = field(default_factory=dict)

    def add(self, table_name: str, rows: pa.Table, reason: str, message: str) -> None:
        self.tables.setdefault(table_name, []).append(rows)
        self.reasons[reason] += rows.num_rows
        self.messages.setdefault(reason, message)

    def add_error(self, table_name: str, rows: pa.Table, exc: Exception) -> None:
        self.add(table_name, rows, reason_of(exc), message_of(exc))

    @property
    def rows(self) -> int:
        return sum(p.num_rows for parts in self.tables.values() for p in parts)

    def __bool__(self) -> bool:
        return bool(self.tables)


@dataclass(frozen=True)
class DeadLetter:
    """One parked file as `list` shows it. `reasons` maps the server's error name to rows,
    `messages` to its first line; `parked_at` is when the rows were first parked (a replay
    that leaves rows parked keeps it)."""

    path: Path
    parked_at: datetime
    size: int  # bytes of the .seg file
    tables: dict[str, int]  # table -> rows
    reasons: dict[str, int]
    messages: dict[str, str]
    replays: int = 0
    damaged: bool = False

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    @property
    def reason(self) -> str:
        """The reasons in one cell: `VIOLATED_CONSTRAINT`, or `A (2), B (1)` for several."""
        if len(self.reasons) == 1:
            return next(iter(self.reasons))
        return ", ".join(f"{k} ({v})" for k, v in sorted(self.reasons.items()))

    def to_json(self) -> dict:
        return {"file": str(self.path), "tables": self.tables, "rows": self.rows,
                "reasons": self.reasons, "messages": self.messages,
                "parked_at": self.parked_at.isoformat(), "size": self.size,
                "replays": self.replays, "damaged": self.damaged}


@dataclass(frozen=True)
class ReplayOutcome:
    """What one file's replay did: rows stored now, rows found stored already (a retry or an
    earlier replay got them in), rows still refused (left parked, with `reasons`/`messages`)."""

    letter: DeadLetter
    stored: int
    already_stored: int
    still_refused: int
    reasons: dict[str, int]
    messages: dict[str, str]

    def to_json(self) -> dict:
        return {"file": str(self.letter.path), "rows": self.letter.rows, "stored": self.stored,
                "already_stored": self.already_stored, "still_refused": self.still_refused,
                "reasons": self.reasons, "messages": self.messages}


class DeadLetterFolder:
    """The dead-letter files of one spool: parking (the writer's), reading, removing."""

    def __init__(self, path: Path):
        self.path = Path(path)

    # -- parking ----------------------------------------------------------------------------
    def park(self, refused: Refused) -> Path:
        """Write refused rows durably as a new file; returns its path."""
        self.path.mkdir(parents=True, exist_ok=True)
        stem = f"{time.time_ns()}"
        meta = {"parked_at": datetime.now(timezone.utc).isoformat(), "replays": 0}
        return self._write(stem, refused, meta)

    def _write(self, stem: str, refused: Refused, meta: dict) -> Path:
        """Sidecar, then rows, each fsync'd under a temporary name and renamed into place."""
        meta = {**meta, "reasons": {code: {"rows": rows, "message": refused.messages.get(code,
                                                                                        "")}
                                    for code, rows in sorted(refused.reasons.items())}}
        segment = self.path / f"{stem}.seg"
        sidecar = self.path / f"{stem}.json"
        rows = b"".join(encode(name, pa.concat_tables(parts))
                        for name, parts in refused.tables.items())
        _write_durably(sidecar, json.dumps(meta, indent=1).encode())
        _write_durably(segment, rows)
        _sync_directory(self.path)
        return segment

    # -- reading ----------------------------------------------------------------------------
    def entries(self) -> list[DeadLetter]:
        """Every parked file, oldest first."""
        if not self.path.is_dir():
            return []
        found = [e for e in map(self._read, self.path.glob("*.seg")) if e is not None]
        return sorted(found, key=lambda e: (e.parked_at, e.name))

    def _read(self, path: Path) -> DeadLetter | None:
        """The file as listed; None if it went meanwhile (replayed or purged elsewhere)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        frames, valid = decode_segment(data)
        tables: dict[str, int] = {}
        for name, rows in frames:
            tables[name] = tables.get(name, 0) + rows.num_rows
        meta = _read_sidecar(path.with_suffix(".json"))
        recorded = {code: v for code, v in meta.get("reasons", {}).items() if isinstance(v, dict)}
        reasons = {code: int(v.get("rows", 0)) for code, v in recorded.items()}
        messages = {code: str(v.get("message", "")) for code, v in recorded.items()}
        if not reasons:
            reasons = {UNRECORDED: sum(tables.values())}
        return DeadLetter(path, _parked_at(path, meta), len(data), tables, reasons, messages,
                          int(meta.get("replays", 0)), damaged=valid < len(data))

    def frames(self, letter: DeadLetter) -> list[tuple[str, pa.Table]]:
        return decode_segment(letter.path.read_bytes())[0]

    # -- removing ---------------------------------------------------------------------------
    def remove(self, letter: DeadLetter) -> None:
        letter.path.unlink(missing_ok=True)
        letter.path.with_suffix(".json").unlink(missing_ok=True)

    def rewrite(self, letter: DeadLetter, refused: Refused) -> None:
        """Keep only `refused` of the file, under its name, with the new reasons."""
        meta = {"parked_at": letter.parked_at.isoformat(), "replays": letter.replays + 1,
                "last_replayed_at": datetime.now(timezone.utc).isoformat()}
        self._write(letter.path.stem, refused, meta)

    def purge(self, letters: Iterable[DeadLetter]) -> tuple[int, int]:
        """Delete the files; (files, rows) deleted."""
        files = rows = 0
        for letter in letters:
            self.remove(letter)
            files, rows = files + 1, rows + letter.rows
        if files:
            log.warning("purged %d dead-letter files (%d rows) from %s", files, rows, self.path)
        return files, rows


def quarantined(source: str, records: list[tuple[str, str, str]]) -> Refused:
    """Source records no row could be made of, as dead letters to `park`: (reason code,
    message, record text) each."""
    refused = Refused()
    now = datetime.now(timezone.utc)
    for code, message, record in records:
        rows = pa.Table.from_pylist([{"received_at": now, "source": source, "reason": code,
                                      "message": message[:MESSAGE_CHARS], "record": record}],
                                    schema=QUARANTINE_SCHEMA)
        refused.add(QUARANTINE, rows, code, message)
    return refused


def older_than(letters: Iterable[DeadLetter], seconds: float,
               now: datetime | None = None) -> list[DeadLetter]:
    """The letters parked more than `seconds` before `now`."""
    now = now or datetime.now(timezone.utc)
    return [e for e in letters if (now - e.parked_at).total_seconds() > seconds]


def replay(client: Client, database: str, folder: DeadLetterFolder, *,
           letters: list[DeadLetter] | None = None,
           progress: Callable[[int, int], None] | None = None) -> list[ReplayOutcome]:
    """Re-insert parked rows through the writer's insert path, file by file (all files, or
    `letters`). A file whose rows are all stored (now or before) is removed; rows still refused
    stay in it with the server's reasons. `progress(files_done, files)` after each file.

    Needs the store itself: on the embedded store a running collector holds it (the caller
    opens `client`). Raises the storage error (OperationalError) when storage becomes
    unreachable; files not replayed yet, and the one under way, are left as they were.
    """
    # Imported here: the writer parks through this module.
    from collector.writer import ClickHouseWriter

    letters = [e for e in (folder.entries() if letters is None else letters)
               if QUARANTINE not in e.tables]  # source records: nothing to insert
    writer = ClickHouseWriter(client, database, None, instance=f"replay_{secrets.token_hex(4)}",
                              max_rows=0, max_delay=0)
    writer.create_staging()
    outcomes = []
    try:
        for done, letter in enumerate(letters, 1):
            outcomes.append(_replay_one(writer, folder, letter))
            if progress is not None:
                progress(done, len(letters))
    finally:
        writer.drop_staging()
    return outcomes


def _replay_one(writer, folder: DeadLetterFolder, letter: DeadLetter) -> ReplayOutcome:
    inserted, duplicates = writer.inserted_rows, writer.duplicate_rows
    refused = writer.store_accepted(folder.frames(letter))
    stored, already = writer.inserted_rows - inserted, writer.duplicate_rows - duplicates
    if letter.damaged:  # the readable rows are stored; the file stays as it is, for a human
        message = (f"{letter.name} holds bytes that cannot be read back; its readable rows "
                   "were stored and the file is left untouched")
        log.error("dead letter %s: %s", letter.name, message)
        return ReplayOutcome(letter, stored, already, refused.rows,
                             {**refused.reasons, DAMAGED: letter.rows},
                             {**refused.messages, DAMAGED: message})
    outcome = ReplayOutcome(letter, stored, already, refused.rows, dict(refused.reasons),
                            dict(refused.messages))
    if refused:
        folder.rewrite(letter, refused)
        log.warning("dead letter %s: %d rows stored, %d still refused (%s)", letter.name,
                    stored, refused.rows, dict(refused.reasons))
    else:
        folder.remove(letter)
        log.info("dead letter %s replayed: %d rows stored, %d were stored already",
                 letter.name, stored, already)
    return outcome


def _read_sidecar(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) and isinstance(meta.get("reasons", {}), dict) else {}


def _parked_at(path: Path, meta: dict) -> datetime:
    """The sidecar's time, else the nanoseconds of the file name, else its mtime."""
    try:
        return datetime.fromisoformat(meta["parked_at"])
    except (KeyError, TypeError, ValueError):
        pass
    seconds = int(path.stem) / 1e9 if path.stem.isdigit() else path.stat().st_mtime
    return datetime.fromtimestamp(seconds, timezone.utc)


def _write_durably(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".tmp")
    with open(partial, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, path)


def _sync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
