"""IPv6 address sets as sorted 128-bit interval bounds: build, combine, mask, cover, list.

Representation. A :class:`Set6` is one strictly increasing array of 128-bit *bounds* (two uint64
columns, ``hi`` and ``lo``): an address is in the set when an odd number of bounds are at or
below it. Read in pairs, the bounds are half-open intervals ``[start, stop)``; an odd count means
the last interval runs to the end of the space (its stop, 2**128, fits no uint64 and is left
out). Why intervals and not an array of addresses: CIDR input (a /32 holds 2**96 addresses),
``mask`` and the minimal CIDR cover are natural on intervals, and a hitlist of isolated
addresses costs two bounds each (32 bytes) with no special case. Why one toggle array: every
boolean operation of two sets is one merge of two sorted arrays. For each bound of either set,
two binary searches in the other set give how many of its bounds lie below and at it, so the
membership in both sets just before and just after that point; the bounds where the combined
membership flips are the result, already sorted and canonical. No Python object per address,
no 128-bit running maximum, no sort (numpy has no 128-bit integers; see
:mod:`liveness.targets.wide`).

Canonical form (sorted, disjoint, non-touching) makes equal sets equal arrays, so the file
format and ``==`` are exact. Counts are exact Python ints, computed from 32-bit quarters of the
interval sizes (a few sums per set, not per address).
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from liveness.analysis.ipset4 import BadEntry
from liveness.errors import InputError
from liveness.output.addresses import format_ipv6
from liveness.targets import wide

__all__ = [
    "LIST_LIMIT",
    "MASK_LIMIT",
    "Set6",
    "address_chunks",
    "cidr_cover",
    "difference",
    "format_addresses",
    "format_cidrs",
    "from_addresses",
    "from_intervals",
    "from_packed",
    "from_prefixes",
    "intersect",
    "mask",
    "parse_entries",
    "parse_texts",
    "symdiff",
    "to_packed",
    "union",
]

U64 = npt.NDArray[np.uint64]
Bools = npt.NDArray[np.bool_]
_ZERO = np.uint64(0)
_ONE = np.uint64(1)
_ALL = np.uint64(wide.MASK64)
MASK_LIMIT = 1 << 26
"""Most addresses ``mask`` may produce (each block base is a separate address)."""
LIST_LIMIT = 1 << 32
"""Most IPv6 addresses ``list`` prints one by one (beyond that, ``--cidr``)."""
_CHUNK = 1 << 20
_PARSE_ROWS = 1 << 18


def _empty() -> U64:
    return np.zeros(0, dtype=np.uint64)


Words = npt.NDArray[np.uint8]
"""``(n, 16)`` uint8 rows: 128-bit values as 16 network-order bytes (numpy never reorders
raw bytes, where it would turn a big-endian ``>u8`` array into a native one)."""


@dataclass(frozen=True, eq=False)
class Set6:
    """IPv6 addresses as canonical interval bounds (see the module docstring).

    ``words`` holds the bounds as 16 network-order bytes a row, which is also how the file
    format stores them and the key the merges compare; ``hi`` and ``lo`` are native copies of
    the two halves for arithmetic.
    """

    words: Words

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Set6):
            return NotImplemented
        return bool(np.array_equal(self.words, other.words))

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        return len(self.words) > 0

    def __len__(self) -> int:
        """The number of bounds (not of addresses: see :attr:`count`)."""
        return len(self.words)

    @functools.cached_property
    def hi(self) -> U64:
        return self.words.view(">u8")[:, 0].astype(np.uint64)

    @functools.cached_property
    def lo(self) -> U64:
        return self.words.view(">u8")[:, 1].astype(np.uint64)

    @property
    def open_ended(self) -> bool:
        """Whether the last interval runs to the top of the space (an odd number of bounds)."""
        return len(self.words) % 2 == 1

    @property
    def count(self) -> int:
        """The exact number of addresses (a Python int: up to 2**128)."""
        n = len(self.words) // 2
        hi, lo = self.hi, self.lo
        d_hi, d_lo = _sub(
            hi[1 : 2 * n : 2], lo[1 : 2 * n : 2], hi[0 : 2 * n : 2], lo[0 : 2 * n : 2]
        )
        total = _exact_sum(d_lo) + (_exact_sum(d_hi) << 64)
        if self.open_ended:
            total += (1 << 128) - ((int(hi[-1]) << 64) | int(lo[-1]))
        return total

    def intervals(self) -> tuple[U64, U64, U64, U64]:
        """``(first_hi, first_lo, last_hi, last_lo)``: the intervals with inclusive ends."""
        hi, lo = self.hi, self.lo
        first_hi, first_lo = hi[0::2], lo[0::2]
        stop_hi, stop_lo = hi[1::2], lo[1::2]
        last_hi, last_lo = _sub(stop_hi, stop_lo, np.zeros_like(stop_hi), np.ones_like(stop_lo))
        if self.open_ended:
            last_hi = np.append(last_hi, _ALL)
            last_lo = np.append(last_lo, _ALL)
        return first_hi, first_lo, last_hi, last_lo


def _make(hi: U64, lo: U64) -> Set6:
    return Set6(wide.to_bytes(hi, lo))


EMPTY = Set6(np.zeros((0, 16), dtype=np.uint8))


def _exact_sum(values: U64) -> int:
    """The sum of uint64 values as a Python int (summed by 32-bit halves: no overflow)."""
    low = int(np.sum(values & np.uint64(0xFFFFFFFF), dtype=np.uint64))
    high = int(np.sum(values >> np.uint64(32), dtype=np.uint64))
    return low + (high << 32)


def _sub(a_hi: U64, a_lo: U64, b_hi: U64, b_lo: U64) -> tuple[U64, U64]:
    """``a - b`` modulo 2**128."""
    lo = a_lo - b_lo
    hi = a_hi - b_hi - (a_lo < b_lo).astype(np.uint64)
    return hi, lo


def _add1(hi: U64, lo: U64) -> tuple[U64, U64, Bools]:
    """``x + 1`` and where it wrapped past 2**128 - 1."""
    lo1 = lo + _ONE
    carry = lo1 == _ZERO
    hi1 = hi + carry.astype(np.uint64)
    return hi1, lo1, carry & (hi1 == _ZERO)


def _shift_right(hi: U64, lo: U64, bits: int) -> tuple[U64, U64]:
    """``x >> bits`` for one shift ``0 <= bits <= 128``."""
    if bits == 0:
        return hi.copy(), lo.copy()
    if bits >= 128:
        return np.zeros_like(hi), np.zeros_like(lo)
    if bits >= 64:
        return np.zeros_like(hi), hi >> np.uint64(bits - 64)
    s = np.uint64(bits)
    return hi >> s, (lo >> s) | (hi << np.uint64(64 - bits))


def _shift_left(hi: U64, lo: U64, bits: int) -> tuple[U64, U64]:
    """``x << bits`` modulo 2**128 for one shift ``0 <= bits <= 128``."""
    if bits == 0:
        return hi.copy(), lo.copy()
    if bits >= 128:
        return np.zeros_like(hi), np.zeros_like(lo)
    if bits >= 64:
        return lo << np.uint64(bits - 64), np.zeros_like(lo)
    s = np.uint64(bits)
    return (hi << s) | (lo >> np.uint64(64 - bits)), lo << s


def _bit_length64(values: U64) -> npt.NDArray[np.int64]:
    """Bits needed for each uint64 (0 for 0), exactly: frexp, corrected where rounding went up."""
    length = np.minimum(np.frexp(values.astype(np.float64))[1].astype(np.int64), 64)
    shift = np.maximum(length - 1, 0).astype(np.uint64)
    length -= ((length > 0) & ((values >> shift) == _ZERO)).astype(np.int64)
    return length


def _trailing_zeros128(hi: U64, lo: U64) -> npt.NDArray[np.int64]:
    """Trailing zero bits of each 128-bit value (128 for 0)."""

    def ctz(v: U64) -> npt.NDArray[np.int64]:
        return _bit_length64(v & (~v + _ONE)) - 1

    return np.where(lo != _ZERO, ctz(lo), np.where(hi != _ZERO, 64 + ctz(hi), 128))


def _bounds_of_sorted(hi: U64, lo: U64) -> Set6:
    """The set of sorted distinct addresses: runs of consecutive ones become one interval."""
    if len(hi) == 0:
        return EMPTY
    next_hi, next_lo, _ = _add1(hi[:-1], lo[:-1])
    breaks = (hi[1:] != next_hi) | (lo[1:] != next_lo)
    del next_hi, next_lo
    if breaks.all():
        start_hi, start_lo, last_hi, last_lo = hi, lo, hi, lo
    else:
        starts = np.flatnonzero(np.concatenate(([True], breaks)))
        lasts = np.flatnonzero(np.concatenate((breaks, [True])))
        start_hi, start_lo, last_hi, last_lo = hi[starts], lo[starts], hi[lasts], lo[lasts]
    stop_hi, stop_lo, wrapped = _add1(last_hi, last_lo)
    return _interleave(start_hi, start_lo, stop_hi, stop_lo, bool(wrapped[-1]))


def _interleave(start_hi: U64, start_lo: U64, stop_hi: U64, stop_lo: U64, open_end: bool) -> Set6:
    n = len(start_hi)
    hi = np.empty(2 * n, dtype=np.uint64)
    lo = np.empty(2 * n, dtype=np.uint64)
    hi[0::2], hi[1::2], lo[0::2], lo[1::2] = start_hi, stop_hi, start_lo, stop_lo
    if open_end:  # the stop 2**128 is not stored
        hi, lo = hi[:-1], lo[:-1]
    return _make(hi, lo)


def from_addresses(hi: npt.ArrayLike, lo: npt.ArrayLike) -> Set6:
    """A set from 128-bit addresses as high and low uint64 words (any order, duplicates ok)."""
    s_hi, s_lo = wide.sort_unique(np.asarray(hi, dtype=np.uint64), np.asarray(lo, dtype=np.uint64))
    return _bounds_of_sorted(s_hi, s_lo)


def from_packed(packed: npt.NDArray[np.uint8] | bytes) -> Set6:
    """A set from 16-byte addresses in network byte order, back to back."""
    words = np.frombuffer(packed, dtype=">u8").reshape(-1, 2)
    return from_addresses(words[:, 0].astype(np.uint64), words[:, 1].astype(np.uint64))


def to_packed(hi: U64, lo: U64) -> bytes:
    """16-byte network-order addresses, back to back."""
    return wide.to_bytes(hi, lo).tobytes()


def to_rows(hi: U64, lo: U64) -> Words:
    """``(n, 16)`` network-order rows."""
    return wide.to_bytes(hi, lo)


def _increasing(rows: Words) -> bool:
    keys = np.ascontiguousarray(rows).view("S16").reshape(len(rows))
    return bool((keys[1:] > keys[:-1]).all())


def from_rows(singles: npt.NDArray[np.uint8], ranges: npt.NDArray[np.uint8]) -> Set6:
    """A set from the file format's IPv6 sections: 16-byte addresses, and 32-byte rows of an
    inclusive range's first and last address (all network order, see docs/ipset-format.md).

    Canonical sections (sorted, disjoint, not touching) are taken as they are; anything else
    is sorted and merged. A range whose last address is below its first raises ValueError.
    """
    rows = singles.reshape(-1, 16)
    hi, lo = wide.from_bytes(rows)
    points = _bounds_of_sorted(hi, lo) if _increasing(rows) else from_addresses(hi, lo)
    pairs = ranges.reshape(-1, 32)
    first_hi, first_lo = wide.from_bytes(pairs[:, :16])
    last_hi, last_lo = wide.from_bytes(pairs[:, 16:])
    backwards = np.flatnonzero(wide.less(last_hi, last_lo, first_hi, first_lo))
    if backwards.size:
        raise ValueError(f"range {int(backwards[0]) + 1} ends before it starts")
    stop_hi, stop_lo, wrapped = _add1(last_hi, last_lo)
    blocks = _interleave(first_hi, first_lo, stop_hi, stop_lo, bool(len(wrapped) and wrapped[-1]))
    if wrapped[:-1].any() or not _increasing(blocks.words):
        blocks = from_intervals(first_hi, first_lo, last_hi, last_lo)
    return union(points, blocks)


def from_intervals(first_hi: U64, first_lo: U64, last_hi: U64, last_lo: U64) -> Set6:
    """A set from inclusive ``[first, last]`` intervals in any order, overlapping or not.

    A sweep over the sorted bounds: +1 at each first, -1 just after each last; the set is where
    the running count is positive, read after the last event at each distinct position.
    """
    n = len(first_hi)
    if n == 0:
        return EMPTY
    stop_hi, stop_lo, wrapped = _add1(last_hi, last_lo)
    keep = ~wrapped  # a stop at 2**128 never closes
    pos_hi = np.concatenate((first_hi, stop_hi[keep]))
    pos_lo = np.concatenate((first_lo, stop_lo[keep]))
    delta = np.concatenate((np.ones(n, np.int64), -np.ones(int(keep.sum()), np.int64)))
    order = np.lexsort((pos_lo, pos_hi))
    pos_hi, pos_lo, delta = pos_hi[order], pos_lo[order], delta[order]
    running = np.cumsum(delta)
    last_here = np.ones(len(pos_hi), dtype=bool)
    last_here[:-1] = (pos_hi[1:] != pos_hi[:-1]) | (pos_lo[1:] != pos_lo[:-1])
    pos_hi, pos_lo, inside = pos_hi[last_here], pos_lo[last_here], running[last_here] > 0
    before = np.concatenate(([False], inside[:-1]))
    flips = inside != before
    return _make(pos_hi[flips], pos_lo[flips])


def from_prefixes(hi: U64, lo: U64, lengths: npt.NDArray[np.int64]) -> Set6:
    """A set from CIDR blocks (host bits are cleared: the block of the address)."""
    single = lengths == 128
    result = from_addresses(hi[single], lo[single])
    if single.all():
        return result
    bits = (128 - lengths[~single]).astype(np.uint64)
    size_hi, size_lo = wide.bit_masks(bits)  # 2**bits - 1
    first_hi, first_lo = hi[~single] & ~size_hi, lo[~single] & ~size_lo
    blocks = from_intervals(first_hi, first_lo, first_hi | size_hi, first_lo | size_lo)
    return union(result, blocks)


Rule = Callable[[Bools, Bools], Bools]


def _combine(a: Set6, b: Set6, rule: Rule) -> Set6:
    """The set where ``rule(in a, in b)`` holds.

    Both bound arrays are sorted, so a stable argsort of their concatenation (as 16-byte
    big-endian strings, which numpy orders as the numbers) is one linear merge: timsort finds
    the two runs. Running parities along the merge say, after each bound, whether the point is
    in ``a`` and in ``b``; read after the last bound at each distinct position (a value in both
    sets), the bounds where ``rule`` flips are the result.
    """
    keys = np.concatenate((a.words, b.words)).view("S16").reshape(len(a.words) + len(b.words))
    order = np.argsort(keys, kind="stable")
    from_b = order >= len(a.words)
    in_b = np.bitwise_xor.accumulate(from_b.view(np.uint8)).view(bool)
    in_a = np.bitwise_xor.accumulate((~from_b).view(np.uint8)).view(bool)
    inside = rule(in_a, in_b)
    del from_b, in_a, in_b
    ordered = keys[order]  # (gathers of whole 16-byte strings are the fast ones)
    del keys, order
    native = ordered.view(np.uint64).reshape(len(ordered), 2)  # equality ignores byte order
    last = np.ones(len(ordered), dtype=bool)
    last[:-1] = (native[1:, 0] != native[:-1, 0]) | (native[1:, 1] != native[:-1, 1])
    del native
    positions = np.flatnonzero(last)
    inside = inside[positions]
    flips = inside != np.concatenate(([False], inside[:-1]))
    chosen = ordered[positions[flips]]
    return Set6(chosen.view(np.uint8).reshape(len(chosen), 16))


def _or(x: Bools, y: Bools) -> Bools:
    return x | y


def _and(x: Bools, y: Bools) -> Bools:
    return x & y


def _and_not(x: Bools, y: Bools) -> Bools:
    return x & ~y


def _xor(x: Bools, y: Bools) -> Bools:
    return x ^ y


def union(*sets: Set6) -> Set6:
    """Addresses in any of the sets (merged pairwise, smallest first)."""
    pending = sorted((s for s in sets if s), key=len)
    while len(pending) > 1:
        pending = sorted([_combine(pending[0], pending[1], _or), *pending[2:]],
                         key=len)  # fmt: skip
    return pending[0] if pending else EMPTY


def intersect(first: Set6, *others: Set6) -> Set6:
    """Addresses in every set."""
    return functools.reduce(lambda x, y: _combine(x, y, _and), others, first)


def difference(first: Set6, *others: Set6) -> Set6:
    """Addresses of the first set in none of the others."""
    return _combine(first, union(*others), _and_not) if others else first


def symdiff(first: Set6, *others: Set6) -> Set6:
    """Addresses in an odd number of the sets."""
    return functools.reduce(lambda x, y: _combine(x, y, _xor), others, first)


def mask(addresses: Set6, prefix_length: int) -> Set6:
    """Each address replaced by the base of its ``/prefix_length`` block.

    Each interval gives the bases of the blocks it touches; a result of more than
    :data:`MASK_LIMIT` separate addresses (``mask 64`` of a /32) is refused.
    """
    if not 0 <= prefix_length <= 128:
        raise InputError(f"IPv6 prefix length must be 0..128, got {prefix_length}")
    if prefix_length == 128 or not addresses:
        return addresses
    bits = 128 - prefix_length
    first_hi, first_lo, last_hi, last_lo = addresses.intervals()
    lo_block_hi, lo_block_lo = _shift_right(first_hi, first_lo, bits)
    hi_block_hi, hi_block_lo = _shift_right(last_hi, last_lo, bits)
    span_hi, span_lo = _sub(hi_block_hi, hi_block_lo, lo_block_hi, lo_block_lo)  # blocks - 1
    if (span_hi != _ZERO).any() or _exact_sum(span_lo) + len(span_lo) > MASK_LIMIT:
        total = _exact_sum(span_lo) + (_exact_sum(span_hi) << 64) + len(span_lo)
        raise InputError(
            f"mask {prefix_length}: the IPv6 result would hold {total} separate addresses "
            f"(at most {MASK_LIMIT}); mask the IPv6 part with a shorter prefix"
        )
    counts = span_lo.astype(np.int64) + 1
    if (counts == 1).all():
        block_hi, block_lo = lo_block_hi, lo_block_lo
    else:
        which = np.repeat(np.arange(len(counts)), counts)
        starts = np.cumsum(counts) - counts
        offsets = (np.arange(len(which), dtype=np.int64) - starts[which]).astype(np.uint64)
        block_hi, block_lo = wide.add(lo_block_hi[which], lo_block_lo[which],
                                      np.zeros_like(offsets), offsets)  # fmt: skip
    base_hi, base_lo = _shift_left(block_hi, block_lo, bits)
    distinct = np.ones(len(base_hi), dtype=bool)  # sorted: duplicates are neighbours
    distinct[1:] = (base_hi[1:] != base_hi[:-1]) | (base_lo[1:] != base_lo[:-1])
    return _bounds_of_sorted(base_hi[distinct], base_lo[distinct])


def cidr_cover(addresses: Set6) -> tuple[U64, U64, npt.NDArray[np.int64]]:
    """The fewest CIDR blocks whose union is the set: ``(base hi, base lo, prefix lengths)``.

    Each interval is cut greedily into the largest aligned power-of-two blocks, every interval
    at once per step (at most 256 steps), then the blocks are put back in address order.
    """
    s_hi, s_lo, l_hi, l_lo = addresses.intervals()
    run = np.arange(len(s_hi), dtype=np.int64)
    blocks = np.zeros(len(s_hi), dtype=np.int64)
    parts: list[tuple[U64, U64, npt.NDArray[np.int64], npt.NDArray[np.int64], int]] = []
    step = 0
    while len(run):
        m_hi, m_lo = _sub(l_hi, l_lo, s_hi, s_lo)  # size - 1
        n_hi, n_lo, full = _add1(m_hi, m_lo)
        fits = np.where(
            full, 128, np.where(n_hi != _ZERO, 63 + _bit_length64(n_hi), _bit_length64(n_lo) - 1)
        )
        size = np.minimum(fits, _trailing_zeros128(s_hi, s_lo))
        parts.append((s_hi, s_lo, 128 - size, run, step))
        blocks[run] += 1
        step_hi, step_lo = wide.shift_left(np.ones(len(size), np.uint64), size.astype(np.uint64))
        next_hi, next_lo = wide.add(s_hi, s_lo, step_hi, step_lo)
        wrapped = (size == 128) | wide.less(next_hi, next_lo, s_hi, s_lo)
        left = ~wrapped & ~wide.less(l_hi, l_lo, next_hi, next_lo)
        s_hi, s_lo, l_hi, l_lo, run = (
            next_hi[left],
            next_lo[left],
            l_hi[left],
            l_lo[left],
            run[left],
        )
        step += 1
    total = int(blocks.sum())
    out_hi = np.empty(total, dtype=np.uint64)
    out_lo = np.empty(total, dtype=np.uint64)
    out_len = np.empty(total, dtype=np.int64)
    offsets = np.cumsum(blocks) - blocks
    for p_hi, p_lo, p_len, p_run, p_step in parts:
        where = offsets[p_run] + p_step
        out_hi[where], out_lo[where], out_len[where] = p_hi, p_lo, p_len
    return out_hi, out_lo, out_len


def address_chunks(addresses: Set6, limit: int = LIST_LIMIT) -> Iterator[tuple[U64, U64]]:
    """The addresses in ascending order, at most 2**20 at a time; refused beyond ``limit``."""
    count = addresses.count
    if count > limit:
        raise InputError(
            f"the set holds {count} IPv6 addresses, more than {limit} to list one by one; "
            "use --cidr"
        )
    s_hi, s_lo, l_hi, l_lo = addresses.intervals()
    sizes = (_sub(l_hi, l_lo, s_hi, s_lo)[1] + _ONE).astype(np.int64)  # each fits: count small
    ends = np.cumsum(sizes)
    starts = ends - sizes
    for first in range(0, count, _CHUNK):
        index = np.arange(first, min(first + _CHUNK, count), dtype=np.int64)
        which = np.searchsorted(ends, index, side="right")
        offsets = (index - starts[which]).astype(np.uint64)
        yield wide.add(s_hi[which], s_lo[which], np.zeros_like(offsets), offsets)


def format_addresses(hi: U64, lo: U64) -> list[str]:
    """RFC 5952 text of addresses (as :mod:`ipaddress` prints them)."""
    packed = pa.py_buffer(to_packed(hi, lo))
    array = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(hi), [None, packed])
    return [str(text) for text in format_ipv6(array).to_pylist()]


def format_cidrs(hi: U64, lo: U64, lengths: npt.NDArray[np.int64]) -> list[str]:
    """``address/length`` strings for a CIDR cover."""
    texts = format_addresses(hi, lo)
    return [f"{t}/{n}" for t, n in zip(texts, lengths.tolist(), strict=True)]


# Text parsing: the C library's inet_pton over a batch of strings (one ``map``, no Python per
# address beyond the call), which measured three times faster than a numpy column-by-column
# parser of the plain forms; the rare batch holding a bad text is parsed again item by item.
_pton6 = functools.partial(socket.inet_pton, socket.AF_INET6)
_PTON_ERRORS = (OSError, ValueError, TypeError, UnicodeEncodeError)


def _packed_or_zero(text: object) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return _pton6(text)
    except _PTON_ERRORS:
        return None


def parse_texts(texts: pa.Array[Any]) -> tuple[U64, U64, npt.NDArray[np.intp]]:
    """128-bit addresses of IPv6 texts (strings, no nulls): ``(hi, lo, bad)``.

    ``bad`` lists the positions of the texts that are not IPv6 addresses (sorted); their words
    are zero. Every form ``inet_pton`` takes is taken (compressed or not, embedded IPv4).
    """
    n = len(texts)
    words = np.zeros((n, 2), dtype=">u8")
    bad: list[int] = []
    for first in range(0, n, _PARSE_ROWS):
        part = texts.slice(first, min(_PARSE_ROWS, n - first)).to_pylist()
        try:
            packed = b"".join(map(_pton6, part))
        except _PTON_ERRORS:
            each = [_packed_or_zero(text) for text in part]
            bad.extend(first + row for row, value in enumerate(each) if value is None)
            packed = b"".join(value or bytes(16) for value in each)
        words[first : first + len(part)] = np.frombuffer(packed, dtype=">u8").reshape(-1, 2)
    native = words.astype(np.uint64)
    return (
        np.ascontiguousarray(native[:, 0]),
        np.ascontiguousarray(native[:, 1]),
        np.array(bad, dtype=np.intp),
    )


def parse_entries(entries: pa.Array[Any]) -> tuple[U64, U64, npt.NDArray[np.int64]]:
    """``(hi, lo, prefix lengths)`` of IPv6 text entries (an address or ``address/n``).

    The first bad entry raises :class:`~liveness.analysis.ipset4.BadEntry`.
    """
    problems: list[tuple[int, str]] = []
    if pc.any(pc.match_substring(entries, "/")).as_py():
        parts: Any = pc.extract_regex(entries, r"^(?P<address>[^/]*)(?:/(?P<length>[0-9]{1,3}))?$")
        matched = parts.is_valid().to_numpy(zero_copy_only=False)
        if not matched.all():
            problems.append((int(np.flatnonzero(~matched)[0]), "not an address or CIDR:"))
            parts = pc.fill_null(parts, pa.scalar({"address": "::", "length": ""}, parts.type))
        texts: Any = pc.struct_field(parts, "address")
        length_texts: Any = pc.struct_field(parts, "length")
        has_length = pc.not_equal(length_texts, pa.scalar("", pa.string()))
        lengths = pc.if_else(has_length, length_texts, "128").cast(pa.int64()).to_numpy()
        too_long = np.flatnonzero(lengths > 128)
        if too_long.size:
            problems.append((int(too_long[0]), "bad prefix length in"))
    else:
        texts = entries
        lengths = np.full(len(entries), 128, dtype=np.int64)
    hi, lo, bad = parse_texts(texts)
    if bad.size:
        problems.append((int(bad[0]), "not an address or CIDR:"))
    if problems:
        index, problem = min(problems)
        raise BadEntry(index, problem)
    return hi, lo, lengths
