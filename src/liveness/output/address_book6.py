"""IPv6 addresses as dense uint32 ids, so code built on uint32 addresses serves IPv6 too.

Roaring bitmaps of uint32 (or of ``probe << 32 | address`` in 64 bits) hold IPv4 addresses
exactly and cheaply; an IPv6 address does not fit, but the IPv6 addresses a scan hears from are
few next to 2**32. So an :class:`AddressBook6` keeps the distinct addresses and gives each an
*id*, its index in the book, to put in the bitmaps instead. Two users: the reply pipeline's
repeat marks (``probes.pipeline``), and the analyses' reductions, which, once the rows are ids,
are the IPv4 ones.

An address takes the next free id when the book first sees it, so ids never change: a book
shared by the files of one run (``analysis.summary.reduce_files``) numbers them all, and their
bitmaps union as they are. Two books merge by numbering one's addresses in the other, which
gives the table from its ids to the other's (:meth:`AddressBook6.number`).

The book finds addresses through a hash table (open addressing, linear probing, load at most
1/2) searched for a whole batch at once: one pass computes every row's slot, two gathers fetch
the slot's id and that id's 16 bytes, and only the rows that missed (a new address, or a slot
holding another one) go round again. A batch of known addresses costs two random memory reads
per row and no sort; the 128-bit compare keeps it exact whatever the hash.

Addresses are ``(n, 2)`` arrays of native uint64 words (hi, lo). Prefixes (``/48``, ``/64``)
come from ``hi`` alone: the analyses' blocks for IPv6.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = ["MAX_IDS", "AddressBook6", "words6"]

U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
#: IPv6 addresses as an ``(n, 2)`` array of native uint64 (high word, low word).
Words = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
#: The most addresses a book can number (ids are uint32, as roaring's values; the table keeps
#: id + 1, with 0 for an empty slot).
MAX_IDS = (1 << 32) - 1
_MIX_1 = np.uint64(0x9E3779B97F4A7C15)
_MIX_2 = np.uint64(0xBF58476D1CE4E5B9)


def words6(column: pa.Array[Any] | pa.ChunkedArray[Any], rows: I64 | None = None) -> Words:
    """A ``binary(16)`` column (network byte order, no nulls) as ``(n, 2)`` native words; only
    its ``rows`` if given (picked before the byte swap, which then costs only them)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.type != pa.binary(16):
        column = column.cast(pa.binary(16))
    count = len(column)
    data = column.buffers()[1]
    if data is None or count == 0:
        return np.zeros((0, 2), dtype=np.uint64)
    words = np.frombuffer(memoryview(data), dtype=">u8", count=2 * count, offset=column.offset * 16)
    words = words.reshape(count, 2)
    if rows is not None:
        words = np.take(words, rows, axis=0)
    return words.astype(np.uint64)


def _mix(words: Words) -> U64:
    """A 64-bit hash spreading addresses evenly (splitmix64's finalizer over hi and lo)."""
    key = np.multiply(words[:, 0], _MIX_1)  # in place from here: each pass over the rows costs
    key += words[:, 1]
    shifted = np.right_shift(key, np.uint64(31))
    key ^= shifted
    key *= _MIX_2
    np.right_shift(key, np.uint64(29), out=shifted)
    key ^= shifted
    return key


