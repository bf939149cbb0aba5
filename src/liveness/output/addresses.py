"""Vectorised address text conversion: IPv4 uint32 and IPv6 16-byte binaries to text and back.

Text outputs (CSV, JSON lines, address lists) show IPv4 addresses dotted and IPv6 addresses in
RFC 5952 form (lowercase, no leading zeros, the first longest run of two or more zero groups
compressed to ``::``; IPv4-mapped ``::ffff:a.b.c.d`` in mixed notation, RFC 5952 section 5, as
Python 3.13's :mod:`ipaddress` and glibc's ``inet_ntop`` print them). Parquet and the reply
record keep IPv4 as uint32 in host order and IPv6 as ``binary(16)`` in network order.
Formatting runs in numpy/Arrow kernels, one batch at a time, with no per-address Python
objects; parsing IPv6 text makes one ``inet_pton`` call per distinct address.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from liveness.errors import InputError
from liveness.output.schema import ADDR6

__all__ = ["format_dotted", "format_ipv6", "join_strings", "parse_dotted", "parse_ipv6"]

_SHIFTS = (24, 16, 8, 0)


def format_dotted(addresses: pa.Array[Any] | npt.NDArray[np.uint32]) -> pa.StringArray:
    """Dotted-quad strings for uint32 addresses (nulls stay null)."""
    array = (
        pa.array(addresses, type=pa.uint32()) if isinstance(addresses, np.ndarray) else addresses
    )
    array = array.cast(pa.uint32())
    octets = [
        pc.bit_wise_and(pc.shift_right(array, shift), 255).cast(pa.string()) for shift in _SHIFTS
    ]
    result = join_strings(octets, ".")
    assert isinstance(result, pa.StringArray)
    return result


def join_strings(parts: Sequence[pa.Array[Any] | str], separator: str) -> pa.Array[Any]:
    """Element-wise concatenation of string arrays and constant strings, with a separator."""
    joined = pc.binary_join_element_wise(*parts, separator)  # type: ignore[call-overload]
    return cast("pa.Array[Any]", joined)


def parse_dotted(texts: pa.Array[Any], where: str, first_row: int = 0) -> pa.UInt32Array:
    """uint32 addresses from dotted-quad strings; nulls stay null.

    ``where`` names the source (file and column) and ``first_row`` the row number of the first
    value, for the error raised on a malformed address.
    """
    strings = texts.cast(pa.string())
    parts = pc.split_pattern(strings, ".")
    lengths = pc.list_value_length(parts).fill_null(4).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(lengths != 4)
    if bad.size:
        _raise_bad(strings, int(bad[0]), where, first_row)
    filled = pc.fill_null(parts, pa.scalar(["0", "0", "0", "0"], pa.list_(pa.string())))
    flat = pc.list_flatten(cast("pa.ListArray[Any]", filled))
    digits_ok = pc.match_substring_regex(flat, r"^[0-9]{1,3}$").to_numpy(zero_copy_only=False)
    if not digits_ok.all():
        _raise_bad(strings, int(np.flatnonzero(~digits_ok)[0]) // 4, where, first_row)
    octets = flat.cast(pa.uint32()).to_numpy().reshape(-1, 4)
    over = np.flatnonzero((octets > 255).any(axis=1))
    if over.size:
        _raise_bad(strings, int(over[0]), where, first_row)
    values = (octets[:, 0] << 24) | (octets[:, 1] << 16) | (octets[:, 2] << 8) | octets[:, 3]
    result = pa.array(
        values.astype(np.uint32),
        type=pa.uint32(),
        mask=strings.is_null().to_numpy(zero_copy_only=False),
    )
    assert isinstance(result, pa.UInt32Array)
    return result


def _raise_bad(strings: pa.Array[Any], index: int, where: str, first_row: int) -> None:
    value = strings[index].as_py()
    raise InputError(f"{where}: row {first_row + index + 1}: not an IPv4 address: {value!r}")


# Token codes of the IPv6 formatter: each of the 8 groups of an address becomes one token, a
# string of the table below; the row's text is its 8 tokens back to back.
_COLON = 1 << 16  # ":" + group (every group but the first and the one after "::")
_MAPPED_HIGH = 2 << 16  # ":" + a.b, the high group of an IPv4-mapped address's IPv4 part
_MAPPED_LOW = 3 << 16  # "." + c.d, its low group
_DOUBLE = 4 << 16  # "::", the first group of the compressed run
_EMPTY = _DOUBLE + 1  # "", the other groups of the run


@functools.cache
def _tokens() -> pa.StringArray:
    """Every token the formatter emits, indexed by the codes above (built once, 262,146)."""
    groups = [format(value, "x") for value in range(1 << 16)]
    halves = [f"{value >> 8}.{value & 255}" for value in range(1 << 16)]
    table = pa.array(
        [
            *groups,
            *(":" + g for g in groups),
            *(":" + h for h in halves),
            *("." + h for h in halves),
            "::",
            "",
        ],
        pa.string(),
    )
    assert isinstance(table, pa.StringArray)
    return table


def format_ipv6(addresses: pa.Array[Any]) -> pa.StringArray:
    """RFC 5952 text of ``binary(16)`` addresses in network byte order (nulls stay null).

    Vectorised: the 8 groups of every address are turned into token codes with numpy (the
    longest zero run found by a running count over the groups), the tokens gathered from one
    table in a single ``take``, and the row strings read off the gathered tokens' buffer.
    """
    array = addresses.cast(ADDR6)
    count = len(array)
    if array.null_count:
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        compact = format_ipv6(array.filter(pa.array(valid)))
        positions = np.cumsum(valid) - 1
        index = pa.array(positions, type=pa.int64(), mask=~valid)
        result = compact.take(index)
        assert isinstance(result, pa.StringArray)
        return result
    data = array.buffers()[1]
    assert data is not None
    groups = np.frombuffer(memoryview(data), dtype=">u2", count=8 * count, offset=array.offset * 16)
    groups = groups.reshape(count, 8)
    codes = groups.astype(np.int32)
    codes[:, 1:] += _COLON
    zero = (groups == 0).view(np.int8)
    run = np.empty((count, 8), dtype=np.int8)  # length of the zero run ending at each group
    run[:, 0] = zero[:, 0]
    for i in range(1, 8):
        np.add(run[:, i - 1], 1, out=run[:, i])
        run[:, i] *= zero[:, i]
    end = run.argmax(axis=1)  # the first longest run's last group
    rows = np.arange(count)
    length = run[rows, end]
    rows, end, length = rows[length >= 2], end[length >= 2], length[length >= 2]
    start = end - length + 1
    after = end + 1
    follows = after < 8
    codes[rows[follows], after[follows]] -= _COLON  # no ":" after "::"
    codes[rows, start] = _DOUBLE
    for k in range(1, 8):
        inside = length > k
        codes[rows[inside], start[inside] + k] = _EMPTY
    mapped = np.flatnonzero((groups[:, :5] == 0).all(axis=1) & (groups[:, 5] == 0xFFFF))
    if mapped.size:  # "::ffff" then the IPv4 part dotted
        codes[mapped, 6] = _MAPPED_HIGH + groups[mapped, 6].astype(np.int32)
        codes[mapped, 7] = _MAPPED_LOW + groups[mapped, 7].astype(np.int32)
    tokens = _tokens().take(pa.array(codes.reshape(-1), type=pa.int32()))
    token_offsets = tokens.buffers()[1]
    assert token_offsets is not None
    bounds = np.frombuffer(memoryview(token_offsets), dtype=np.int32, count=8 * count + 1)
    offsets = pa.array(np.ascontiguousarray(bounds[::8]), type=pa.int32()).buffers()[1]
    text = pa.Array.from_buffers(pa.string(), count, [None, offsets, tokens.buffers()[2]])
    assert isinstance(text, pa.StringArray)
    return text


def parse_ipv6(texts: pa.Array[Any], where: str, first_row: int = 0) -> pa.FixedSizeBinaryArray:
    """``binary(16)`` addresses (network order) from IPv6 text; nulls stay null.

    Any form ``inet_pton`` accepts (compressed or not, upper or lower case, embedded IPv4);
    zone indexes (``%eth0``) are refused. Each distinct text is parsed once. ``where`` and
    ``first_row`` place the error raised on a malformed address, as for :func:`parse_dotted`.
    """
    encoded = pc.dictionary_encode(texts.cast(pa.string()))
    assert isinstance(encoded, pa.DictionaryArray)
    distinct = encoded.dictionary.to_pylist()
    try:
        packed = b"".join(map(_pton6, distinct))
    except (OSError, TypeError, ValueError):
        bad = next(i for i, value in enumerate(distinct) if not is_ipv6(value))
        row = pc.index(encoded.indices, pa.scalar(bad, encoded.indices.type)).as_py()
        raise InputError(
            f"{where}: row {first_row + row + 1}: not an IPv6 address: {distinct[bad]!r}"
        ) from None
    table = pa.FixedSizeBinaryArray.from_buffers(ADDR6, len(distinct), [None, pa.py_buffer(packed)])
    result = table.take(encoded.indices)
    assert isinstance(result, pa.FixedSizeBinaryArray)
    return result


_pton6 = functools.partial(socket.inet_pton, socket.AF_INET6)


def is_ipv6(text: object) -> bool:
    """Whether ``text`` is an IPv6 address that :func:`parse_ipv6` accepts."""
    try:
        _pton6(text)  # type: ignore[arg-type]
    except (OSError, TypeError, ValueError):
        return False
    return True
