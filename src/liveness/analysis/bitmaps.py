"""Build roaring bitmaps from sorted numpy arrays by writing their portable serialization.

``BitMap(values)`` inserts values one at a time (about 6-15 ns each, even sorted). A sorted,
duplicate-free uint32 array already *is* most of roaring's portable format: array containers
are the low 16 bits of each run of equal high 16 bits. So the header and the payload are
written with a few numpy passes and CRoaring only validates and copies them (about 2-3 ns per
value). Containers of more than 4096 values are bitsets, which CRoaring fills from a sorted
array about as fast as numpy could, so those go through ``BitMap``. The reduction and
``mask24`` build their bitmaps here.
"""

from __future__ import annotations

import array
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from pyroaring import BitMap

__all__ = ["drop_repeats", "from_sorted", "from_unsorted", "sorted_unique"]

U32 = npt.NDArray[np.uint32]
_T = TypeVar("_T", bound=np.generic)
I64 = npt.NDArray[np.int64]

_COOKIE_NO_RUNS = 12346  # CRoaring's SERIAL_COOKIE_NO_RUNCONTAINER
_ARRAY_MAX = 4096  # the largest array container; larger ones are bitsets


def sorted_unique(values: U32, *, in_place: bool = False) -> U32:
    """``values`` sorted with duplicates dropped (``np.unique`` without its extra copies);
    ``in_place`` sorts ``values`` itself instead of a copy."""
    if in_place:
        values.sort()
    else:
        values = np.sort(values)
    return drop_repeats(values)


def drop_repeats(values: npt.NDArray[_T]) -> npt.NDArray[_T]:
    """Sorted ``values`` (any dtype) without their repeats."""
    if values.size < 2:
        return values
    keep = np.empty(values.size, dtype=np.bool_)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def from_unsorted(values: U32, *, in_place: bool = False) -> BitMap:
    """A bitmap of ``values`` (any order, duplicates allowed; ``in_place``: may sort them)."""
    return from_sorted(sorted_unique(values, in_place=in_place))


def _runs(high: npt.NDArray[np.uint32]) -> tuple[I64, I64]:
    """Start index and length of each run of equal ``high`` values (sorted input)."""
    starts = np.flatnonzero(high[1:] != high[:-1]) + 1
    starts = np.concatenate((np.zeros(1, dtype=np.int64), starts))
    lengths = np.diff(np.append(starts, high.size))
    return starts, lengths


def _serialized(keys: U32, cards: I64, sizes: I64) -> tuple[npt.NDArray[np.uint8], int]:
    """A buffer holding the portable header for these containers; returns it and its size."""
    count = keys.size
    header = 8 + 8 * count
    offsets = header + np.concatenate((np.zeros(1, dtype=np.int64), np.cumsum(sizes[:-1])))
    out = np.empty(header + int(sizes.sum()), dtype=np.uint8)
    out[:8].view(np.uint32)[:] = (_COOKIE_NO_RUNS, count)
    descriptive = out[8 : 8 + 4 * count].view(np.uint16).reshape(count, 2)
    descriptive[:, 0] = keys
    descriptive[:, 1] = cards - 1
    out[8 + 4 * count : header].view(np.uint32)[:] = offsets
    return out, header


def _array_containers(values: U32, keys: U32, cards: I64) -> BitMap:
    """``values`` (sorted, unique) in containers ``keys`` of ``cards`` (<= 4096) values each."""
    out, header = _serialized(keys, cards, 2 * cards)
    out[header:].view(np.uint16)[:] = values  # the low 16 bits, in order
    return BitMap.deserialize(out.tobytes())


def from_sorted(values: U32) -> BitMap:
    """A bitmap of ``values``, which must be sorted and free of duplicates (uint32)."""
    if values.size == 0:
        return BitMap()
    high = values >> np.uint32(16)
    starts, cards = _runs(high)
    keys = high[starts]
    dense = cards > _ARRAY_MAX
    if not dense.any():
        return _array_containers(values, keys, cards)
    if dense.all():
        return BitMap(array.array("I", values.tobytes()), optimize=False)
    in_bitset = np.repeat(dense, cards)
    # CRoaring sets a sorted run of bits into a bitset container about as fast as numpy could
    result = BitMap(array.array("I", values[in_bitset].tobytes()), optimize=False)
    sparse = ~dense
    result |= _array_containers(values[~in_bitset], keys[sparse], cards[sparse])  # other keys
    return result