class AddressBook6:
    """Distinct IPv6 addresses; an address's id is its index, given when it was first added
    (a batch's new addresses take the next ids, in slot order).

    ``_rows[0]`` is a dummy row and address ``i`` is ``_rows[i + 1]``, so that a slot's value
    (id + 1, 0 for empty) indexes ``_rows`` directly: the gather needs no mask.
    """

    def __init__(self) -> None:
        self._rows: Words = np.zeros((1024, 2), dtype=np.uint64)
        self._count = 0
        self._bits = 10
        self._slots: U32 = np.zeros(1 << self._bits, dtype=np.uint32)

    @classmethod
    def empty(cls) -> AddressBook6:
        """A book with no address."""
        return cls()

    def __len__(self) -> int:
        return self._count

    @property
    def words(self) -> Words:
        """The addresses, by id (a view)."""
        return self._rows[1 : self._count + 1]

    @property
    def hi(self) -> U64:
        """The high words, by id (a view)."""
        return self.words[:, 0]

    @property
    def lo(self) -> U64:
        """The low words, by id (a view)."""
        return self.words[:, 1]

    def number(self, words: Words) -> U32:
        """The id of each address of ``words`` (``(n, 2)``), adding the new ones to the book."""
        count = words.shape[0]
        if count == 0:
            return np.zeros(0, dtype=np.uint32)
        self._reserve(count)
        slot = self._slot(_mix(words))
        handles = self._slots.take(slot)
        hit = self._holds(handles, words)
        hit &= handles != 0  # slot 0 of _rows is the dummy, not the address ::
        if not hit.all():
            missed = np.flatnonzero(~hit)
            self._resolve(words, missed, slot.take(missed), handles)
        handles -= np.uint32(1)
        return handles

    def _holds(self, handles: U32, words: Words) -> npt.NDArray[np.bool_]:
        """Whether each handle's address (id + 1) is the address of the same row of ``words``."""
        found = np.take(self._rows, handles, axis=0)
        same: npt.NDArray[np.bool_] = found[:, 0] == words[:, 0]
        same &= found[:, 1] == words[:, 1]
        return same

    def _resolve(self, words: Words, todo: I64, at: I64, handles: U32) -> None:
        """Find or add the rows ``todo``, which missed at their slots ``at`` (``handles`` holds
        what those slots hold): round by round, an empty slot takes one of the rows that
        reached it as a new address, and a slot holding another address sends the row on to
        the next slot."""
        mask = self._slots.size - 1
        held = handles.take(todo)
        while todo.size:
            empty = np.flatnonzero(held == 0)
            if empty.size:
                self._claim(words, todo.take(empty), at.take(empty))
                held[empty] = self._slots.take(at.take(empty))
            hit = self._holds(held, np.take(words, todo, axis=0))
            handles[todo[hit]] = held[hit]
            missed = ~hit
            todo, at = todo[missed], (at[missed] + 1) & mask
            held = self._slots.take(at)

    def _claim(self, words: Words, rows: I64, empty_slots: I64) -> None:
        """Give each empty slot one of the ``rows`` that reached it, as a new address. Every
        row writes its own mark to its slot; the rows whose mark stayed are the winners (one a
        slot, whichever the scatter kept), with no sort."""
        start = self._count + 1
        marks = np.arange(start, start + rows.size, dtype=np.uint32)
        self._slots[empty_slots] = marks
        won = np.flatnonzero(self._slots.take(empty_slots) == marks)
        stop = start + won.size
        self._rows[start:stop] = np.take(words, rows.take(won), axis=0)
        self._slots[empty_slots.take(won)] = np.arange(start, stop, dtype=np.uint32)
        self._count += won.size

    def _slot(self, key: U64) -> I64:
        """The home slot of each key: its top bits (the mix's best)."""
        return (key >> np.uint64(64 - self._bits)).astype(np.int64)

    def _reserve(self, more: int) -> None:
        """Room for ``more`` new addresses: rows, and a table at most half full (rebuilt from
        the rows when it doubles)."""
        need = self._count + more
        if need > MAX_IDS:
            raise OverflowError(f"up to {need} distinct IPv6 addresses: more than 2**32 - 1 ids")
        if need + 1 > self._rows.shape[0]:
            rows = np.zeros((max(need + 1, 2 * self._rows.shape[0]), 2), dtype=np.uint64)
            rows[: self._count + 1] = self._rows[: self._count + 1]
            self._rows = rows
        if 2 * need <= self._slots.size:
            return
        while (1 << self._bits) < 2 * need:
            self._bits += 1
        self._slots = np.zeros(1 << self._bits, dtype=np.uint32)
        self._place_all()

    def _place_all(self) -> None:
        """Put every address of the book in the (empty) table. The addresses are distinct:
        each takes the first free slot from its home slot on."""
        slot = self._slot(_mix(self.words))
        handles = np.arange(1, self._count + 1, dtype=np.uint32)
        mask = self._slots.size - 1
        while slot.size:  # as in _claim: of the handles written to a free slot, one stays
            free = np.flatnonzero(self._slots.take(slot) == 0)
            at, written = slot.take(free), handles.take(free)
            self._slots[at] = written
            placed = free[self._slots.take(at) == written]
            left = np.ones(slot.size, dtype=bool)
            left[placed] = False
            slot = (slot[left] + 1) & mask
            handles = handles[left]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to and from Dask workers) as the addresses alone; the table is rebuilt."""
        return {"words": self.words.copy()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        words = state["words"]
        self._reserve(words.shape[0])
        self._rows[1 : words.shape[0] + 1] = words
        self._count = words.shape[0]
        self._place_all()

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
