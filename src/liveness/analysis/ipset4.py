"""IPv4 address sets as roaring bitmaps: the IPv4 half of :mod:`liveness.analysis.ipset`.

A set is a :class:`pyroaring.BitMap` of uint32 addresses (host order, as in the reply record),
stored in roaring's portable serialization, so CRoaring, Java or Go roaring can read it.
Everything works on numpy arrays and address ranges: building sorts addresses first (roaring
inserts sorted input about ten times faster), CIDRs are added as ranges, and the minimal CIDR
cover is computed from runs of consecutive addresses, a whole batch of runs per step.

The symmetric difference of several sets keeps the addresses found in an odd number of them
(pairwise XOR, as for two sets).
"""

from __future__ import annotations

import array
from collections.abc import Iterator
from functools import reduce
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from pyroaring import BitMap

from liveness.errors import InputError
from liveness.output.addresses import format_dotted

__all__ = [
    "BadEntry",
    "address_chunks",
    "cidr_cover",
    "difference",
    "format_cidrs",
    "from_addresses",
    "from_prefixes",
    "from_ranges",
    "intersect",
    "mask",
    "parse_entries",
    "symdiff",
    "to_addresses",
    "union",
]

_ADDRESS_SPACE = 1 << 32
_WINDOW = 1 << 24


def from_addresses(addresses: npt.ArrayLike) -> BitMap:
    """A set from an array of uint32 addresses (duplicates and any order allowed)."""
    values = np.sort(np.asarray(addresses, dtype=np.uint32))
    buffer = array.array("I")
    buffer.frombytes(values.tobytes())
    return BitMap(buffer)


def to_addresses(addresses: BitMap) -> npt.NDArray[np.uint32]:
    """The set's addresses as a sorted uint32 array."""
    return np.frombuffer(addresses.to_array(), dtype=np.uint32)


def from_ranges(starts: npt.ArrayLike, stops: npt.ArrayLike) -> BitMap:
    """A set holding every address in the half-open ranges ``[start, stop)``."""
    result = BitMap()
    for start, stop in zip(np.asarray(starts).tolist(), np.asarray(stops).tolist(), strict=True):
        result.add_range(start, stop)
    return result


