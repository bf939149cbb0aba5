"""Reply writers: Parquet (through a crash-safe journal), CSV and JSON lines.

The scanner writes batches of reply records; a writer derives the requested fields (the reply
columns, or ZMap's names), keeps the rows the output filter matches and stores them.
:meth:`ReplyWriter.flush` (called about once a second) makes every row written so far survive a
SIGKILL; :meth:`ReplyWriter.close` leaves a complete file. Nothing already written is lost on an
error: text files are append-only, and Parquet rows live in the journal until the final file has
been written, fsync'd and renamed into place.

A result already at the path is replaced only once the new one is complete: text rows go to
``PATH.partial`` and Parquet rows to ``PATH.journal`` until :meth:`ReplyWriter.close` renames the
finished file into place. Devices, FIFOs and stdout are written as streams, in place, with their
working files in a private directory (see :mod:`liveness.output.destination`).

Formats by extension: ``.csv``, ``.jsonl`` (or ``.ndjson``), ``-`` (CSV on stdout), anything
else Parquet; ZMap's ``-O csv|json`` (or ``parquet``) overrides the extension. Addresses are
text in CSV and JSON (IPv4 dotted, IPv6 RFC 5952); in Parquet IPv4 addresses are uint32 (null
on IPv6 rows) and IPv6 addresses ``binary(16)`` (see :mod:`liveness.output.fields`).
"""

from __future__ import annotations

import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Any, BinaryIO, Final, Literal, cast

import pyarrow as pa
import pyarrow.parquet as pq

from liveness.errors import InputError, OutputClosed, RunError
from liveness.output.destination import Destination, resolve_destination
from liveness.output.fields import FIELD_KINDS, FieldContext, derive, resolve_fields
from liveness.output.filter import ReplyFilter, compile_filter
from liveness.output.journal import JournalWriter, read_journal
from liveness.output.schema import ADDR6, REPLY_SCHEMA
from liveness.output.text import complete_lines_end, csv_header, render_csv, render_jsonl

__all__ = [
    "OUTPUT_MODULES",
    "PARQUET_COMPRESSION",
    "CsvWriter",
    "JsonlWriter",
    "ParquetWriter",
    "ReplyWriter",
    "format_for_path",
    "journal_path",
    "open_writer",
    "output_format",
    "output_schema",
    "partial_path",
]

_JOURNAL_CHUNK_ROWS = 65_536
_ROW_GROUP_ROWS = 1_048_576
#: The codec of finished Parquet files (what the analyses read, and their benchmark writes).
PARQUET_COMPRESSION: Final[Literal["zstd"]] = "zstd"
_TEXT_BUFFER = 1 << 20


OUTPUT_MODULES = {"csv": "csv", "json": "jsonl", "parquet": "parquet"}
"""``-O/--output-module`` names (ZMap's ``csv`` and ``json``, and Parquet) -> writer format."""


def output_format(path: str, module: str | None = None) -> str:
    """The writer format: ``-O``'s module when given, else the extension rule; InputError names
    the valid modules for an unknown one."""
    if module is None:
        return format_for_path(path)
    if module not in OUTPUT_MODULES:
        raise InputError(
            f"-O/--output-module: {module!r} is not one of {', '.join(OUTPUT_MODULES)}"
        )
    if path == "-" and module == "parquet":
        raise InputError("-O/--output-module: parquet cannot stream to stdout; name a file")
    return OUTPUT_MODULES[module]


def format_for_path(path: str) -> str:
    """``csv``, ``jsonl`` or ``parquet``, from the file name (``-`` is CSV on stdout)."""
    lowered = path.lower()
    if path == "-" or lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    return "parquet"


def journal_path(path: str) -> str:
    """Where the Parquet writer journals rows while a scan runs."""
    return path + ".journal"


def partial_path(path: str) -> str:
    """Where a text writer appends rows while a scan runs (renamed to ``path`` at the end)."""
    return path + ".partial"


def output_schema(names: Sequence[str], *, dictionary: bool) -> pa.Schema:
    """The Parquet schema of the named fields (strings dictionary-encoded if ``dictionary``)."""
    reply_types = {field.name: field.type for field in REPLY_SCHEMA}
    string_type = pa.dictionary(pa.int32(), pa.string()) if dictionary else pa.string()
    by_kind: dict[str, pa.DataType] = {
        "addr": pa.uint32(),
        "addr6": ADDR6,
        "bool": pa.bool_(),
        "bytes": pa.binary(),
        "str": string_type,
    }
    fields: list[pa.Field[Any]] = []
    for name in names:
        kind = FIELD_KINDS[name]
        if kind in by_kind:
            fields.append(pa.field(name, by_kind[kind]))
        else:
            fields.append(pa.field(name, reply_types.get(name, pa.int64())))
    return pa.schema(fields).with_metadata(REPLY_SCHEMA.metadata or {})


