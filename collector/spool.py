"""The durability point: an fsync'd, append-only spool of normalized rows.

A receiver acknowledges a request only after `Spool.append(...)` has resolved, i.e. after the
rows are written to a segment file and fsync'd. Concurrent requests share one fsync (group
commit). The writer takes durable frames with `take()`, inserts them into ClickHouse and calls
`done()`; a segment whose frames are all inserted is deleted. After a crash, `start()` replays
every frame still on disk (a torn tail frame, never acknowledged, is cut off).

Frame format: b"PSF1", u32 payload length, u32 CRC-32 of the payload, payload = one Arrow IPC
stream holding one table's rows; the table name is in the Arrow schema metadata.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import zlib
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from collector.errors import StorageUnavailable

log = logging.getLogger(__name__)

MAGIC = b"PSF1"
HEADER = struct.Struct("<4sII")
SEGMENT_MAX_BYTES = 32 * 1024**2
_TABLE_KEY = b"policyscope.table"


@dataclass(eq=False)
class Segment:
    path: Path
    file: object | None = None  # open for append while active
    size: int = 0
    outstanding: int = 0  # durable frames not yet inserted
    frames_written: int = 0


@dataclass(eq=False)
class Frame:
    """Rows of one table that are durable in `segment` and wait to be inserted."""

    segment: Segment
    table_name: str
    rows: pa.Table
    nbytes: int
    durable_at: float = field(default_factory=time.monotonic)


def encode(table_name: str, rows: pa.Table) -> bytes:
    rows = rows.replace_schema_metadata({_TABLE_KEY: table_name.encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write_table(rows)
    payload = sink.getvalue().to_pybytes()
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_segment(data: bytes) -> tuple[list[tuple[str, pa.Table]], int]:
    """Frames of a segment file and the length of its valid prefix (a torn tail is cut)."""
    frames, pos = [], 0
    while pos + HEADER.size <= len(data):
        magic, length, crc = HEADER.unpack_from(data, pos)
        payload = data[pos + HEADER.size: pos + HEADER.size + length]
        if magic != MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
            break
        table = pa.ipc.open_stream(payload).read_all()
        name = table.schema.metadata[_TABLE_KEY].decode()
        frames.append((name, table.replace_schema_metadata(None)))
        pos += HEADER.size + length
    return frames, pos


class Spool:
    """Group-committing durable queue between receivers and the ClickHouse writer."""

    def __init__(self, directory: Path, *, max_bytes: int, retry_after: float):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.retry_after = retry_after
        self._queue: list[tuple[list[tuple[str, pa.Table, bytes]], Future]] = []
        self._queue_cond = threading.Condition()
        self._lock = threading.Condition()  # segments, pending frames, backlog
        self._pending: list[Frame] = []
        self._backlog_bytes = 0
        self._active: Segment | None = None
        self._next_segment = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.replayed_rows = 0
        self.fsyncs = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.directory.glob("*.seg")):
            self._replay(path)
        self._thread = threading.Thread(target=self._sync_loop, name="spool-sync", daemon=True)
        self._thread.start()
        log.info("spool started at %s (%d rows replayed)", self.directory, self.replayed_rows)

    def shutdown(self) -> None:
        """Stop accepting; frames already durable stay on disk for the writer or the next start."""
        with self._queue_cond:
            self._stopping = True
            self._queue_cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            self._lock.notify_all()
            if self._active is not None and self._active.file is not None:
                self._active.file.close()
                self._active.file = None

    def _replay(self, path: Path) -> None:
        number = int(path.stem)
        self._next_segment = max(self._next_segment, number + 1)
        data = path.read_bytes()
        frames, valid = decode_segment(data)
        if valid < len(data):
            log.warning("spool segment %s: cut a torn tail of %d bytes (never acknowledged)",
                        path.name, len(data) - valid)
            with open(path, "r+b") as fh:
                fh.truncate(valid)
                os.fsync(fh.fileno())
        segment = Segment(path, size=valid, outstanding=len(frames))
        if not frames:
            path.unlink()
            return
        for name, rows in frames:
            self._pending.append(Frame(segment, name, rows, rows.nbytes))
            self._backlog_bytes += rows.nbytes
            self.replayed_rows += rows.num_rows

    # -- receivers' side -----------------------------------------------------------------------
    def append(self, tables: dict[str, pa.Table]) -> Future:
        """Queue rows for the next group commit; the future resolves once they are fsync'd.

        Raises StorageUnavailable at once when the backlog is over `max_bytes` or stopping.
        """
        if self._stopping:
            raise StorageUnavailable("collector is shutting down", self.retry_after)
        if self._backlog_bytes > self.max_bytes:
            raise StorageUnavailable(
                f"spool backlog {self._backlog_bytes} bytes is over its limit {self.max_bytes}: "
                "storage is slower than ingest or down", self.retry_after)
        encoded = [(name, rows, encode(name, rows)) for name, rows in tables.items()
                   if rows.num_rows]
        future: Future = Future()
        if not encoded:
            future.set_result(None)
            return future
        with self._queue_cond:
            self._queue.append((encoded, future))
            self._queue_cond.notify()
        return future

    def _sync_loop(self) -> None:
        while True:
            with self._queue_cond:
                while not self._queue and not self._stopping:
                    self._queue_cond.wait()
                batch, self._queue = self._queue, []
                if not batch and self._stopping:
                    return
            try:
                frames = self._write(batch)
            except OSError as exc:
                log.error("spool write failed: %s", exc)
                error = StorageUnavailable(f"spool write failed: {exc}", self.retry_after)
                for _, future in batch:
                    future.set_exception(error)
                continue
            with self._lock:
                self._pending.extend(frames)
                self._lock.notify_all()
            for _, future in batch:
                future.set_result(None)

    def _write(self, batch) -> list[Frame]:
        frames = []
        with self._lock:
            segment = self._active
            if segment is None or segment.size >= SEGMENT_MAX_BYTES:
                segment = self._open_segment()
            for encoded, _ in batch:
                for name, rows, data in encoded:
                    segment.file.write(data)
                    segment.size += len(data)
                    segment.outstanding += 1
                    frames.append(Frame(segment, name, rows, rows.nbytes))
                    self._backlog_bytes += rows.nbytes
            segment.file.flush()
            os.fsync(segment.file.fileno())
            self.fsyncs += 1
        return frames

    def _open_segment(self) -> Segment:
        if self._active is not None and self._active.file is not None:
            self._active.file.close()
            self._active.file = None
        path = self.directory / f"{self._next_segment:012d}.seg"
        self._next_segment += 1
        segment = Segment(path, file=open(path, "ab"))
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new file's directory entry is durable too
        finally:
            os.close(dir_fd)
        self._active = segment
        return segment

    # -- writer's side -------------------------------------------------------------------------
    def take(self, max_rows: int, max_delay: float, stop: threading.Event) -> list[Frame]:
        """Block until `max_rows` rows are durable or the oldest waited `max_delay` seconds."""
        with self._lock:
            while not stop.is_set():
                rows = sum(f.rows.num_rows for f in self._pending)
                if self._pending and (rows >= max_rows or time.monotonic()
                                      - self._pending[0].durable_at >= max_delay):
                    break
                timeout = max_delay if not self._pending else max(
                    0.0, max_delay - (time.monotonic() - self._pending[0].durable_at))
                self._lock.wait(timeout=min(timeout, 0.5) or 0.01)
            taken, total = [], 0
            for frame in self._pending:
                if taken and total + frame.rows.num_rows > max_rows:
                    break
                taken.append(frame)
                total += frame.rows.num_rows
            del self._pending[:len(taken)]
            return taken

    def give_back(self, frames: list[Frame]) -> None:
        """Return frames the writer could not insert; they are taken again first."""
        with self._lock:
            self._pending[:0] = frames
            self._lock.notify_all()

    def done(self, frames: list[Frame]) -> None:
        """Frames are in ClickHouse: release them, delete segments with nothing outstanding."""
        with self._lock:
            for frame in frames:
                frame.segment.outstanding -= 1
                self._backlog_bytes -= frame.nbytes
            for segment in {f.segment for f in frames}:
                if segment.outstanding == 0:
                    if segment is self._active:
                        segment.file.close()
                        segment.file = None
                        self._active = None
                    segment.path.unlink(missing_ok=True)

    @property
    def backlog_bytes(self) -> int:
        return self._backlog_bytes

    @property
    def pending_rows(self) -> int:
        with self._lock:
            return sum(f.rows.num_rows for f in self._pending)
