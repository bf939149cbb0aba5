"""Read reply files back as :data:`REPLY_SCHEMA` batches, whatever wrote them and however it ended.

- Parquet: the journal ``FILE.parquet.journal`` if one exists (a running or crashed scan; it
  always holds every row the final file would), up to its last complete message; otherwise the
  final file.
- CSV and JSON lines: ``FILE.partial`` if one exists (a running or interrupted scan), otherwise
  the file; the reply columns by name (any order, other columns ignored), IPv4 addresses
  dotted or as integers, IPv6 addresses as text; a torn last line (no newline) is dropped.

Files of schema ``reply/1`` (before IPv6: no ``af``, ``target6``, ``responder6``) read back
as :data:`REPLY_SCHEMA` all the same: a missing or empty ``af`` is 6 where the row has an IPv6
address and 4 elsewhere, missing IPv6 columns are null. An IPv6 row's ``target`` and
``responder`` are 0 (the writers store them null in Parquet and as the IPv6 text in CSV and
JSON; an IPv6 ``target`` text gives ``target6`` when that column is missing, and a null
``target`` or ``responder`` in Parquet marks an IPv6 row even without ``af``). An IPv6 text in
``target`` is not checked against ``target6`` when the file has both.

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
from liveness.output.addresses import parse_dotted, parse_ipv6
from liveness.output.banners import banner_from_hex, banner_from_json
from liveness.output.fields import FIELD_KINDS
from liveness.output.journal import read_journal
from liveness.output.schema import ADDR6, APP_COLUMNS, APP_DEFAULTS, REPLY_COLUMNS, REPLY_SCHEMA
from liveness.output.text import complete_lines_end
from liveness.output.writers import format_for_path, journal_path, partial_path
from liveness.targets.inputs import check_input_file

__all__ = ["check_reply_path", "read_replies"]

_TEXT_BLOCK = 8 << 20
_ARROW_ERRORS = (OSError, pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)
_OPTIONAL = ("af", "target6", "responder6", *APP_COLUMNS)
"""Columns a file may lack: those of ``reply/2`` (it is then read as all IPv4) and the
application columns (a scan without ``--app-layer``, or ``reply/2``: read as their defaults)."""

_FAMILY_OF = {"target": "target6", "responder": "responder6"}


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
    required = [name for name in schema.names if name not in _OPTIONAL]
    missing = [name for name in required if name not in present]
    if len(missing) == len(required) > 1:
        raise InputError(
            f"{where}: not a reply table: missing column(s), all {len(missing)} reply columns"
        )
    if missing:
        raise InputError(f"{where}: not a reply table: missing column(s) {', '.join(missing)}")


def _read_names(schema: pa.Schema, present: Iterable[str]) -> list[str]:
    """The file's columns to read for ``schema``: those asked for, and what the address
    columns are completed from (``af``, the other family's column of the same address)."""
    wanted = set(schema.names)
    if wanted & {"af", "target", "target6"}:
        wanted |= {"af", "target", "target6"}
    if wanted & {"responder", "responder6"}:
        wanted |= {"af", "responder", "responder6"}
    available = set(present)
    return [name for name in REPLY_COLUMNS if name in wanted and name in available]


def _to_reply(
    batch: pa.RecordBatch,
    where: str,
    first_row: int,
    schema: pa.Schema,
    banner_text: str | None = None,
) -> pa.RecordBatch:
    """Convert a batch holding the reply columns (any compatible types) to ``schema``.

    ``batch`` may lack the :data:`_OPTIONAL` columns and hold helper columns (see
    :func:`_read_names`); the IPv6 columns and ``af`` are completed as the module says, the
    application columns by their defaults. ``banner_text`` says how a text file holds
    banners: ``hex`` (CSV) or ``json`` (decoded JSON strings).
    """
    names = set(batch.schema.names)
    ipv4: dict[str, pa.Array[Any]] = {}
    ipv6: dict[str, pa.Array[Any] | None] = {}
    marks: list[pa.Array[Any]] = []  # rows known to be IPv6 without their IPv6 column
    for name, name6 in _FAMILY_OF.items():
        text6 = None
        if name in names:
            column = batch.column(name)
            where_column = f"{where}: column {name!r}"
            ipv4[name], is6, text6 = _addresses(column, where_column, first_row, name6 in names)
            if is6 is not None:
                marks.append(is6)
        column6 = _ipv6_column(batch, name6, where, first_row) if name6 in names else None
        ipv6[name6] = text6 if column6 is None else column6
    marks += [column.is_valid() for column in ipv6.values() if column is not None]
    family = _family(batch, marks, where, first_row)
    arrays = []
    for field in schema:
        if field.name == "af":
            arrays.append(family)
            continue
        if field.name in ipv6:
            found = ipv6[field.name]
            arrays.append(pa.nulls(batch.num_rows, ADDR6) if found is None else found)
            continue
        if field.name in APP_DEFAULTS:
            arrays.append(_app_column(batch, field, where, banner_text))
            continue
        column = ipv4[field.name] if field.name in ipv4 else batch.column(field.name)
        if field.name in ipv4 and column.null_count:  # IPv6 rows: null or text in the file
            is6 = pc.equal(family, pa.scalar(6, pa.uint8()))
            column = _array(pc.if_else(is6, pa.scalar(0, pa.uint32()), column))
        if column.null_count:
            row = first_row + int(
                np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0]
            )
            raise InputError(f"{where}: row {row + 1}: column {field.name!r} is empty")
        if column.type != field.type:
            try:
                column = column.cast(field.type)
            except _ARROW_ERRORS as exc:
                raise InputError(f"{where}: column {field.name!r}: {exc}") from exc
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _app_column(
    batch: pa.RecordBatch, field: pa.Field[Any], where: str, banner_text: str | None
) -> pa.Array[Any]:
    """An application column: the file's (banners decoded from text), or its default."""
    if field.name not in batch.schema.names:
        return _array(pa.repeat(APP_DEFAULTS[field.name], batch.num_rows)).cast(field.type)
    column = batch.column(field.name)
    where_column = f"{where}: column {field.name!r}"
    if field.name == "banner" and _is_text(column):
        decode = banner_from_json if banner_text == "json" else banner_from_hex
        return decode(column, where_column)
    filled = pc.fill_null(column, APP_DEFAULTS[field.name]) if field.name != "banner" else column
    try:
        return _array(filled).cast(field.type)
    except _ARROW_ERRORS as exc:
        raise InputError(f"{where_column}: {exc}") from exc


