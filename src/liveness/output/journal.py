"""An append-only Arrow IPC stream on disk that survives SIGKILL: the Parquet writer's journal.

Parquet puts its footer at the end, so a killed writer leaves an unreadable file. While a scan
runs, its rows go to ``FILE.parquet.journal`` instead: one schema message, then one record-batch
message per append (``RecordBatch.serialize``), each written whole with ``os.write``-level
flushes and ``fsync`` on :meth:`JournalWriter.sync`. A kill can only tear the last message;
:func:`read_journal` stops at the last complete one, and a resumed writer truncates the torn
tail and appends after it. Columns are plain (no dictionary encoding), so no dictionary
messages are needed and every record-batch message stands alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa

from liveness.errors import InputError

__all__ = ["JournalWriter", "read_journal", "scan_journal"]


def scan_journal(path: str) -> tuple[pa.Schema | None, int]:
    """The journal's schema (None if even that is torn) and the length of its complete prefix."""
    with pa.memory_map(path) as source:
        try:
            message = pa.ipc.read_message(source)
            schema = pa.ipc.read_schema(message)
        except (EOFError, OSError, pa.ArrowInvalid):
            return None, 0
        end = source.tell()
        while True:
            try:
                pa.ipc.read_message(source)
            except (EOFError, OSError, pa.ArrowInvalid):
                return schema, end
            end = source.tell()


def read_journal(path: str) -> tuple[pa.Schema | None, Iterator[pa.RecordBatch]]:
    """The schema and the complete record batches of a journal (a torn last message is skipped)."""
    schema, _ = scan_journal(path)
    if schema is None:
        return None, iter(())
    return schema, _batches(path, schema)


def _batches(path: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    with pa.memory_map(path) as source:
        pa.ipc.read_message(source)
        while True:
            try:
                message = pa.ipc.read_message(source)
            except (EOFError, OSError, pa.ArrowInvalid):
                return
            if message.type != "record batch":
                raise InputError(f"{path}: unexpected {message.type} message in journal")
            yield pa.ipc.read_record_batch(message, schema)


class JournalWriter:
    """Appends record batches to a journal; :meth:`sync` makes everything so far durable."""

    def __init__(self, path: str, schema: pa.Schema, *, resume: bool = False) -> None:
        self.path = path
        self.schema = schema
        self._file: BinaryIO
        if resume and os.path.exists(path):
            found, end = scan_journal(path)
            if found is not None and not found.equals(schema, check_metadata=False):
                raise InputError(
                    f"{path}: cannot resume: the journal's columns ({', '.join(found.names)}) "
                    f"differ from the requested ones ({', '.join(schema.names)})"
                )
            self._file = open(path, "r+b")  # noqa: SIM115 (closed in close())
            self._file.truncate(end)
            self._file.seek(end)
            if found is None:
                self._file.write(schema.serialize().to_pybytes())
        else:
            self._file = open(path, "wb")  # noqa: SIM115 (closed in close())
            self._file.write(schema.serialize().to_pybytes())
        self.sync()

    def append(self, batch: pa.RecordBatch) -> None:
        """Append one batch (written to the OS at once: a SIGKILL after this keeps it)."""
        if not batch.schema.equals(self.schema, check_metadata=False):
            batch = pa.RecordBatch.from_arrays(batch.columns, schema=self.schema)
        self._file.write(memoryview(batch.serialize()))
        self._file.flush()

    def sync(self) -> None:
        """Flush and fsync: the journal survives a power cut as well as a kill."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Sync and close (the journal stays on disk: removing it is the caller's decision)."""
        if not self._file.closed:
            self.sync()
            self._file.close()
