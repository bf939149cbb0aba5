"""Interval algebra for the reach detectors: status sweeps and run merging, all on numpy arrays.

The detectors never expand intervals into rounds. ``sweep`` sorts the boundaries of every
(member, group) interval once and keeps, per group, the segments between consecutive boundaries
with the bit masks of the members that saw the group up and down there; ``merge_runs`` joins
consecutive segments (or events separated by a tolerated gap) into events. Cost is proportional
to the number of status changes, not to the length of the period.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from liveness.errors import InputError

__all__ = [
    "Codes",
    "Sweep",
    "bit_of",
    "dictionary_codes",
    "mask_members",
    "merge_runs",
    "one_hot",
    "popcount",
    "snap",
    "sweep",
]

I64 = NDArray[np.int64]
Codes = NDArray[np.int32]
Ints = NDArray[np.integer[Any]]
U64 = NDArray[np.uint64]
Bool = NDArray[np.bool_]

_WORD = 64


def dictionary_codes(
    column: pa.ChunkedArray[Any] | pa.Array[Any],
) -> tuple[Codes, pa.Array[Any]]:
    """Integer codes and the names (a string array) they index, for a string column."""
    chunked = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    if not pa.types.is_dictionary(chunked.type):
        chunked = pc.dictionary_encode(chunked)
    chunks: list[Any] = chunked.chunks
    if len(chunks) > 1 and all(c.dictionary.equals(chunks[0].dictionary) for c in chunks[1:]):
        # a Parquet file read back repeats one dictionary per chunk: unifying 166 copies of a
        # 1M-name dictionary takes 35 s, joining the indices none
        indices = pa.concat_arrays([c.indices for c in chunks])
        codes = indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        return codes, chunks[0].dictionary.cast(pa.string())
    table = pa.table({"c": chunked}).unify_dictionaries().combine_chunks()
    combined = table.column("c")
    if combined.num_chunks == 0:
        return np.zeros(0, np.int32), pa.array([], pa.string())
    array: Any = combined.chunk(0)
    codes = array.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return codes, array.dictionary.cast(pa.string())


def snap(times: I64, origin: int, step: int) -> I64:
    """Time indices: the round ``(t - origin) // step`` each time falls in (seconds if step<=1).

    With ``origin`` the earliest time, VPs whose rounds start at different seconds of the same
    round land on the same index. Both ends of every interval go through the same monotone
    function, so intervals of one VP that touch stay touching and intervals that did not overlap
    still do not (intervals inside one round vanish).
    """
    if step <= 1:
        return times - origin
    return np.floor_divide(times - origin, step)


def popcount(masks: U64) -> NDArray[np.int64]:
    """Number of members in each mask (masks shaped ``(words, n)``)."""
    counts: NDArray[np.int64] = np.bitwise_count(masks).sum(axis=0, dtype=np.int64)
    return counts


def bit_of(masks: U64, member: int) -> Bool:
    """Whether ``member`` is in each mask (masks shaped ``(words, n)``)."""
    word = masks[member // _WORD]
    flags: Bool = ((word >> np.uint64(member % _WORD)) & np.uint64(1)).astype(bool)
    return flags


def one_hot(member: Ints, n_members: int) -> U64:
    """Bit masks shaped ``(words, n)`` holding one member each."""
    words = max(1, -(-n_members // _WORD))
    masks = np.zeros((words, len(member)), np.uint64)
    for word in range(words):
        in_word = member // _WORD == word
        masks[word, in_word] = np.left_shift(
            np.uint64(1), (member[in_word] % _WORD).astype(np.uint64)
        )
    return masks


def mask_members(masks: U64, names: list[str]) -> pa.ListArray[Any]:
    """The member names of each mask, as a ``list<string>`` array (vectorised)."""
    n = masks.shape[1] if masks.ndim == 2 else 0
    little = np.ascontiguousarray(masks.T, dtype="<u8").view(np.uint8)
    bits = np.unpackbits(little, axis=1, bitorder="little")[:, : len(names)].astype(bool)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(bits.sum(axis=1), out=offsets[1:])
    members = np.nonzero(bits)[1].astype(np.int32)
    values = pa.DictionaryArray.from_arrays(
        pa.array(members, pa.int32()), pa.array(names, pa.string())
    ).cast(pa.string())
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


@dataclass(frozen=True)
class Sweep:
    """Segments of constant membership, sorted by (group, start).

    ``up`` and ``down`` are member bit masks shaped ``(words, n)``: bit ``m`` of word ``m // 64``
    is set when member ``m`` saw the group up (down) during ``[start, end)``; ``n_up`` and
    ``n_down`` count those members. Segments where no member voted have both counts 0;
    consecutive segments may have equal masks (an ``unknown`` boundary splits them).
    """

    group: I64
    start: I64
    end: I64
    up: U64
    down: U64
    n_up: I64
    n_down: I64


# Status codes in the sweep: as the Observation's STATUSES (0 down, 1 up, 2 unknown).
_DOWN, _UP = 0, 1


def _delta_tables(n_members: int, member_bits: int) -> tuple[U64, U64, I64]:
    """Lookup tables from a boundary's low key bits (member, status, is_start) to its deltas.

    Per word: the up-mask and down-mask deltas (``+bit`` at a start, ``-bit`` at an end, as
    uint64 that wrap); and the open-interval count delta packed as ``up + (down << 32)``.
    """
    words = max(1, -(-n_members // _WORD))
    size = 1 << (member_bits + 3)
    low = np.arange(size, dtype=np.int64)
    is_start = (low & 1).astype(bool)
    status = (low >> 1) & 3
    member = low >> 3
    valid = member < n_members
    bit = np.left_shift(np.uint64(1), (member % _WORD).astype(np.uint64))
    signed = np.where(is_start, bit, np.negative(bit))
    one = np.where(is_start, 1, -1).astype(np.int64)
    up = np.zeros((words, size), np.uint64)
    down = np.zeros((words, size), np.uint64)
    for word in range(words):
        in_word = valid & (member // _WORD == word)
        up[word] = np.where(in_word & (status == _UP), signed, np.uint64(0))
        down[word] = np.where(in_word & (status == _DOWN), signed, np.uint64(0))
    counts = np.where(valid & (status == _UP), one, 0) + np.where(
        valid & (status == _DOWN), one << 32, 0
    )
    return up, down, counts.astype(np.int64)


def _sorted_keys(
    group: Ints, member: Ints, status: NDArray[np.int8], start: I64, end: I64, n_members: int
) -> tuple[I64, int, int]:
    """One int64 key per boundary, sorted: group | time | member | status (2 bits) | is_start.

    Returns the keys, the number of low bits below the time, and the time bits.
    """
    member_bits = max(1, int(n_members - 1).bit_length())
    time_bits = max(1, int(end.max()).bit_length())
    group_bits = max(1, int(group.max()).bit_length())
    if group_bits + time_bits + member_bits + 3 > 63:
        raise InputError(
            f"too many targets x time steps x VPs to sweep ({group_bits}+{time_bits}+"
            f"{member_bits} bits): use a coarser --round"
        )
    low_bits = member_bits + 3
    common = group.astype(np.int64) << (time_bits + low_bits)
    common |= member.astype(np.int64) << 3
    common |= status.astype(np.int64) << 1
    n = len(group)
    keys = np.empty(2 * n, np.int64)
    np.bitwise_or(common, start << low_bits, out=keys[:n])
    keys[:n] |= 1
    np.bitwise_or(common, end << low_bits, out=keys[n:])
    del common
    keys.sort()  # one sort of packed keys beats argsort and gathers
    return keys, low_bits, time_bits


def sweep(
    group: Ints, member: Ints, status: NDArray[np.int8], start: I64, end: I64, n_members: int
) -> Sweep:
    """Per group, the segments between consecutive boundaries with who saw it up and down.

    Inputs are one row per interval: ``group`` (e.g. a block), ``member`` (e.g. a VP, ``0 <=
    member < n_members``), ``status`` (0 down, 1 up, 2 unknown: does not vote), ``[start,
    end)`` as non-negative integer time indices (empty intervals count for nothing). Intervals
    of one member and group must not overlap (InputError otherwise): masks are running sums of
    ``+bit`` at starts and ``-bit`` at ends, and an overlap shows as a mask whose population
    count differs from the number of open intervals.
    """
    words = max(1, -(-n_members // _WORD))
    empty = np.zeros(0, np.int64)
    if len(group) == 0:
        no_masks = np.zeros((words, 0), np.uint64)
        return Sweep(empty, empty, empty, no_masks, no_masks.copy(), empty, empty)
    keys, low_bits, time_bits = _sorted_keys(group, member, status, start, end, n_members)
    up_table, down_table, count_table = _delta_tables(n_members, low_bits - 3)
    low = keys & ((1 << low_bits) - 1)
    keys >>= low_bits  # now group | time
    last = np.flatnonzero(keys[1:] != keys[:-1])
    last = np.append(last, len(keys) - 1)
    up = np.empty((words, len(last)), np.uint64)
    down = np.empty((words, len(last)), np.uint64)
    for word in range(words):
        up[word] = np.cumsum(up_table[word][low], dtype=np.uint64)[last]
        down[word] = np.cumsum(down_table[word][low], dtype=np.uint64)[last]
    counts = np.cumsum(count_table[low])[last]
    del low
    n_up = counts & 0xFFFFFFFF
    n_down = counts >> 32
    if (popcount(up) != n_up).any() or (popcount(down) != n_down).any():
        raise InputError("overlapping intervals for the same vantage point and target")
    if np.bitwise_and(up, down).any():
        raise InputError("a vantage point sees the same target up and down at the same time")
    group_time = keys[last]
    seg_start = group_time & ((1 << time_bits) - 1)
    seg_end = np.empty_like(seg_start)
    seg_end[:-1] = seg_start[1:]
    seg_end[-1] = seg_start[-1]
    return Sweep(group_time >> time_bits, seg_start, seg_end, up, down, n_up, n_down)


def merge_runs(group: I64, start: I64, end: I64, gap: int) -> I64:
    """Indices where a new run starts, for rows sorted by (group, start).

    Consecutive rows of one group join while the hole between them is at most ``gap`` (0: they
    must touch).
    """
    n = len(group)
    if n == 0:
        return np.zeros(0, np.int64)
    new = np.empty(n, bool)
    new[0] = True
    new[1:] = (group[1:] != group[:-1]) | (start[1:] - end[:-1] > gap)
    return np.flatnonzero(new)
