"""IPv6 addresses as dense uint32 ids, so the IPv4 analyses run on IPv6 replies unchanged.

The analyses are unions, intersections and differences of roaring bitmaps of uint32. An IPv6
address does not fit, but a scan's IPv6 responders are few next to 2**32, so each reduction
keeps an :class:`AddressBook6` (its distinct addresses, in one fixed total order) and puts the
*index* of an address in the book into the bitmaps. Two books merge into one whose order
contains both, so the ids of each map to the merged ids by a monotone table and bitmaps are
renumbered without sorting.

The order is (key, hi, lo), with ``key`` a 64-bit mix of the address: sorting 64-bit keys is
about ten times faster than sorting 128-bit values (``np.lexsort``), and sorting the key's top
40 bits packed with the input's position faster still. Addresses that share the bits sorted on
are then put in (key, hi, lo) order by an exact sort of just their runs, so the books are exact
whatever the keys.

Addresses are ``(n, 2)`` arrays of native uint64 words (hi, lo): the one random-access step,
putting the addresses in sorted order, then fetches 16 contiguous bytes per address, and the
work is bound by memory, not by arithmetic. Prefixes (``/48``, ``/64``) come from ``hi`` alone:
the analyses' blocks for IPv6.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = [
    "MAX_IDS",
    "AddressBook6",
    "Numbering",
    "merge_books",
    "number128",
    "unique128",
    "words6",
]

U64 = npt.NDArray[np.uint64]
#: IPv6 addresses as an ``(n, 2)`` array of native uint64 (high word, low word).
Words = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
#: The most addresses a book can number (ids are uint32, as roaring's values).
MAX_IDS = 1 << 32
_MIX_1 = np.uint64(0x9E3779B97F4A7C15)
_MIX_2 = np.uint64(0xBF58476D1CE4E5B9)


def words6(column: pa.Array[Any] | pa.ChunkedArray[Any]) -> Words:
    """A ``binary(16)`` column (network byte order, no nulls) as ``(n, 2)`` native words."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.type != pa.binary(16):
        column = column.cast(pa.binary(16))
    count = len(column)
    data = column.buffers()[1]
    if data is None or count == 0:
        return np.zeros((0, 2), dtype=np.uint64)
    words = np.frombuffer(memoryview(data), dtype=">u8", count=2 * count, offset=column.offset * 16)
    return words.reshape(count, 2).astype(np.uint64)


def _mix(words: Words) -> U64:
    """A 64-bit key spreading addresses evenly (splitmix64's finalizer over hi and lo)."""
    key = np.multiply(words[:, 0], _MIX_1)  # in place from here: each pass over the rows costs
    key += words[:, 1]
    shifted = np.right_shift(key, np.uint64(31))
    key ^= shifted
    key *= _MIX_2
    np.right_shift(key, np.uint64(29), out=shifted)
    key ^= shifted
    return key


class Numbering(NamedTuple):
    """Inputs numbered by a book: ``order`` sorts the inputs into book order and
    ``sorted_ids[i]`` is the id of input ``order[i]`` (so ``sorted_ids`` is non-decreasing)."""

    book: AddressBook6
    order: I64
    sorted_ids: npt.NDArray[Any]  # uint32 (int64 for 2**32 inputs or more)

    def ids(self) -> I64:
        """Each input's id, in input order."""
        inverse = np.empty(self.order.size, dtype=np.int64)
        inverse[self.order] = self.sorted_ids
        return inverse


def _changes(sorted_words: Words, out: npt.NDArray[np.bool_]) -> None:
    """``out[i]``: whether sorted address ``i + 1`` differs from address ``i``."""
    np.not_equal(sorted_words[1:, 0], sorted_words[:-1, 0], out=out)
    out |= sorted_words[1:, 1] != sorted_words[:-1, 1]


