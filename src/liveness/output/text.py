"""CSV and JSON-lines rendering of field batches, vectorised with Arrow string kernels.

Rendering follows the field kinds of :mod:`liveness.output.fields`: addresses as text (IPv4
dotted, IPv6 RFC 5952; writers derive them as text, ``derive(..., text=True)``, and uint32 or
``binary(16)`` columns are converted here), booleans ``0``/``1`` in CSV (as ZMap) and
``true``/``false`` in JSON, nulls empty in CSV and ``null`` in JSON. Strings are JSON-escaped
by encoding each distinct value once (``json.dumps`` over the dictionary) and gathering by
index, so no Python object is made per row. Bytes (``banner``) are lowercase hex in CSV and, in
JSON, a string of one character per byte, both built by table lookups over the column's data
buffer (:mod:`liveness.output.banners`).
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from liveness.output.addresses import format_dotted, format_ipv6, join_strings
from liveness.output.banners import banner_hex, banner_json
from liveness.output.fields import FIELD_KINDS

__all__ = ["address_text", "complete_lines_end", "csv_header", "render_csv", "render_jsonl"]


def csv_header(names: tuple[str, ...]) -> bytes:
    """The CSV header line: the field names joined by commas, as ZMap writes it."""
    return (",".join(names) + "\n").encode()


def address_text(column: pa.Array[Any]) -> pa.Array[Any]:
    """An address column as text: strings as they are, uint32 dotted, ``binary(16)`` IPv6."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column
    if pa.types.is_fixed_size_binary(column.type):
        return format_ipv6(column)
    return format_dotted(column)


def render_csv(batch: pa.RecordBatch) -> bytes:
    """CSV lines (no header) for a batch of derived fields."""
    arrays: list[pa.Array[Any]] = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        kind = FIELD_KINDS[name]
        if kind in ("addr", "addr6"):
            arrays.append(address_text(column))
        elif kind == "bool":
            arrays.append(column.cast(pa.uint8()))
        elif kind == "bytes":
            arrays.append(banner_hex(column))
        elif isinstance(column, pa.DictionaryArray):
            arrays.append(column.cast(pa.string()))
        else:
            arrays.append(column)
    table = pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
    sink = io.BytesIO()
    try:
        options = pcsv.WriteOptions(include_header=False, quoting_style="none")
        pcsv.write_csv(table, sink, options)
    except pa.ArrowInvalid:  # a value holds a comma, quote or newline: quote strings
        sink = io.BytesIO()
        options = pcsv.WriteOptions(include_header=False, quoting_style="needed")
        pcsv.write_csv(table, sink, options)
    return sink.getvalue()


def _json_strings(column: pa.Array[Any]) -> pa.Array[Any]:
    """Each value as JSON text (escaped and quoted), gathering per-distinct encodings."""
    encoded = column if isinstance(column, pa.DictionaryArray) else pc.dictionary_encode(column)
    assert isinstance(encoded, pa.DictionaryArray)
    texts = pa.array([json.dumps(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return texts.take(encoded.indices)


def _json_values(name: str, column: pa.Array[Any]) -> pa.Array[Any]:
    kind = FIELD_KINDS[name]
    values: pa.Array[Any]
    if kind in ("addr", "addr6"):
        values = join_strings(['"', address_text(column), '"'], "")
    elif kind == "bool":
        values = pc.if_else(column, "true", "false")
    elif kind == "str":
        values = _json_strings(column)
    elif kind == "bytes":
        values = banner_json(column)
    else:
        values = column.cast(pa.string())
    return values.fill_null("null")


def render_jsonl(batch: pa.RecordBatch) -> bytes:
    """One JSON object per line for a batch of derived fields."""
    if batch.num_rows == 0:
        return b""
    parts: list[pa.Array[Any] | str] = []
    for i, (name, column) in enumerate(zip(batch.schema.names, batch.columns, strict=True)):
        parts.append(("{" if i == 0 else ",") + json.dumps(name) + ":")
        parts.append(_json_values(name, column))
    parts.append("}\n")
    return _concatenated(join_strings(parts, ""))


def _concatenated(strings: pa.Array[Any]) -> bytes:
    """The bytes of every value of a string array, back to back (its data buffer's used span)."""
    strings = strings.cast(pa.large_string())
    offsets = strings.buffers()[1]
    data = strings.buffers()[2]
    assert offsets is not None and data is not None
    bounds = pa.Array.from_buffers(
        pa.int64(), len(strings) + 1, [None, offsets], offset=strings.offset
    )
    start, end = bounds[0].as_py(), bounds[-1].as_py()
    return data.slice(start, end - start).to_pybytes()


def complete_lines_end(handle: BinaryIO) -> int:
    """The offset just after an open file's last newline (0 if none); leaves it at offset 0.

    Text outputs are line-atomic: whatever follows the last newline is a line torn by a kill.
    """
    position = handle.seek(0, os.SEEK_END)
    while position > 0:
        step = min(position, 1 << 16)
        handle.seek(position - step)
        newline = handle.read(step).rfind(b"\n")
        if newline >= 0:
            handle.seek(0)
            return position - step + newline + 1
        position -= step
    handle.seek(0)
    return 0