class ReplyWriter(ABC):
    """Common behaviour: field derivation, output filter, row count, context manager."""

    text_addresses = False
    """Derive address fields as text (the text formats) rather than uint32 / binary(16)."""

    def __init__(
        self,
        destination: Destination,
        fields: tuple[str, ...],
        row_filter: ReplyFilter | None,
        context: FieldContext,
    ) -> None:
        self.destination = destination
        self.path = destination.path
        self.fields = fields
        self.rows_written = 0
        self.max_rows: int | None = None
        """ZMap's ``-N``: rows beyond this many are dropped (:attr:`full` then holds)."""
        self._filter = row_filter
        self._context = context

    @property
    def full(self) -> bool:
        """``max_rows`` rows have been written: later ones are dropped."""
        return self.max_rows is not None and self.rows_written >= self.max_rows

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Write reply records (:data:`REPLY_SCHEMA` rows); filtered rows are dropped, and so
        is every row past ``max_rows``."""
        batches = batch.to_batches() if isinstance(batch, pa.Table) else [batch]
        for one in batches:
            if self.full:
                return
            text = self.text_addresses
            if self._filter is None:
                selected = derive(one, self.fields, self._context, text=text)
            else:
                selected = self._filter.apply(one, self.fields, self._context, text=text)
            if self.max_rows is not None and selected.num_rows > self.max_rows - self.rows_written:
                selected = selected.slice(0, self.max_rows - self.rows_written)
            if selected.num_rows:
                self._write_selected(selected)
                self.rows_written += selected.num_rows

    def set_cooldown_start(self, ts_ns: int) -> None:
        """Rows received at or after ``ts_ns`` get ZMap's ``cooldown`` = 1."""
        self._context.cooldown_start_ns = ts_ns

    @abstractmethod
    def _write_selected(self, batch: pa.RecordBatch) -> None: ...

    @abstractmethod
    def flush(self) -> None:
        """After this returns, every row written so far survives a SIGKILL."""

    @abstractmethod
    def close(self) -> None:
        """Finish the file: complete and valid afterwards."""

    _owned: Destination | None = None

    def releases(self, destination: Destination) -> None:
        """Release ``destination`` (its private scratch directory) once closed: the writer
        resolved it itself, so nobody else will."""
        self._owned = destination

    def _release_owned(self) -> None:
        if self._owned is not None:
            self._owned.release()
            self._owned = None

    def __enter__(self) -> ReplyWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _TextWriter(ReplyWriter):
    """Line-oriented output: a header (CSV only), then lines appended and fsync'd on flush.

    A file is written as ``PATH.partial`` and renamed to ``PATH`` on close; a stream (stdout, a
    device, a FIFO) is written in place. A reader that closes stdout ends the output with
    :class:`OutputClosed`, never a traceback.
    """

    header: bytes | None = None
    text_addresses = True

    def __init__(
        self,
        destination: Destination,
        fields: tuple[str, ...],
        row_filter: ReplyFilter | None,
        context: FieldContext,
        *,
        resume: bool,
    ) -> None:
        super().__init__(destination, fields, row_filter, context)
        self._file: BinaryIO
        self._closed = False
        self.rows_flushed = 0
        kind = destination.kind
        if kind == "stdout":
            self._file = sys.stdout.buffer
        elif kind == "stream":
            self._file = _open_or_fail(self.path, "wb")
        else:
            self._working = partial_path(self.path)
            if resume and not os.path.exists(self._working) and _nonempty(self.path):
                os.replace(self.path, self._working)  # a finished scan, resumed: continue it
            if resume and _nonempty(self._working):
                self._file = self._reopen(self._working)
                return
            self._file = _open_or_fail(self._working, "wb")
        if self.header:
            self._guard(self._file.write, self.header)
            self.flush()

    def _reopen(self, path: str) -> BinaryIO:
        """Open an existing file for appending: check its header, drop a torn last line."""
        handle = _open_or_fail(path, "r+b")
        if self.header:
            first = handle.readline()
            if first != self.header:
                handle.close()
                raise InputError(
                    f"{path}: cannot resume: its header {first.decode(errors='replace')!r} "
                    f"differs from the requested fields {self.header.decode()!r}"
                )
        end = complete_lines_end(handle)
        handle.truncate(end)
        handle.seek(end)
        return handle

    def _guard(self, action: Any, *args: Any) -> None:
        """Run a write or flush; a closed reader or a full device becomes one clear error."""
        try:
            action(*args)
        except BrokenPipeError:
            self._closed = True
            raise OutputClosed(
                f"{self.destination.given}: the reader closed the output after "
                f"{self.rows_flushed} replies"
            ) from None
        except OSError as exc:
            where = "stdout" if self.destination.kind == "stdout" else self.destination.given
            raise RunError(f"{where}: cannot write: {exc.strerror or exc}") from None

    def _write_selected(self, batch: pa.RecordBatch) -> None:
        self._guard(self._file.write, self._render(batch))

    @abstractmethod
    def _render(self, batch: pa.RecordBatch) -> bytes: ...

    def flush(self) -> None:
        if self._closed:
            return
        self._guard(self._file.flush)
        if self.destination.kind == "file":
            os.fsync(self._file.fileno())
        self.rows_flushed = self.rows_written

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
            self._closed = True
            if self.destination.kind == "stdout":
                return
            self._file.close()
            if self.destination.kind == "file":
                os.replace(self._working, self.path)
                _fsync_directory(self.path)
        finally:
            self._release_owned()


