"""Vectorised IPv4 text conversion: uint32 arrays to dotted strings and back.

Text outputs (CSV, JSON lines, address lists) show addresses dotted; Parquet and the in-memory
reply record keep them as uint32 in host order. Both directions run in Arrow/numpy kernels, one
batch at a time, with no per-address Python objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from liveness.errors import InputError

__all__ = ["format_dotted", "join_strings", "parse_dotted"]

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
