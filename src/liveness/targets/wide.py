"""128-bit unsigned integers (IPv6 addresses) as pairs of uint64 arrays ``(hi, lo)``, vectorised.

numpy has no 128-bit integer type, so an array of IPv6 addresses is two uint64 arrays of the
same shape: the high and the low 64 bits. The helpers here are the few operations the target
space needs: conversion from and to Python ints and bytes, addition, per-element left shifts,
comparison, binary search and sorting. Python ints (arbitrary precision) are used for the small
sets (interval bounds, blocklist entries); arrays for anything sized like a hitlist or a batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "MASK64",
    "U64",
    "add",
    "bit_masks",
    "from_ints",
    "in_intervals",
    "less",
    "searchsorted",
    "shift_left",
    "sort_unique",
    "to_bytes",
    "to_ints",
]

U64 = NDArray[np.uint64]
MASK64 = (1 << 64) - 1
_ONE = np.uint64(1)
_SIXTY_FOUR = np.uint64(64)
_BLOCK = 1 << 20


def from_ints(values: Iterable[int]) -> tuple[U64, U64]:
    """Python ints in ``[0, 2**128)`` as ``(hi, lo)`` arrays."""
    items = list(values)
    hi = np.fromiter((v >> 64 for v in items), dtype=np.uint64, count=len(items))
    lo = np.fromiter((v & MASK64 for v in items), dtype=np.uint64, count=len(items))
    return hi, lo


def to_ints(hi: U64, lo: U64) -> list[int]:
    """``(hi, lo)`` arrays as Python ints."""
    return [(h << 64) | low for h, low in zip(hi.tolist(), lo.tolist(), strict=True)]


def to_bytes(hi: U64, lo: U64) -> NDArray[np.uint8]:
    """``(n, 16)`` uint8 rows in network byte order (C-contiguous)."""
    out = np.empty((len(hi), 2), dtype=">u8")
    out[:, 0] = hi
    out[:, 1] = lo
    return out.view(np.uint8).reshape(len(hi), 16)


def from_bytes(rows: NDArray[np.uint8]) -> tuple[U64, U64]:
    """``(hi, lo)`` of ``(n, 16)`` uint8 rows in network byte order (:func:`to_bytes` undone)."""
    words = np.ascontiguousarray(rows, dtype=np.uint8).reshape(-1, 16).view(">u8")
    return words[:, 0].astype(np.uint64), words[:, 1].astype(np.uint64)


def add(a_hi: U64, a_lo: U64, b_hi: U64, b_lo: U64) -> tuple[U64, U64]:
    """``a + b`` modulo ``2**128``."""
    lo = a_lo + b_lo
    hi = a_hi + b_hi + (lo < a_lo).astype(np.uint64)
    return hi, lo


def shift_left(values: U64, shifts: NDArray[np.uint8] | NDArray[np.uint64]) -> tuple[U64, U64]:
    """``values << shifts`` as 128-bit ``(hi, lo)``, per element (``0 <= shifts <= 128``).

    Bits shifted past bit 127 are lost. Shift amounts of 64 or more are never handed to the
    uint64 shift itself (its result would depend on the CPU).
    """
    s = np.asarray(shifts).astype(np.uint64)
    zero = np.uint64(0)
    low = s < _SIXTY_FOUR
    carries = low & (s > zero)
    high = ~low & (s < np.uint64(128))
    lo = np.where(low, values << np.where(low, s, zero), zero)
    carry = np.where(carries, values >> np.where(carries, _SIXTY_FOUR - s, zero), zero)
    hi = carry | np.where(high, values << np.where(high, s - _SIXTY_FOUR, zero), zero)
    return hi.astype(np.uint64), lo.astype(np.uint64)


def less(a_hi: U64, a_lo: U64, b_hi: U64, b_lo: U64) -> NDArray[np.bool_]:
    """``a < b`` elementwise."""
    result: NDArray[np.bool_] = (a_hi < b_hi) | ((a_hi == b_hi) & (a_lo < b_lo))
    return result


def searchsorted(
    sorted_hi: U64, sorted_lo: U64, q_hi: U64, q_lo: U64, side: str = "left"
) -> NDArray[np.int64]:
    """Like :func:`numpy.searchsorted` for 128-bit values sorted ascending.

    The high words narrow each query to its run of equal high words with numpy's own search;
    a vectorised bisection on the low words finishes inside the runs (usually one element).
    """
    left = np.searchsorted(sorted_hi, q_hi, side="left").astype(np.int64)
    right = np.searchsorted(sorted_hi, q_hi, side="right").astype(np.int64)
    active = np.flatnonzero(left < right)
    while active.size:
        a, b = left[active], right[active]
        mid = (a + b) >> 1
        probe = sorted_lo[mid]
        q = q_lo[active]
        go_right = probe < q if side == "left" else probe <= q
        left[active] = np.where(go_right, mid + 1, a)
        right[active] = np.where(go_right, b, mid)
        active = active[left[active] < right[active]]
    return left


def in_intervals(hi: U64, lo: U64, intervals: Sequence[tuple[int, int]]) -> NDArray[np.bool_]:
    """Which 128-bit values lie in a set of sorted disjoint ``[start, end)`` Python-int rows.

    Works a block of values at a time, so the temporaries stay small for a hitlist.
    """
    bounds = [b for row in intervals for b in row if b <= MASK64 << 64 | MASK64]
    out = np.zeros(hi.shape, dtype=np.bool_)
    if not bounds:
        return out
    b_hi, b_lo = from_ints(bounds)
    for start in range(0, len(hi), _BLOCK):
        part = slice(start, start + _BLOCK)
        # Inside iff an odd number of bounds are <= the value (a bound 2**128 is never <=).
        count = searchsorted(b_hi, b_lo, hi[part], lo[part], side="right")
        out[part] = (count & 1).astype(np.bool_)
    return out


def sort_unique(hi: U64, lo: U64) -> tuple[U64, U64]:
    """The distinct values, in ascending order.

    Sorts on the high words (numpy's fast unstable sort), then re-sorts only the runs of equal
    high words by their low words, so the common case (distinct /64s) costs one argsort; when
    most values share their high word with another, two sorts of the whole do it.
    """
    if len(hi) == 0:
        return hi.copy(), lo.copy()
    order = np.argsort(hi)
    s_hi = hi[order]
    same = s_hi[1:] == s_hi[:-1]
    if same.any():
        in_run = np.zeros(len(hi), dtype=np.bool_)
        in_run[1:] |= same
        in_run[:-1] |= same
        rows = np.flatnonzero(in_run)
        if 4 * len(rows) < len(hi):
            sub = order[rows]
            order[rows] = sub[np.lexsort((lo[sub], s_hi[rows]))]
        else:
            order = np.argsort(lo)
            order = order[np.argsort(hi[order], kind="stable")]
            s_hi = hi[order]
        del rows, in_run
    s_lo = lo[order]
    del order
    keep = np.ones(len(hi), dtype=np.bool_)
    keep[1:] = (s_hi[1:] != s_hi[:-1]) | (s_lo[1:] != s_lo[:-1])
    if keep.all():
        return s_hi, s_lo
    return s_hi[keep], s_lo[keep]


def bit_masks(bits: NDArray[np.uint8] | NDArray[np.uint64]) -> tuple[U64, U64]:
    """``2**bits - 1`` as 128-bit ``(hi, lo)``, per element (``0 <= bits <= 128``)."""
    b = np.asarray(bits).astype(np.int64)
    lo_bits = np.minimum(b, 64).astype(np.uint64)
    hi_bits = np.maximum(b - 64, 0).astype(np.uint64)
    full = np.uint64(MASK64)
    lo = np.where(lo_bits >= 64, full, (_ONE << np.minimum(lo_bits, 63)) - _ONE)
    hi = np.where(hi_bits >= 64, full, (_ONE << np.minimum(hi_bits, 63)) - _ONE)
    return hi.astype(np.uint64), lo.astype(np.uint64)