def _nonempty(path: str) -> bool:
    return os.path.isfile(path) and os.path.getsize(path) > 0


def _open_or_fail(path: str, mode: str) -> BinaryIO:
    try:
        return cast(BinaryIO, open(path, mode, buffering=_TEXT_BUFFER))
    except OSError as exc:
        raise RunError(f"{path}: cannot open for writing: {exc.strerror}") from exc


class CsvWriter(_TextWriter):
    """CSV with a header line (none with ``header=False``, ZMap's ``--no-header-row``);
    ZMap's conventions (booleans 0/1, empty for null)."""

    def __init__(
        self,
        destination: Destination,
        fields: tuple[str, ...],
        row_filter: ReplyFilter | None,
        context: FieldContext,
        *,
        resume: bool,
        header: bool = True,
    ) -> None:
        self.header = csv_header(fields) if header else None
        super().__init__(destination, fields, row_filter, context, resume=resume)

    def _render(self, batch: pa.RecordBatch) -> bytes:
        return render_csv(batch)


class JsonlWriter(_TextWriter):
    """One JSON object per line (ZMap's ``json`` output module shape)."""

    def _render(self, batch: pa.RecordBatch) -> bytes:
        return render_jsonl(batch)


class ParquetWriter(ReplyWriter):
    """Rows go to an Arrow IPC journal while running; :meth:`close` converts it to Parquet.

    ``resume`` continues an existing journal (after a crash) or, if the scan had finished, the
    final file (its rows are moved back into a journal first).
    """

    def __init__(
        self,
        destination: Destination,
        fields: tuple[str, ...],
        row_filter: ReplyFilter | None,
        context: FieldContext,
        *,
        resume: bool,
    ) -> None:
        super().__init__(destination, fields, row_filter, context)
        self.journal_path = destination.beside(".journal")
        path = self.path
        self._journal_schema = output_schema(fields, dictionary=False)
        self._final_schema = output_schema(fields, dictionary=True)
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._closed = False
        try:
            has_journal = os.path.exists(self.journal_path)
            if resume and not has_journal and destination.kind == "file" and os.path.exists(path):
                self._journal_from_final()
            # A fresh scan replaces an old output, as ZMap's -o does, but only when it is
            # complete (close() renames over it). A resumed scan's journal holds every row.
            self._journal = JournalWriter(self.journal_path, self._journal_schema, resume=resume)
        except OSError as exc:
            raise RunError(f"{path}: cannot write: {exc.strerror or exc}") from exc

    def _journal_from_final(self) -> None:
        """Resume after a finished scan: move the final file's rows back into a journal."""
        try:
            source = pq.ParquetFile(self.path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"{self.path}: cannot resume: not a readable Parquet file") from exc
        if source.schema_arrow.names != list(self.fields):
            raise InputError(
                f"{self.path}: cannot resume: its columns ({', '.join(source.schema_arrow.names)})"
                f" differ from the requested fields ({', '.join(self.fields)})"
            )
        journal = JournalWriter(self.journal_path + ".tmp", self._journal_schema)
        for batch in source.iter_batches(batch_size=_ROW_GROUP_ROWS):
            journal.append(batch.cast(self._journal_schema))
        journal.close()
        os.replace(self.journal_path + ".tmp", self.journal_path)
        _fsync_directory(self.journal_path)

    def _write_selected(self, batch: pa.RecordBatch) -> None:
        self._pending.append(batch.cast(self._journal_schema))
        self._pending_rows += batch.num_rows
        if self._pending_rows >= _JOURNAL_CHUNK_ROWS:
            self._drain()

    def _drain(self) -> None:
        """Move pending rows into the journal as one message."""
        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending, schema=self._journal_schema)
        self._journal.append(table.combine_chunks().to_batches()[0])
        self._pending = []
        self._pending_rows = 0

    def flush(self) -> None:
        self._drain()
        self._journal.sync()

    def close(self) -> None:
        """Write the final Parquet file from the journal, then remove the journal."""
        if self._closed:
            return
        try:
            self._close()
        finally:
            self._release_owned()

    def _close(self) -> None:
        self.flush()
        self._journal.close()
        self._closed = True
        schema, batches = read_journal(self.journal_path)
        if schema is None:
            raise RunError(f"{self.journal_path}: journal lost its schema")
        streaming = self.destination.kind != "file"
        temporary = self.path if streaming else self.path + ".tmp"
        try:
            with open(temporary, "wb") as sink:
                with pq.ParquetWriter(
                    sink, self._final_schema, compression=PARQUET_COMPRESSION
                ) as out:
                    group: list[pa.RecordBatch] = []
                    rows = 0
                    for batch in batches:
                        group.append(batch)
                        rows += batch.num_rows
                        if rows >= _ROW_GROUP_ROWS:
                            out.write_table(_as_final(group, schema, self._final_schema))
                            group, rows = [], 0
                    if group:
                        out.write_table(_as_final(group, schema, self._final_schema))
                if not streaming:
                    sink.flush()
                    os.fsync(sink.fileno())
            if not streaming:
                os.replace(temporary, self.path)
                _fsync_directory(self.path)
        except OSError as exc:
            if not streaming and os.path.exists(temporary):
                os.unlink(temporary)
            raise RunError(
                f"{self.destination.given}: cannot write the Parquet file "
                f"({exc.strerror or exc}); the rows are kept in {self.journal_path}"
            ) from exc
        os.unlink(self.journal_path)


