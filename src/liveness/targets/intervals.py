"""Sets of IPv4 addresses as sorted, disjoint ``[start, end)`` intervals.

An interval set is a ``(k, 2)`` uint64 array: row ``i`` is ``[start_i, end_i)``, rows sorted by
start, no two rows overlapping or touching. Ends go up to ``2**32``, hence uint64. The whole IPv4
space is one row, so every operation here costs O(intervals), never O(addresses).

Set operations work on the flattened boundaries ``s0, e0, s1, e1, ...`` (strictly increasing for
a normalised set): a point is inside iff an odd number of boundaries are ``<=`` it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ADDRESS_SPACE_END",
    "Intervals",
    "cidr_cover",
    "contains",
    "empty",
    "intersect",
    "normalize",
    "overlapping_rows",
    "size",
    "subtract",
    "union",
]

Intervals = NDArray[np.uint64]
"""A ``(k, 2)`` uint64 array of sorted, disjoint, non-touching ``[start, end)`` rows."""

ADDRESS_SPACE_END = 1 << 32


def empty() -> Intervals:
    """The empty set."""
    return np.empty((0, 2), dtype=np.uint64)


def normalize(rows: NDArray[np.uint64]) -> Intervals:
    """Sort ``(k, 2)`` ``[start, end)`` rows and merge those that overlap or touch.

    Empty rows (``start >= end``) are dropped.
    """
    rows = np.asarray(rows, dtype=np.uint64).reshape(-1, 2)
    rows = rows[rows[:, 0] < rows[:, 1]]
    if len(rows) == 0:
        return empty()
    order = np.argsort(rows[:, 0], kind="stable")
    starts = rows[order, 0]
    reach = np.maximum.accumulate(rows[order, 1])
    opens = np.empty(len(starts), dtype=np.bool_)
    opens[0] = True
    opens[1:] = starts[1:] > reach[:-1]
    first = np.flatnonzero(opens)
    last = np.append(first[1:] - 1, len(starts) - 1)
    return np.stack([starts[first], reach[last]], axis=1)


def _inside(bounds: NDArray[np.uint64], points: NDArray[np.uint64]) -> NDArray[np.bool_]:
    return (np.searchsorted(bounds, points, side="right") & 1).astype(np.bool_)


def _combine(
    a: Intervals,
    b: Intervals,
    keep: Callable[[NDArray[np.bool_], NDArray[np.bool_]], NDArray[np.bool_]],
) -> Intervals:
    """Apply a boolean set operation segment by segment between all boundaries of a and b."""
    bounds_a = a.reshape(-1)
    bounds_b = b.reshape(-1)
    points = np.union1d(bounds_a, bounds_b).astype(np.uint64)
    if len(points) < 2:
        return empty()
    seg_starts = points[:-1]
    kept = keep(_inside(bounds_a, seg_starts), _inside(bounds_b, seg_starts))
    if not kept.any():
        return empty()
    before = np.concatenate([[False], kept[:-1]])
    after = np.concatenate([kept[1:], [False]])
    starts = seg_starts[kept & ~before]
    ends = points[1:][kept & ~after]
    return np.stack([starts, ends], axis=1)


def union(a: Intervals, b: Intervals) -> Intervals:
    """Addresses in a or in b."""
    return _combine(a, b, np.logical_or)


def intersect(a: Intervals, b: Intervals) -> Intervals:
    """Addresses in both a and b."""
    return _combine(a, b, np.logical_and)


def subtract(a: Intervals, b: Intervals) -> Intervals:
    """Addresses in a but not in b."""
    return _combine(a, b, lambda x, y: x & ~y)


def size(a: Intervals) -> int:
    """Number of addresses in the set."""
    return int((a[:, 1] - a[:, 0]).sum(dtype=np.uint64))


def contains(a: Intervals, addrs: NDArray[np.uint64]) -> NDArray[np.bool_]:
    """Which of ``addrs`` lie in the set (vectorised)."""
    return _inside(a.reshape(-1), np.asarray(addrs, dtype=np.uint64))


def overlapping_rows(rows: NDArray[np.uint64], a: Intervals) -> NDArray[np.bool_]:
    """For each ``[start, end)`` row of an arbitrary ``(k, 2)`` array: does it meet the set a?"""
    rows = np.asarray(rows, dtype=np.uint64).reshape(-1, 2)
    if len(a) == 0:
        return np.zeros(len(rows), dtype=np.bool_)
    # The last interval of a starting before the row's end overlaps iff it ends after its start.
    last = np.searchsorted(a[:, 0], rows[:, 1], side="left").astype(np.int64) - 1
    safe = np.maximum(last, 0)
    meets: NDArray[np.bool_] = (last >= 0) & (a[safe, 1] > rows[:, 0]) & (rows[:, 0] < rows[:, 1])
    return meets


def cidr_cover(a: Intervals) -> list[str]:
    """The minimal list of CIDR blocks whose union is exactly the set, in address order."""
    blocks: list[str] = []
    for start_u, end_u in a.tolist():
        start, end = int(start_u), int(end_u)
        while start < end:
            # Largest aligned block at start that does not pass end.
            align = start & -start if start else ADDRESS_SPACE_END
            span = 1 << ((end - start).bit_length() - 1)
            block = min(align, span)
            prefix = 32 - (block.bit_length() - 1)
            blocks.append(f"{_dotted(start)}/{prefix}")
            start += block
    return blocks


def _dotted(address: int) -> str:
    return ".".join(str((address >> shift) & 0xFF) for shift in (24, 16, 8, 0))