def _number_in_order(
    order: I64, key: U64, words: Words, same_run: Callable[[I64], npt.NDArray[np.bool_]]
) -> Numbering:
    """Number the inputs taken in ``order``.

    ``order`` sorts the inputs by a coarse key; ``same_run(i)`` says whether sorted positions
    ``i`` and ``i + 1`` have the same coarse key. The runs of equal coarse key that hold more
    than one address (rare) are sorted exactly, by (key, hi, lo), which makes ``order`` the
    book order. Gathering the addresses in order is the cost (memory at random).
    """
    sorted_words = np.take(words, order, axis=0)  # fancy indexing of rows is 5x slower
    first = np.empty(order.size, dtype=bool)
    first[:1] = True
    _changes(sorted_words, first[1:])
    changes = np.flatnonzero(first[1:])
    mixed = changes[same_run(changes)]
    if mixed.size:  # addresses interleaved in a run of one coarse key
        boundary = ~same_run(np.arange(order.size - 1))
        run_id = np.concatenate(([0], np.cumsum(boundary)))
        inside = np.flatnonzero(np.isin(run_id, run_id[mixed]))
        rows = order[inside]
        part = np.take(sorted_words, inside, axis=0)
        exact = np.lexsort((part[:, 1], part[:, 0], key[rows], run_id[inside]))
        order[inside] = rows[exact]
        sorted_words[inside] = np.take(part, exact, axis=0)
        _changes(sorted_words, first[1:])
    id_type = np.uint32 if order.size < MAX_IDS else np.int64
    sorted_ids: npt.NDArray[Any] = np.cumsum(first, dtype=id_type)
    np.subtract(sorted_ids, 1, out=sorted_ids, casting="unsafe")
    distinct = int(sorted_ids[-1]) + 1 if sorted_ids.size else 0
    if distinct > MAX_IDS:
        raise OverflowError(f"{distinct} distinct IPv6 addresses: more than 2**32 ids")
    book = AddressBook6(key[order[first]], np.compress(first, sorted_words, axis=0))
    return Numbering(book, order, sorted_ids)


#: Inputs up to this many are sorted as (the key's top bits, position) packed in one uint64:
#: ``np.sort`` of that is about four times faster than ``np.argsort`` of the keys.
_PACKED_POSITIONS = 1 << 24
_POSITION_MASK = np.uint64(_PACKED_POSITIONS - 1)


def number128(words: Words) -> Numbering:
    """Number the addresses ``words`` by the book of the distinct ones."""
    key = _mix(words)
    if key.size > _PACKED_POSITIONS:
        order = np.argsort(key)
        sorted_key = key[order]
        return _number_in_order(order, key, words, lambda i: sorted_key[i] == sorted_key[i + 1])
    packed = np.bitwise_and(key, ~_POSITION_MASK)
    packed |= np.arange(key.size, dtype=np.uint64)
    packed.sort()
    order = np.bitwise_and(packed, _POSITION_MASK).view(np.int64)
    return _number_in_order(
        order, key, words, lambda i: (packed[i] ^ packed[i + 1]) <= _POSITION_MASK
    )


def unique128(words: Words) -> tuple[AddressBook6, I64]:
    """The book of the distinct addresses among ``words``, and each input's id in it
    (``book.words[ids] == words``)."""
    numbering = number128(words)
    return numbering.book, numbering.ids()


@dataclass
class AddressBook6:
    """Distinct IPv6 addresses (``words``, ``(n, 2)``) in book order, with their keys; an
    address's id is its index."""

    key: U64
    words: Words

    @classmethod
    def empty(cls) -> AddressBook6:
        """A book with no address."""
        return cls(np.zeros(0, dtype=np.uint64), np.zeros((0, 2), dtype=np.uint64))

    def __len__(self) -> int:
        return int(self.key.size)

    @property
    def hi(self) -> U64:
        """The high words (a view)."""
        return self.words[:, 0]

    @property
    def lo(self) -> U64:
        """The low words (a view)."""
        return self.words[:, 1]

    def addresses(self, ids: npt.ArrayLike) -> list[str]:
        """RFC 5952 text of the addresses with these ``ids`` (for reports and tests)."""
        picked = np.take(self.words, np.asarray(ids, dtype=np.int64), axis=0).tolist()
        return [str(ipaddress.IPv6Address((h << 64) | low)) for h, low in picked]

    def prefixes(self, length: int) -> tuple[U64, npt.NDArray[np.uint32]]:
        """The distinct ``/length`` prefixes (1..64) of the book, sorted, as their top
        ``length`` bits; and each id's prefix index into them."""
        if not 1 <= length <= 64:
            raise ValueError(f"IPv6 prefix length {length}: must be between 1 and 64")
        values = self.hi >> np.uint64(64 - length)
        distinct, index = np.unique(values, return_inverse=True)
        return distinct, index.astype(np.uint32).reshape(-1)


def merge_books(books: Sequence[AddressBook6]) -> tuple[AddressBook6, list[I64]]:
    """The book holding all of ``books``, and the tables from each one's ids to its ids.

    The tables are increasing (the books share one order), so sorted ids stay sorted when
    renumbered. The books are sorted runs, which a stable sort (timsort) merges in linear time.
    """
    if len(books) == 1:
        return books[0], [np.arange(len(books[0]), dtype=np.int64)]
    key = np.concatenate([b.key for b in books])
    words = np.concatenate([b.words for b in books])
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    numbering = _number_in_order(order, key, words, lambda i: sorted_key[i] == sorted_key[i + 1])
    merged, inverse = numbering.book, numbering.ids()
    bounds = np.cumsum([0, *(len(b) for b in books)])
    return merged, [inverse[a:b] for a, b in itertools.pairwise(bounds.tolist())]