def _as_final(batches: list[pa.RecordBatch], schema: pa.Schema, final: pa.Schema) -> pa.Table:
    return pa.Table.from_batches(batches, schema=schema).cast(final)


def _fsync_directory(path: str) -> None:
    """Make a rename durable (best effort on filesystems that refuse directory fsync)."""
    descriptor = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def open_writer(
    path: str | Destination,
    *,
    fields: Sequence[str] | None = None,
    output_filter: str | None = None,
    scanner_addr: int = 0,
    scanner_addr6: bytes | None = None,
    resume: bool = False,
    module: str | None = None,
    header: bool = True,
    max_rows: int | None = None,
) -> ReplyWriter:
    """A writer for ``path`` (format by extension, ``-`` = CSV on stdout, unless ``module``
    names one: ``-O``'s csv, json or parquet), resolved with
    :func:`~liveness.output.destination.resolve_destination` unless already a destination.

    ``fields`` picks columns by reply or ZMap name (default: the reply record's columns);
    ``output_filter`` is ZMap's filter syntax; ``scanner_addr`` (IPv4, uint32) and
    ``scanner_addr6`` (IPv6, 16 bytes) fill ``daddr``; ``resume`` appends to what an
    interrupted run left; ``header=False`` writes CSV without its header line; ``max_rows``
    caps the rows written (``-N``). Bad fields, filters or modules raise :class:`InputError`.
    """
    names = resolve_fields(fields)
    row_filter = compile_filter(output_filter) if output_filter else None
    context = FieldContext(scanner_addr=scanner_addr, scanner_addr6=scanner_addr6)
    given = path if isinstance(path, str) else path.given
    kind = output_format(given, module)
    destination = resolve_destination(path) if isinstance(path, str) else path
    writer: ReplyWriter
    try:
        if kind == "csv":
            writer = CsvWriter(
                destination, names, row_filter, context, resume=resume, header=header
            )
        elif kind == "jsonl":
            writer = JsonlWriter(destination, names, row_filter, context, resume=resume)
        else:
            writer = ParquetWriter(destination, names, row_filter, context, resume=resume)
    except BaseException:
        if isinstance(path, str):
            destination.release()
        raise
    if isinstance(path, str):
        writer.releases(destination)
    writer.max_rows = max_rows
    return writer
