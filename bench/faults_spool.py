"""The torn spool tail a crash in mid-write leaves, made while the collector is down.

The spool (collector/spool.py) appends frames -- `PSF1`, u32 payload length, u32 CRC-32, an
Arrow IPC stream -- to its newest `*.seg` file and fsyncs them before any request they hold is
acknowledged; at start-up it replays every complete frame and cuts a torn tail. So only a frame
no client has seen acknowledged may be torn:

* when the newest segment's last frame holds only events of requests not acknowledged at the
  kill (the collector died between its write and the answer), that frame itself is cut in
  the middle of its payload -- real rows are torn away, and the clients' retries must still
  store each of them once;
* otherwise half a frame of never-sent events (numbers from `events` up) is appended after
  the last complete frame, as a write cut short would leave it; those events must never
  appear in the table.

A spool with no segment left gets a new one holding only the torn frame; a segment the kill
itself left torn (killed while a frame was being written in pieces) is left as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from bench.faults_traffic import DIGITS, NUMBER_PREFIX, EventSet
from collector.spool import HEADER, MAGIC, encode
from schemas.events import DECISIONS

TORN_EVENTS = 100  # rows in an appended torn frame


@dataclass
class TornTail:
    segment: str  # file name
    mode: str  # "cut the last frame (unacknowledged)", "appended half a frame", ...
    frames_before: int  # complete frames left in front of the torn one
    torn_bytes: int  # bytes the spool must cut at its next start
    numbers: list  # event numbers of the torn frame's rows (first, last, count)

    def describe(self) -> str:
        text = (f"{self.mode} in `{self.segment}` after {self.frames_before} complete "
                f"frame(s): {self.torn_bytes:,} torn bytes")
        if self.numbers:
            first, last, count = self.numbers
            text += f" holding events {first:,}..{last:,} ({count:,} rows)"
        return text


def frames(data: bytes) -> list[tuple[int, int]]:
    """(offset, total length) of each complete frame at the start of a segment."""
    out, pos = [], 0
    while pos + HEADER.size <= len(data):
        magic, length, _ = HEADER.unpack_from(data, pos)
        if magic != MAGIC or pos + HEADER.size + length > len(data):
            break
        out.append((pos, HEADER.size + length))
        pos += HEADER.size + length
    return out


def holds_frames(spool_dir: Path) -> bool:
    """Some segment holds a complete frame: rows durable and not yet released by the writer
    (a segment is deleted once all its frames are inserted)."""
    return any(frames(path.read_bytes()) for path in spool_dir.glob("*.seg"))


def _frame_numbers(data: bytes, offset: int, length: int) -> list[int]:
    table = pa.ipc.open_stream(data[offset + HEADER.size:offset + length]).read_all()
    if "resource_id" not in table.column_names:
        return []
    return [int(v[len(NUMBER_PREFIX):]) for v in table.column("resource_id").to_pylist()
            if v and v.startswith(NUMBER_PREFIX)]


def tear(spool_dir: Path, event_set: EventSet, acknowledged: bytearray) -> TornTail:
    """Leave a torn last frame in the newest segment of `spool_dir` (collector stopped)."""
    segments = sorted(spool_dir.glob("*.seg"))
    if segments:
        path = segments[-1]
        data = path.read_bytes()
        complete = frames(data)
        end = complete[-1][0] + complete[-1][1] if complete else 0
        if complete and end == len(data):
            offset, length = complete[-1]
            numbers = _frame_numbers(data, offset, length)
            requests = {n // event_set.per_request for n in numbers}
            if numbers and not any(acknowledged[r] for r in requests if r < len(acknowledged)):
                cut = offset + HEADER.size + (length - HEADER.size) // 2
                _truncate(path, cut)
                return TornTail(path.name, "cut the last frame (its requests unacknowledged)",
                                len(complete) - 1, cut - offset,
                                [min(numbers), max(numbers), len(numbers)])
        if end != len(data):  # the kill came in mid-write (a frame written in pieces)
            return TornTail(path.name, "the kill itself tore the last frame (killed in "
                            "mid-write)", len(complete), len(data) - end, [])
        torn = _torn_frame(event_set)
        _append(path, torn)
        return TornTail(path.name, "appended half a frame of never-sent events",
                        len(complete), len(torn), _torn_numbers(event_set))
    path = spool_dir / f"{0:012d}.seg"
    torn = _torn_frame(event_set)
    _append(path, torn)
    return TornTail(path.name, "new segment holding only half a frame of never-sent events", 0,
                    len(torn), _torn_numbers(event_set))


def _torn_numbers(event_set: EventSet) -> list[int]:
    return [event_set.events, event_set.events + TORN_EVENTS - 1, TORN_EVENTS]


def _torn_frame(event_set: EventSet) -> bytes:
    """The first half of a frame of TORN_EVENTS never-sent decision rows."""
    first = event_set.events
    digits = [f"{n:0{DIGITS}d}" for n in range(first, first + TORN_EVENTS)]
    rows = pa.Table.from_pylist(
        [{"event_id": event_set.id_prefix + d, "resource_id": NUMBER_PREFIX + d,
          "event_time": event_set.start_ns // 1_000_000, "outcome": "allow",
          "policy_id": "torn.frame", "attributes": []} for d in digits],
        schema=DECISIONS.arrow_schema())
    frame = encode(DECISIONS.name, rows)
    return frame[:HEADER.size + (len(frame) - HEADER.size) // 2]


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(size)
        os.fsync(fh.fileno())
