"""Read reply files back as :data:`REPLY_SCHEMA` batches, whatever wrote them and however it ended.

- Parquet: the journal ``FILE.parquet.journal`` if one exists (a running or crashed scan; it
  always holds every row the final file would), up to its last complete message; otherwise the
  final file.
- CSV and JSON lines: ``FILE.partial`` if one exists (a running or interrupted scan), otherwise
  the file; the reply columns by name (any order, other columns ignored), addresses dotted or
  as integers; a torn last line (no newline) is dropped.

Missing columns, malformed values and damaged files raise :class:`InputError` naming the file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from liveness.errors import InputError
from liveness.output.addresses import parse_dotted
from liveness.output.fields import FIELD_KINDS
from liveness.output.journal import read_journal
from liveness.output.schema import REPLY_COLUMNS, REPLY_SCHEMA
from liveness.output.text import complete_lines_end
from liveness.output.writers import format_for_path, journal_path, partial_path
from liveness.targets.inputs import check_input_file

__all__ = ["check_reply_path", "read_replies"]

_TEXT_BLOCK = 8 << 20
_ARROW_ERRORS = (OSError, pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)


def read_replies(
    path: str, *, batch_size: int = 65_536, columns: Sequence[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """Batches of reply records from a Parquet, CSV or JSON-lines file.

    ``columns`` reads only those reply columns (faster; the batches then hold that subset of
    :data:`REPLY_SCHEMA`, and only those columns need to exist in the file).

    The file is opened and its columns checked at once; values are checked batch by batch.
    """
    schema = _subset(columns)
    check_reply_path(path)
    kind = format_for_path(path)
    if kind == "parquet":
        if os.path.exists(journal_path(path)):
            check_input_file(journal_path(path))
            return _read_journal(path, batch_size, schema)
        return _read_parquet(path, batch_size, schema)
    if os.path.exists(partial_path(path)):  # a running or interrupted scan's rows
        path = partial_path(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    check_input_file(path)
    if kind == "csv":
        return _rebatch(_read_csv(path, schema), batch_size, schema)
    return _rebatch(_read_jsonl(path, schema), batch_size, schema)


def check_reply_path(path: str) -> None:
    """Refuse, naming what to give instead, a scan's working file given as its result.

    ``FILE.parquet.journal`` and ``FILE.csv.partial`` are read through ``FILE.parquet`` and
    ``FILE.csv`` (while they exist, they hold the rows); they are not reply files themselves.
    """
    for suffix, working in ((".journal", journal_path), (".partial", partial_path)):
        result = path.removesuffix(suffix)
        if result != path and working(result) == path and result:
            raise InputError(
                f"{path}: is a running (or interrupted) scan's {suffix[1:]} file; give {result},"
                f" which is read from it while it exists"
            )


def _subset(columns: Sequence[str] | None) -> pa.Schema:
    """REPLY_SCHEMA restricted to ``columns`` (all of it for None), in the schema's order."""
    if columns is None:
        return REPLY_SCHEMA
    unknown = sorted(set(columns) - set(REPLY_COLUMNS))
    if unknown:
        raise ValueError(f"not reply columns: {unknown}")
    keep = [field for field in REPLY_SCHEMA if field.name in set(columns)]
    return pa.schema(keep).with_metadata(REPLY_SCHEMA.metadata or {})


def _require_columns(names: Iterable[str], where: str, schema: pa.Schema) -> None:
    present = set(names)
    missing = [name for name in schema.names if name not in present]
    if len(missing) == len(schema.names) > 1:
        raise InputError(
            f"{where}: not a reply table: missing column(s), all {len(missing)} reply columns"
        )
    if missing:
        raise InputError(f"{where}: not a reply table: missing column(s) {', '.join(missing)}")


def _to_reply(
    batch: pa.RecordBatch, where: str, first_row: int, schema: pa.Schema
) -> pa.RecordBatch:
    """Convert a batch holding the reply columns (any compatible types) to ``schema``."""
    arrays = []
    for field in schema:
        column = batch.column(field.name)
        if column.null_count:
            row = first_row + int(
                np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0]
            )
            raise InputError(f"{where}: row {row + 1}: column {field.name!r} is empty")
        if FIELD_KINDS[field.name] == "addr" and (
            pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        ):
            column = _parse_addresses(column, f"{where}: column {field.name!r}", first_row)
        if column.type != field.type:
            try:
                column = column.cast(field.type)
            except _ARROW_ERRORS as exc:
                raise InputError(f"{where}: column {field.name!r}: {exc}") from exc
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _parse_addresses(column: pa.Array[Any], where: str, first_row: int) -> pa.Array[Any]:
    """Addresses written as text: dotted quads, or decimal integers (as some exports hold)."""
    if pc.all(pc.match_substring_regex(column, r"^[0-9]{1,10}$")).as_py():
        try:
            return column.cast(pa.int64()).cast(pa.uint32())
        except pa.ArrowInvalid as exc:
            raise InputError(f"{where}: an address is out of range ({exc})") from exc
    return parse_dotted(column, where, first_row)


