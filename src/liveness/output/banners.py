"""Banners (the first bytes an application sent) as text and back, without a loop per row.

A banner is binary: in Parquet it stays so; CSV holds it as lowercase hex (a comma or newline
in a banner must not break a line), JSON as a string of one character per byte (U+0000 to
U+00FF: printable ASCII reads as itself, the rest is JSON-escaped), so ``SSH-2.0-OpenSSH`` is
readable in a JSON line and every byte converts back. Each conversion is a table lookup over
the column's data buffer, with the offsets rescaled; nulls stay null.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from liveness.errors import InputError

__all__ = ["banner_from_hex", "banner_from_json", "banner_hex", "banner_json", "binary_parts"]

_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_HEX_PAIRS = np.stack([_HEX[np.arange(256) >> 4], _HEX[np.arange(256) & 15]], axis=1)
_HEX_VALUE = np.full(256, 255, np.uint8)
_HEX_VALUE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX_VALUE[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX_VALUE[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)

# The JSON text of each byte as a one-character string (json.dumps' escapes), padded to 6.
_ESCAPES = [json.dumps(chr(b))[1:-1].encode() for b in range(256)]
_ESCAPE_LEN = np.array([len(e) for e in _ESCAPES], np.int64)
_ESCAPE_TABLE = np.zeros((256, 6), np.uint8)
for _byte, _text in enumerate(_ESCAPES):
    _ESCAPE_TABLE[_byte, : len(_text)] = np.frombuffer(_text, np.uint8)


def binary_parts(column: pa.Array[Any]) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
    """Row offsets (n + 1, from 0) and the data bytes of a binary or string array."""
    column = column.cast(pa.large_binary())
    offsets_buffer, data_buffer = column.buffers()[1], column.buffers()[2]
    n = len(column)
    if offsets_buffer is None:
        return np.zeros(n + 1, np.int64), np.zeros(0, np.uint8)
    offsets = np.frombuffer(memoryview(offsets_buffer), np.int64)
    offsets = offsets[column.offset : column.offset + n + 1]
    data = (
        np.frombuffer(memoryview(data_buffer), np.uint8)
        if data_buffer is not None
        else np.zeros(0, np.uint8)
    )
    data = data[int(offsets[0]) : int(offsets[-1])]
    return offsets - offsets[0], data


def _build(
    kind: pa.DataType, offsets: NDArray[np.int64], data: NDArray[np.uint8], valid: pa.Array[Any]
) -> pa.Array[Any]:
    """An array of ``kind`` (large_string or large_binary) from offsets, data and validity."""
    n = len(offsets) - 1
    built = pa.Array.from_buffers(
        kind, n, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data.tobytes())]
    )
    if valid.null_count:
        masked = pc.if_else(valid.is_valid(), built, pa.scalar(None, kind))
        assert isinstance(masked, pa.Array)
        return masked
    return built


def _row_of(offsets: NDArray[np.int64], positions: NDArray[np.int64]) -> NDArray[np.int64]:
    """The row holding each byte position."""
    found: NDArray[np.int64] = np.searchsorted(offsets, positions, side="right") - 1
    return found


def banner_hex(column: pa.Array[Any]) -> pa.Array[Any]:
    """Binary values as lowercase hex strings."""
    offsets, data = binary_parts(column)
    text = _HEX_PAIRS[data].reshape(-1)
    return _build(pa.large_string(), offsets * 2, text, column).cast(pa.string())


def banner_json(column: pa.Array[Any]) -> pa.Array[Any]:
    """Binary values as quoted JSON strings of one character per byte (nulls stay null)."""
    offsets, data = binary_parts(column)
    lengths = _ESCAPE_LEN[data]
    keep = np.arange(6) < lengths[:, None]
    text = _ESCAPE_TABLE[data][keep]
    ends = np.concatenate([[0], np.cumsum(lengths)])[offsets]
    # Two quotes per row: shift each row's text by two per earlier row.
    n = len(offsets) - 1
    quoted = np.empty(text.size + 2 * n, np.uint8)
    starts = ends[:-1] + 2 * np.arange(n)
    quote_at = np.concatenate([starts, ends[1:] + 2 * np.arange(n) + 1])
    quoted[quote_at] = ord('"')
    body = np.ones(quoted.size, bool)
    body[quote_at] = False
    quoted[body] = text
    new_offsets = ends + 2 * np.arange(n + 1)
    return _build(pa.large_string(), new_offsets, quoted, column).cast(pa.string())


def banner_from_hex(column: pa.Array[Any], where: str) -> pa.Array[Any]:
    """Hex strings (CSV) back to binary; an odd length or a non-hex digit is an InputError."""
    offsets, data = binary_parts(column)
    lengths = np.diff(offsets)
    odd = np.flatnonzero(lengths % 2)
    if odd.size:
        raise InputError(f"{where}: row {int(odd[0]) + 1}: banner is not hex (odd length)")
    values = _HEX_VALUE[data]
    bad = np.flatnonzero(values == 255)
    if bad.size:
        row = int(_row_of(offsets, bad[:1])[0])
        raise InputError(f"{where}: row {row + 1}: banner is not hex")
    pairs = values.reshape(-1, 2)
    raw = (pairs[:, 0] << 4 | pairs[:, 1]).astype(np.uint8)
    return _build(pa.large_binary(), offsets // 2, raw, column).cast(pa.binary())


def banner_from_json(column: pa.Array[Any], where: str) -> pa.Array[Any]:
    """Decoded JSON strings (code points up to U+00FF, one per byte) back to binary."""
    offsets, data = binary_parts(column)
    lead = (data == 0xC2) | (data == 0xC3)
    high = np.flatnonzero((data >= 0x80) & ~lead)
    continuation = np.zeros(data.size, bool)
    continuation[np.flatnonzero(lead) + 1] = True
    stray = np.flatnonzero((data >= 0x80) & ~lead & ~continuation)
    if stray.size or (high.size and not np.all(continuation[high])):
        first = stray[:1] if stray.size else high[~continuation[high]][:1]
        row = int(_row_of(offsets, first)[0])
        raise InputError(f"{where}: row {row + 1}: banner holds a character above U+00FF")
    raw = data.copy()
    at = np.flatnonzero(lead)
    raw[at] = (data[at + 1] & 0x3F) | np.where(data[at] == 0xC3, 0xC0, 0x80).astype(np.uint8)
    kept = ~continuation
    removed_before = np.concatenate([[0], np.cumsum(continuation)])
    return _build(pa.large_binary(), offsets - removed_before[offsets], raw[kept], column).cast(
        pa.binary()
    )