def _array(value: Any) -> pa.Array[Any]:
    """Narrow a compute kernel's result (typed loosely by the stubs) to an array."""
    assert isinstance(value, pa.Array)
    return value


def _ipv6_column(batch: pa.RecordBatch, name: str, where: str, first_row: int) -> pa.Array[Any]:
    column = batch.column(name)
    if _is_text(column):
        return parse_ipv6(column, f"{where}: column {name!r}", first_row)
    try:
        return column.cast(ADDR6)
    except _ARROW_ERRORS as exc:
        raise InputError(f"{where}: column {name!r}: {exc}") from exc


def _is_text(column: pa.Array[Any]) -> bool:
    return pa.types.is_string(column.type) or pa.types.is_large_string(column.type)


def _family(
    batch: pa.RecordBatch, marks: list[pa.Array[Any]], where: str, first_row: int
) -> pa.Array[Any]:
    """``af``: the file's, where it has one; else 6 for the rows ``marks`` show to be IPv6
    (an IPv6 address, or a null IPv4 address in Parquet), else 4."""
    has6: pa.Array[Any] | None = None
    for mark in marks:
        has6 = mark if has6 is None else _array(pc.or_(has6, mark))
    guessed: pa.Array[Any] = (
        pa.array(np.full(batch.num_rows, 4, dtype=np.uint8))
        if has6 is None
        else _array(pc.if_else(has6, pa.scalar(6, pa.uint8()), pa.scalar(4, pa.uint8())))
    )
    if "af" not in batch.schema.names:
        return guessed
    try:
        family = batch.column("af").cast(pa.uint8())
    except _ARROW_ERRORS as exc:
        raise InputError(f"{where}: column 'af': {exc}") from exc
    family = _array(pc.coalesce(family, guessed))
    bad = np.flatnonzero(~np.isin(family.to_numpy(), (4, 6)))
    if bad.size:
        raise InputError(
            f"{where}: row {first_row + int(bad[0]) + 1}: column 'af' is "
            f"{family[int(bad[0])].as_py()}, not 4 or 6"
        )
    return family