def from_prefixes(addresses: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> BitMap:
    """A set of CIDR blocks (host bits cleared): single addresses go in as one sorted array,
    blocks as merged ranges."""
    single = lengths == 32
    result = from_addresses(addresses[single])
    sizes = np.left_shift(1, 32 - lengths[~single])
    starts = addresses[~single] & ~(sizes - 1)
    if starts.size:
        order = np.argsort(starts, kind="stable")
        starts, stops = starts[order], (starts + sizes)[order]
        reach = np.maximum.accumulate(stops)
        new_run = np.ones(starts.size, dtype=bool)
        new_run[1:] = starts[1:] > reach[:-1]
        run_ids = np.cumsum(new_run) - 1
        merged_starts = starts[new_run]
        merged_stops = np.zeros(merged_starts.size, dtype=np.int64)
        np.maximum.at(merged_stops, run_ids, stops)
        result |= from_ranges(merged_starts, merged_stops)
    return result


def union(*sets: BitMap) -> BitMap:
    """Addresses in any of the sets."""
    return BitMap.union(*sets) if sets else BitMap()


def intersect(first: BitMap, *others: BitMap) -> BitMap:
    """Addresses in every set."""
    return BitMap.intersection(first, *others) if others else BitMap(first)


def difference(first: BitMap, *others: BitMap) -> BitMap:
    """Addresses of the first set that are in none of the others."""
    return first - union(*others) if others else BitMap(first)


def symdiff(first: BitMap, *others: BitMap) -> BitMap:
    """Addresses in an odd number of the sets (for two sets: in exactly one)."""
    return reduce(lambda a, b: a ^ b, others, BitMap(first))


def _windows(addresses: BitMap) -> Iterator[tuple[int, npt.NDArray[np.int64] | None]]:
    """The set cut into aligned 2**24-address windows, so no step holds more than 2**24 values.

    Yields ``(window start, addresses in it)``, or ``(window start, None)`` when the window is
    full (a /8 of consecutive addresses is not materialised).
    """
    for start in range(0, _ADDRESS_SPACE, _WINDOW):
        count = addresses.range_cardinality(start, start + _WINDOW)
        if count == 0:
            continue
        if count == _WINDOW:
            yield start, None
            continue
        window = BitMap()
        window.add_range(start, start + _WINDOW)
        yield start, to_addresses(addresses & window).astype(np.int64)


def address_chunks(addresses: BitMap) -> Iterator[npt.NDArray[np.int64]]:
    """The set's addresses in ascending order, at most 2**24 at a time (bounded memory)."""
    for start, values in _windows(addresses):
        yield np.arange(start, start + _WINDOW, dtype=np.int64) if values is None else values


def mask(addresses: BitMap, prefix_length: int) -> BitMap:
    """Each address replaced by the base address of its ``/prefix_length`` block."""
    if not 0 <= prefix_length <= 32:
        raise InputError(f"prefix length must be 0..32, got {prefix_length}")
    block = 1 << (32 - prefix_length)
    result = BitMap()
    for start, values in _windows(addresses):
        if values is None:  # a full window: every block base in it
            first = start & ~(block - 1)
            values = np.arange(first, start + _WINDOW, block, dtype=np.int64)
        result |= from_addresses(values & ~(block - 1))
    return result


def _runs(addresses: BitMap) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Maximal runs of consecutive addresses as (starts, stops), stops exclusive."""
    starts: list[npt.NDArray[np.int64]] = []
    stops: list[npt.NDArray[np.int64]] = []
    for start, values in _windows(addresses):
        if values is None:
            starts.append(np.array([start], dtype=np.int64))
            stops.append(np.array([start + _WINDOW], dtype=np.int64))
            continue
        breaks = np.flatnonzero(np.diff(values) != 1)
        starts.append(values[np.concatenate(([0], breaks + 1))])
        stops.append(values[np.concatenate((breaks, [values.size - 1]))] + 1)
    if not starts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    all_starts, all_stops = np.concatenate(starts), np.concatenate(stops)
    joined = np.flatnonzero(all_starts[1:] == all_stops[:-1])  # runs crossing a window edge
    return np.delete(all_starts, joined + 1), np.delete(all_stops, joined)


def cidr_cover(addresses: BitMap) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The fewest CIDR blocks whose union is exactly the set: (base addresses, prefix lengths).

    Runs of consecutive addresses are split greedily into the largest aligned power-of-two
    blocks, all runs at once per step (at most 32 steps).
    """
    starts, stops = _runs(addresses)
    bases: list[npt.NDArray[np.int64]] = []
    lengths: list[npt.NDArray[np.int64]] = []
    order: list[npt.NDArray[np.int64]] = []
    run_index = np.arange(starts.size, dtype=np.int64)
    step = 0
    while starts.size:
        alignment = np.where(starts == 0, _ADDRESS_SPACE, starts & -starts)
        fitting = np.left_shift(1, _floor_log2(stops - starts))
        size = np.minimum(alignment, fitting)
        bases.append(starts)
        lengths.append(32 - _floor_log2(size))
        order.append(run_index * 64 + step)
        starts = starts + size
        left = starts < stops
        starts, stops, run_index = starts[left], stops[left], run_index[left]
        step += 1
    if not bases:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    sorting = np.argsort(np.concatenate(order), kind="stable")
    return np.concatenate(bases)[sorting], np.concatenate(lengths)[sorting]


def _floor_log2(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """floor(log2(v)) for positive integers below 2**53, exactly (frexp is exact there)."""
    return np.frexp(values.astype(np.float64))[1].astype(np.int64) - 1


def format_cidrs(bases: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> list[str]:
    """``a.b.c.d/n`` strings for a CIDR cover."""
    dotted = format_dotted(bases.astype(np.uint32)).to_pylist()
    return [f"{base}/{length}" for base, length in zip(dotted, lengths.tolist(), strict=True)]


class BadEntry(InputError):
    """Entry ``index`` of a text list is not an address or CIDR (``problem`` says why)."""

    def __init__(self, index: int, problem: str) -> None:
        super().__init__(problem)
        self.index = index
        self.problem = problem


def parse_entries(entries: pa.Array[Any]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``(addresses, prefix lengths)`` of IPv4 text entries (``a.b.c.d`` or ``a.b.c.d/n``).

    Arrow string kernels, no Python object per entry; the first bad entry raises
    :class:`BadEntry`.
    """
    parts = pc.extract_regex(entries, r"^(?P<address>[^/\s]+)(?:/(?P<length>[0-9]{1,2}))?$")
    matched = parts.is_valid().to_numpy(zero_copy_only=False)
    if not matched.all():
        raise BadEntry(int(np.flatnonzero(~matched)[0]), "not an address or CIDR:")
    address_texts = pc.struct_field(parts, "address")
    length_texts: Any = pc.struct_field(parts, "length")
    octets = pc.split_pattern(address_texts, ".")
    counts = pc.list_value_length(octets).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(octets)
    digits = pc.match_substring_regex(flat, r"^[0-9]{1,3}$").to_numpy(zero_copy_only=False)
    ends = np.cumsum(counts)
    bad_rows = np.flatnonzero(counts != 4)
    if not digits.all():
        bad_rows = np.union1d(bad_rows, np.searchsorted(ends, np.flatnonzero(~digits), "right"))
    if bad_rows.size:
        raise BadEntry(int(bad_rows[0]), "not an address or CIDR:")
    values = flat.cast(pa.int64()).to_numpy().reshape(-1, 4)
    over = np.flatnonzero((values > 255).any(axis=1))
    if over.size:
        raise BadEntry(int(over[0]), "not an address or CIDR:")
    addresses = (values[:, 0] << 24) | (values[:, 1] << 16) | (values[:, 2] << 8) | values[:, 3]
    has_length = pc.not_equal(length_texts, pa.scalar("", pa.string()))
    lengths = pc.if_else(has_length, length_texts, "32").cast(pa.int64()).to_numpy()
    too_long = np.flatnonzero(lengths > 32)
    if too_long.size:
        raise BadEntry(int(too_long[0]), "bad prefix length in")
    return addresses, lengths