def _rebatch(
    batches: Iterable[pa.RecordBatch], batch_size: int, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """Regroup batches to about ``batch_size`` rows (journals hold one small batch per flush)."""
    group: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        group.append(batch)
        rows += batch.num_rows
        if rows >= batch_size:
            table = pa.Table.from_batches(group, schema=schema).combine_chunks()
            yield from table.to_batches(max_chunksize=batch_size)
            group, rows = [], 0
    if rows:
        table = pa.Table.from_batches(group, schema=schema).combine_chunks()
        yield from table.to_batches(max_chunksize=batch_size)


def _read_parquet(path: str, batch_size: int, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    check_input_file(path)
    try:
        source = pq.ParquetFile(path)
    except _ARROW_ERRORS as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
    _require_columns(source.schema_arrow.names, path, schema)
    return _parquet_batches(source, path, batch_size, schema)


def _parquet_batches(
    source: pq.ParquetFile, path: str, batch_size: int, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    row = 0
    try:
        for batch in source.iter_batches(batch_size=batch_size, columns=schema.names):
            yield _to_reply(batch, path, row, schema)
            row += batch.num_rows
    except _ARROW_ERRORS as exc:
        raise InputError(f"{path}: damaged Parquet file: {exc}") from exc


def _read_journal(path: str, batch_size: int, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    journal = journal_path(path)
    found, batches = read_journal(journal)
    if found is None:
        return iter(())
    _require_columns(found.names, journal, schema)
    return _rebatch(_numbered(batches, journal, schema), batch_size, schema)


def _numbered(
    batches: Iterable[pa.RecordBatch], where: str, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    row = 0
    for batch in batches:
        yield _to_reply(batch, where, row, schema)
        row += batch.num_rows


class _Prefix(io.RawIOBase):
    """The first ``limit`` bytes of a binary file (the part made of complete lines)."""

    def __init__(self, handle: io.BufferedReader, limit: int) -> None:
        self._handle = handle
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), self._left)]
        count: int = self._handle.readinto(view)
        self._left -= count
        return count


def _text_types(schema: pa.Schema) -> dict[str, pa.DataType]:
    """How each column is parsed from text: addresses and strings as text, then converted."""
    types: dict[str, pa.DataType] = {}
    for field in schema:
        kind = FIELD_KINDS[field.name]
        types[field.name] = (
            pa.string() if kind in ("addr", "str") else pa.bool_() if kind == "bool" else field.type
        )
    return types


def _read_csv(path: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    handle = open(path, "rb")  # noqa: SIM115 (closed by _csv_batches or below)
    try:
        header = handle.readline().decode(errors="replace")
        if not header.strip():
            raise InputError(f"{path}: not a reply table: missing column header (empty file)")
        try:
            names = next(csv.reader([header]), [])
        except csv.Error as exc:
            raise InputError(f"{path}: line 1: not a CSV header ({exc})") from None
        _require_columns(names, path, schema)
        source = _Prefix(handle, complete_lines_end(handle))
        options = pcsv.ConvertOptions(
            column_types=_text_types(schema),
            include_columns=schema.names,
            true_values=["1", "true"],
            false_values=["0", "false"],
            strings_can_be_null=True,
        )
        reader = pcsv.open_csv(
            cast(BinaryIO, source),
            read_options=pcsv.ReadOptions(block_size=_TEXT_BLOCK),
            convert_options=options,
        )
    except _ARROW_ERRORS as exc:
        handle.close()
        raise InputError(f"{path}: not a reply CSV file ({exc})") from exc
    except BaseException:
        handle.close()
        raise
    return _csv_batches(reader, handle, path, schema)


def _csv_batches(
    reader: pcsv.CSVStreamingReader, handle: io.BufferedReader, path: str, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    row = 0
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except _ARROW_ERRORS as exc:
                raise InputError(f"{path}: {exc}") from exc
            yield _to_reply(batch, path, row, schema)
            row += batch.num_rows
    finally:
        handle.close()


def _read_jsonl(path: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    with open(path, "rb") as handle:
        first = handle.readline()
    if first.endswith(b"\n") and first.strip():  # a line without newline is torn: skipped
        try:
            keys = json.loads(first)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: line 1: not JSON ({exc.msg})") from exc
        except UnicodeDecodeError:
            raise InputError(f"{path}: line 1: not JSON (not UTF-8 text)") from None
        if not isinstance(keys, dict):
            raise InputError(f"{path}: line 1: not a JSON object")
        _require_columns(keys, path, schema)
    return _jsonl_batches(path, schema)


def _jsonl_batches(path: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    text_schema = pa.schema(list(_text_types(schema).items()))
    options = pjson.ParseOptions(explicit_schema=text_schema, unexpected_field_behavior="ignore")
    row = 0
    carry = b""
    with open(path, "rb") as handle:
        while True:
            block = handle.read(_TEXT_BLOCK)
            if not block:
                return  # whatever is left in ``carry`` is a torn last line
            block = carry + block
            end = block.rfind(b"\n") + 1
            carry = block[end:]
            if end == 0:
                continue
            try:
                table = pjson.read_json(io.BytesIO(block[:end]), parse_options=options)
            except _ARROW_ERRORS as exc:
                raise InputError(f"{path}: after row {row}: {exc}") from exc
            for batch in table.select(schema.names).to_batches():
                yield _to_reply(batch, path, row, schema)
                row += batch.num_rows
