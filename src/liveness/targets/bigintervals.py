"""Sets of big integers (IPv6 addresses, prefix numbers) as sorted disjoint ``[start, end)`` rows.

The IPv6 counterpart of :mod:`liveness.targets.intervals`: bounds go up to ``2**128``, beyond
any numpy integer, so a set is a tuple of ``(start, end)`` Python-int pairs, sorted, neither
overlapping nor touching. The sets handled this way are small (command-line targets, allow and
block lists: what is written by hand or kept in a file of prefixes); a hitlist of millions of
addresses is an array (:mod:`liveness.targets.wide`) and never becomes one of these.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

__all__ = [
    "BigIntervals",
    "intersect",
    "normalize",
    "size",
    "subtract",
    "union",
]

BigIntervals = tuple[tuple[int, int], ...]
"""Sorted, disjoint, non-touching ``(start, end)`` rows of Python ints."""


def normalize(rows: Iterable[tuple[int, int]]) -> BigIntervals:
    """Sort rows and merge those that overlap or touch; empty rows are dropped."""
    merged: list[list[int]] = []
    for start, end in sorted(row for row in rows if row[0] < row[1]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((s, e) for s, e in merged)


def _combine(a: BigIntervals, b: BigIntervals, keep: Callable[[bool, bool], bool]) -> BigIntervals:
    """A boolean set operation, swept over the union of both sets' bounds."""
    events = sorted({bound for row in (*a, *b) for bound in row})
    out: list[tuple[int, int]] = []
    ia = ib = 0
    for left, right in itertools.pairwise(events):
        while ia < len(a) and a[ia][1] <= left:
            ia += 1
        while ib < len(b) and b[ib][1] <= left:
            ib += 1
        in_a = ia < len(a) and a[ia][0] <= left
        in_b = ib < len(b) and b[ib][0] <= left
        if keep(in_a, in_b):
            if out and out[-1][1] == left:
                out[-1] = (out[-1][0], right)
            else:
                out.append((left, right))
    return tuple(out)


def union(a: BigIntervals, b: BigIntervals) -> BigIntervals:
    """Values in a or in b."""
    return normalize((*a, *b))


def intersect(a: BigIntervals, b: BigIntervals) -> BigIntervals:
    """Values in both a and b."""
    if not a or not b:
        return ()
    return _combine(a, b, lambda x, y: x and y)


def subtract(a: BigIntervals, b: BigIntervals) -> BigIntervals:
    """Values in a but not in b."""
    if not a or not b:
        return a
    return _combine(a, b, lambda x, y: x and not y)


def size(a: BigIntervals) -> int:
    """Number of values in the set."""
    return sum(end - start for start, end in a)