def _addresses(
    column: pa.Array[Any], where: str, first_row: int, has6: bool
) -> tuple[pa.Array[Any], pa.Array[Any] | None, pa.Array[Any] | None]:
    """An address column as its IPv4 addresses (uint32, null elsewhere), the rows it shows to
    be IPv6 (or None) and, unless the file ``has6`` (its IPv6 column), their IPv6 addresses.

    Text may mix families: dotted quads or decimal integers (as some exports hold) for IPv4,
    IPv6 text (the CSV and JSON writers print an IPv6 row's ``target`` so). In a typed
    column (Parquet) a null is an IPv6 row (the Parquet writer stores them so).
    """
    if not _is_text(column):
        return column, (column.is_null() if column.null_count else None), None
    is6 = _array(pc.fill_null(pc.match_substring(column, ":"), pa.scalar(False)))
    if not pc.any(is6).as_py():
        return _parse_ipv4(column, where, first_row), None, None
    none = pa.scalar(None, column.type)
    ipv4 = _parse_ipv4(_array(pc.if_else(is6, none, column)), where, first_row)
    if has6:
        return ipv4, is6, None
    return ipv4, is6, parse_ipv6(_array(pc.if_else(is6, column, none)), where, first_row)


def _parse_ipv4(column: pa.Array[Any], where: str, first_row: int) -> pa.Array[Any]:
    """Dotted quads, or decimal integers (as some exports hold); nulls stay null."""
    if pc.all(pc.match_substring_regex(column, r"^[0-9]{1,10}$")).as_py() is not False:
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
    names = _read_names(schema, source.schema_arrow.names)
    try:
        for batch in source.iter_batches(batch_size=batch_size, columns=names):
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


def _text_types(names: Iterable[str]) -> dict[str, pa.DataType]:
    """How each column is parsed from text: addresses and strings as text, then converted."""
    types: dict[str, pa.DataType] = {}
    for name in names:
        kind = FIELD_KINDS[name]
        types[name] = (
            pa.string()
            if kind in ("addr", "addr6", "str", "bytes")
            else pa.bool_()
            if kind == "bool"
            else REPLY_SCHEMA.field(name).type
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
        read = _read_names(schema, names)
        options = pcsv.ConvertOptions(
            column_types=_text_types(read),
            include_columns=read,
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
            yield _to_reply(batch, path, row, schema, "hex")
            row += batch.num_rows
    finally:
        handle.close()


def _read_jsonl(path: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    with open(path, "rb") as handle:
        first = handle.readline()
    names = schema.names  # no complete line: no rows, whatever the names
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
        names = _read_names(schema, keys)
    return _jsonl_batches(path, schema, names)


def _jsonl_batches(path: str, schema: pa.Schema, names: list[str]) -> Iterator[pa.RecordBatch]:
    text_schema = pa.schema(list(_text_types(names).items()))
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
            for batch in table.select(names).to_batches():
                yield _to_reply(batch, path, row, schema, "json")
                row += batch.num_rows
