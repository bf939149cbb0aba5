"""Reduce reply files to roaring bitmaps; merge per-file reductions by union.

Each reply row gets a *class* (probe, reply kind, answered a retransmission; see
:mod:`.taxonomy`) and its responder goes into that class's bitmap; each ICMP error row also gets
an *error class* (probe, error kind, sourced by the target) and its target goes into that error
class's bitmap. Every analysis is a union/intersection/difference of these bitmaps, so a file
reduces independently of the others and the reductions combine by union (shards, partitions,
Dask workers). Memory is bounded by the bitmaps, not by the number of rows.

The hot path is vectorised: per batch, a counting sort of the class numbers groups the
addresses by class; every few batches each class's addresses are sorted, deduplicated and
written straight into roaring's serialized form (:mod:`.bitmaps`), one bitmap per class.

The answers to ``--app-layer``'s TCP follow-up (categories ``app_data``, ``app_ack``,
``app_rst``) never get a class: they are no transport reply (an ``app_rst`` is not the port's
RST), so the analyses of the SYN's answers see the same bitmaps with or without them. Each
such row puts its responder into the bitmaps of its *application classes* instead (probe and
application group, :data:`~.taxonomy.APP_GROUP_NAMES`: its kind, application-active, the
protocol of its data), which merge like the others.

IPv4 and IPv6 rows reduce to partials of their own (a :class:`Reduction` holds both). In an
IPv6 partial a bitmap holds ids, not addresses: indices into the partial's
:class:`~liveness.output.address_book6.AddressBook6`, so the same set algebra serves both
families. The reduction numbers each batch's IPv6 addresses and then runs the IPv4 path on the
ids. Partials sharing a book union as they are; merging one with another book numbers its
addresses in ours and renumbers its bitmaps (:meth:`ReplyPartial.merge`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from pyroaring import BitMap

from liveness.analysis.bitmaps import from_unsorted
from liveness.analysis.source import iter_reply_batches
from liveness.analysis.taxonomy import (
    APP_ACK,
    APP_ACTIVE,
    APP_DATA_OTHER,
    APP_DATA_VALID,
    APP_PROTO_ALIASES,
    APP_PROTO_BASE,
    APP_PROTOS,
    APP_RST,
    ERR_ROUTER,
    ERR_TARGET,
    ERROR_KINDS,
    KIND_ECHO,
    KIND_RST,
    KIND_SYNACK,
    KIND_UDP_INVALID,
    KIND_UDP_VALID,
    N_APP_CLASSES,
    N_APP_GROUPS,
    N_CLASSES,
    N_ERROR_CLASSES,
    N_ERROR_KINDS,
    N_KINDS,
    UNKNOWN_PROBE,
    class_of,
    error_class_of,
    probe_index,
)
from liveness.errors import InputError
from liveness.output.address_book6 import AddressBook6, Words, words6
from liveness.output.schema import APP_CATEGORIES, REPLY_CATEGORIES

__all__ = [
    "Reducer",
    "Reduction",
    "ReplyPartial",
    "Window",
    "merge_partials",
    "reduce_file",
    "release_free_memory",
]

U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
_CATEGORY_INDEX = {name: i for i, name in enumerate(REPLY_CATEGORIES)}
_UNREACH_CATEGORY = _CATEGORY_INDEX["icmp_unreach"]
_APP_DATA, _APP_ACK, _APP_RST = (_CATEGORY_INDEX[name] for name in APP_CATEGORIES)
_IS_APP_CATEGORY = np.array([name in APP_CATEGORIES for name in REPLY_CATEGORIES] + [False])
# the class of the application rows before they are set apart (even: + retransmission fits)
_APP_ROWS = N_CLASSES + N_CLASSES % 2
assert _APP_ROWS + 1 < 256  # classes are uint8
_APP_PROTO_INDEX = {
    **{name: i for i, name in enumerate(APP_PROTOS)},
    **{alias: APP_PROTOS.index(name) for alias, name in APP_PROTO_ALIASES.items()},
}
_APP_PROTO_OTHER = APP_PROTOS.index("other")
# application category -> the application group of its rows (app_data: the invalid one)
_APP_GROUP_OF_CATEGORY = np.zeros(len(REPLY_CATEGORIES) + 1, dtype=np.uint16)
_APP_GROUP_OF_CATEGORY[[_APP_DATA, _APP_ACK, _APP_RST]] = (APP_DATA_OTHER, APP_ACK, APP_RST)
# reply category -> reply kind (UDP is refined by app_valid, ICMP errors by their source)
_KIND_OF_CATEGORY = np.array(
    [
        {
            "echo_reply": KIND_ECHO,
            "timestamp_reply": KIND_ECHO,  # an ICMP answer in the probe's own protocol
            "synack": KIND_SYNACK,
            "rst": KIND_RST,
            "udp": KIND_UDP_INVALID,
        }.get(name, ERR_TARGET)
        for name in REPLY_CATEGORIES
    ],
    dtype=np.uint8,
)
# reply category -> ICMP error kind (destination unreachable is refined by its code)
_ERROR_KIND_OF_CATEGORY = np.array(
    [
        ERROR_KINDS.index(name.removeprefix("icmp_"))
        if name.removeprefix("icmp_") in ERROR_KINDS
        else N_ERROR_KINDS - 1
        for name in REPLY_CATEGORIES
    ],
    dtype=np.uint16,
)


# class -> its reply kind; class -> error class of (its probe, error kind 0, not from target)
# (the application rows' two classes have no kind: 255)
_CLASS_KIND = np.array(
    [(c // 2) % N_KINDS for c in range(N_CLASSES)] + [255] * (_APP_ROWS + 2 - N_CLASSES),
    dtype=np.uint8,
)
_ERROR_CLASS_BASE = np.array(
    [error_class_of(c // 2 // N_KINDS, 0, False) for c in range(N_CLASSES)], dtype=np.uint16
)
# from a class to the same probe and attempt with another kind
_VALID_UDP_SHIFT = class_of(0, KIND_UDP_VALID, False) - class_of(0, KIND_UDP_INVALID, False)
_ROUTER_SHIFT = class_of(0, ERR_ROUTER, False) - class_of(0, ERR_TARGET, False)


class Window(NamedTuple):
    """The addresses ``[low, high)`` (``high`` up to 2**32)."""

    low: int
    high: int

    def holds(self, addresses: U32) -> npt.NDArray[np.bool_]:
        """Which of ``addresses`` are in the window."""
        inside = addresses >= np.uint32(self.low)
        if self.high <= 0xFFFFFFFF:
            inside &= addresses < np.uint32(self.high)
        return inside

    @staticmethod
    def split(count: int) -> list[Window]:
        """The IPv4 space in ``count`` equal windows (aligned on /16, as roaring's containers)."""
        bounds = [(i * (1 << 16) // count) << 16 for i in range(count + 1)]
        return [Window(low, high) for low, high in itertools.pairwise(bounds)]


@dataclass
class ReplyPartial:
    """The reduction of some reply rows: bitmaps per class and row counters.

    ``responders[c]``: responders of the rows of class ``c``; ``error_targets[e]``: targets of
    the ICMP error rows of error class ``e``; ``app_responders[a]``: responders of the
    application rows of application class ``a``; ``class_rows`` / ``error_rows`` /
    ``app_rows``: row counts per class / error class / application class (``app_rows`` counts
    each row once, in the group of its kind); ``target_min`` / ``target_max``: the range of
    probed addresses (IPv4). ``af`` is the address family; for 6 the bitmaps hold ids into
    ``book6``.
    """

    rows: int = 0
    class_rows: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(N_CLASSES, dtype=np.int64)
    )
    error_rows: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(N_ERROR_CLASSES, dtype=np.int64)
    )
    responders: dict[int, BitMap] = field(default_factory=dict)
    error_targets: dict[int, BitMap] = field(default_factory=dict)
    app_rows: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(N_APP_CLASSES, dtype=np.int64)
    )
    app_responders: dict[int, BitMap] = field(default_factory=dict)
    target_min: int = 2**32
    target_max: int = -1
    unknown_probes: set[str] = field(default_factory=set)
    af: int = 4
    book6: AddressBook6 = field(default_factory=AddressBook6.empty)

    def is_empty(self) -> bool:
        """Whether nothing was added (no row, no bitmap)."""
        return not (self.rows or self.responders or self.error_targets or self.app_responders)

    def bitmap_dicts(self) -> tuple[dict[int, BitMap], dict[int, BitMap], dict[int, BitMap]]:
        """The three kinds of bitmaps: responders, error targets, application responders."""
        return self.responders, self.error_targets, self.app_responders

    def merge(self, other: ReplyPartial) -> None:
        """Add ``other`` into this partial (union of bitmaps, sum of counters).

        An empty partial takes the family of ``other``; partials of two families never mix.
        """
        if other.af != self.af:
            if not self.is_empty():
                raise ValueError(f"cannot merge an IPv{other.af} partial into an IPv{self.af} one")
            self.af = other.af
        if self.af == 6:
            other = self._renumber_for(other)
        self.rows += other.rows
        self.class_rows += other.class_rows
        self.error_rows += other.error_rows
        self.app_rows += other.app_rows
        _union_into(self.responders, other.responders)
        _union_into(self.error_targets, other.error_targets)
        _union_into(self.app_responders, other.app_responders)
        self.target_min = min(self.target_min, other.target_min)
        self.target_max = max(self.target_max, other.target_max)
        self.unknown_probes |= other.unknown_probes

    def _renumber_for(self, other: ReplyPartial) -> ReplyPartial:
        """``other`` with ids of this partial's book (``other`` itself when the book is shared;
        this partial takes ``other``'s book while it has no address of its own). The
        addresses new to our book are added to it; our ids never change."""
        if other.book6 is self.book6:
            return other
        if len(self.book6) == 0:
            self.book6 = other.book6
            return other
        table = self.book6.number(other.book6.words)
        return ReplyPartial(
            rows=other.rows,
            class_rows=other.class_rows,
            error_rows=other.error_rows,
            responders=renumber(other.responders, table),
            error_targets=renumber(other.error_targets, table),
            app_rows=other.app_rows,
            app_responders=renumber(other.app_responders, table),
            target_min=other.target_min,
            target_max=other.target_max,
            unknown_probes=other.unknown_probes,
            af=6,
            book6=self.book6,
        )

    def bitmap_bytes(self) -> int:
        """The size of every bitmap (roaring's own count)."""
        bitmaps = (bitmap for bitmaps in self.bitmap_dicts() for bitmap in bitmaps.values())
        return sum(bitmap.__sizeof__() for bitmap in bitmaps)

    def address_span(self) -> tuple[int, int]:
        """The lowest and highest address in any bitmap; (0, -1) when there is none."""
        bitmaps = [b for bitmaps in self.bitmap_dicts() for b in bitmaps.values() if b]
        if not bitmaps:
            return 0, -1
        return min(b.min() for b in bitmaps), max(b.max() for b in bitmaps)

    def restricted(self, low: int, high: int, *, counters: bool) -> ReplyPartial:
        """The addresses in ``[low, high)`` only: every bitmap intersected with the range.

        Row counters are not per address: they are kept when ``counters`` (give them to one
        slice of a set of disjoint slices) and zero otherwise; the probed range is kept.
        IPv4 only: an IPv6 partial's ids are not in address order.
        """
        if self.af != 4:
            raise ValueError("an IPv6 partial has no address slices")
        window = BitMap(range(low, high))
        part = ReplyPartial(
            rows=self.rows if counters else 0,
            target_min=self.target_min,
            target_max=self.target_max,
            unknown_probes=set(self.unknown_probes),
        )
        if counters:
            part.class_rows = self.class_rows.copy()
            part.error_rows = self.error_rows.copy()
            part.app_rows = self.app_rows.copy()
        for into, source in zip(part.bitmap_dicts(), self.bitmap_dicts(), strict=True):
            for key, bitmap in source.items():
                if piece := bitmap & window:
                    into[key] = piece
        return part


def renumber(bitmaps: dict[int, BitMap], table: U32) -> dict[int, BitMap]:
    """``bitmaps`` with every id ``i`` replaced by ``table[i]``."""
    renumbered = {}
    for key, bitmap in bitmaps.items():
        ids = np.frombuffer(bitmap.to_array(), dtype=np.uint32)
        renumbered[key] = from_unsorted(table.take(ids), in_place=True)
    return renumbered


@dataclass
class Reduction:
    """The reductions of one input's rows, one partial per address family."""

    ipv4: ReplyPartial = field(default_factory=ReplyPartial)
    ipv6: ReplyPartial = field(default_factory=lambda: ReplyPartial(af=6))

    @property
    def rows(self) -> int:
        """Rows of both families."""
        return self.ipv4.rows + self.ipv6.rows

    def merge(self, other: Reduction) -> None:
        """Add ``other`` family by family."""
        self.ipv4.merge(other.ipv4)
        self.ipv6.merge(other.ipv6)

    def bitmap_bytes(self) -> int:
        """The size of every bitmap of both families."""
        return self.ipv4.bitmap_bytes() + self.ipv6.bitmap_bytes()


def _libc_malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc
        return None
    return trim


_MALLOC_TRIM = _libc_malloc_trim()


def release_free_memory() -> None:
    """Hand the heap's free pages back to the OS (glibc's ``malloc_trim``; elsewhere a no-op).

    Merging and slicing rebuild bitmaps of millions of small containers; glibc keeps the pages
    freed on the way, which would otherwise add up to the peak of the steps that follow.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _union_into(into: dict[int, BitMap], other: dict[int, BitMap]) -> None:
    """Union ``other``'s bitmaps into ``into``'s (which are replaced, never modified)."""
    for key, bitmap in other.items():
        # ``a | b``, not ``a |= b``: CRoaring merges arrays in place with scalar code and
        # reallocates them at twice the size; a new bitmap is merged with SIMD, to its size
        into[key] = into[key] | bitmap if key in into else BitMap(bitmap)


def _dictionary_codes(
    path: str,
    name: str,
    batch: pa.RecordBatch,
    index: Callable[[str], int] | dict[str, int],
    unknown: int,
) -> tuple[npt.NDArray[np.uint8], np.ndarray, list[str]]:
    """String column ``name`` as (lookup, codes, unknown names): ``lookup[codes]`` gives each
    row's index by ``index`` (a mapping, ``unknown`` for names outside it, or a function);
    only the dictionary is looked up, never the rows."""
    column: pa.Array[Any] | pa.ChunkedArray[Any] = batch.column(name)
    if column.null_count:
        raise InputError(f"{path}: column {name!r} has {column.null_count} null value(s)")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    encoded = cast("pa.DictionaryArray[Any, Any]", column)
    names = encoded.dictionary.to_pylist()
    find = index if callable(index) else (lambda n: index.get(n, unknown))
    lookup = np.array([find(str(n)) for n in names], dtype=np.uint8)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    unknown_names = [str(n) for n, i in zip(names, lookup, strict=True) if i == unknown]
    return lookup, codes, unknown_names


def _boolean_column(path: str, batch: pa.RecordBatch, name: str) -> pa.Array[Any]:
    """Column ``name``, checked as :func:`_numeric` would check it for ``np.bool_``."""
    column = batch.column(name)
    if column.null_count:
        raise InputError(f"{path}: column {name!r} has {column.null_count} null value(s)")
    if not (pa.types.is_boolean(column.type) or pa.types.is_integer(column.type)):
        raise InputError(f"{path}: column {name!r} is not numeric ({column.type})")
    return column


def _rows_of(column: pa.Array[Any], rows: np.ndarray) -> npt.NDArray[np.bool_]:
    """The values of the boolean (or integer) ``column`` at ``rows``, as booleans."""
    values = np.asarray(pc.take(column, pa.array(rows)).to_numpy(zero_copy_only=False))
    return values if values.dtype == np.bool_ else values != 0


def _numeric(path: str, batch: pa.RecordBatch, name: str, dtype: type[np.generic]) -> np.ndarray:
    """Column ``name`` as a numpy array of ``dtype`` (zero-copy when the types already match)."""
    column = batch.column(name)
    if column.null_count:
        raise InputError(f"{path}: column {name!r} has {column.null_count} null value(s)")
    try:
        values = np.asarray(column.to_numpy(zero_copy_only=False))
    except (TypeError, ValueError, pa.ArrowException) as exc:
        raise InputError(f"{path}: column {name!r} is not numeric ({column.type})") from exc
    if values.dtype == dtype:
        return values
    if values.dtype.kind not in "iub":
        raise InputError(f"{path}: column {name!r} is not numeric ({column.type})")
    wanted = np.dtype(dtype)
    info = np.iinfo(wanted) if wanted.kind in "iu" else None  # type: ignore[type-var]
    if info is not None and values.size and (values.min() < info.min or values.max() > info.max):
        raise InputError(f"{path}: column {name!r} has values out of range for {np.dtype(dtype)}")
    return values.astype(dtype)


def _group(
    groups: np.ndarray, values: U32, count: int
) -> tuple[np.ndarray, list[int], npt.NDArray[np.int64], U32]:
    """Group ``values`` by ``groups`` (small ints below ``count``) with one counting sort.

    Returns (order, edges, sizes, grouped): the rows of group ``g`` are
    ``order[edges[g]:edges[g + 1]]``, ``sizes[g]`` of them, and their values
    ``grouped[edges[g]:edges[g + 1]]``.
    """
    sizes = np.bincount(groups, minlength=count)
    order = pc.array_sort_indices(pa.array(groups)).to_numpy()  # counting sort: small ints
    edges = [0, *np.cumsum(sizes).tolist()]
    return order, edges, sizes, values.take(order)


def _move(
    chunks: dict[int, U32], sizes: npt.NDArray[np.int64], source: int, to: int, moved: np.ndarray
) -> None:
    """Move the addresses of class ``source`` selected by the mask ``moved`` to class ``to``."""
    count = int(np.count_nonzero(moved))
    if count:
        chunk = chunks[source]
        chunks[to] = chunk[moved]
        chunks[source] = chunk[~moved]
        sizes[to] += count
        sizes[source] -= count


class _Codes(NamedTuple):
    """A batch's classes (:meth:`Reducer._codes`), with the lookups and codes they came from."""

    classes: npt.NDArray[np.uint8]
    category_of: npt.NDArray[np.uint8]
    reply_codes: np.ndarray
    probe_of: npt.NDArray[np.uint8]
    probe_codes: np.ndarray


class Reducer:
    """Reduces the record batches of one input and one address family into a
    :class:`ReplyPartial`.

    Each batch's addresses are grouped by class (a counting sort of the class numbers) and kept
    aside; every ``FLUSH_EVERY`` batches each class's addresses are sorted and deduplicated
    once and become one bitmap (:func:`~.bitmaps.from_sorted`), unioned into the partial. So
    an address is inserted into a bitmap once per flush, not once per batch, and memory holds
    at most ``FLUSH_EVERY`` batches of addresses besides the bitmaps.

    IPv6 batches (``af=6``, with ``target6``/``responder6`` in place of ``target``/
    ``responder``) take the same path with ids for addresses: the book numbers every row's
    responder and each ICMP error row's target (an error's target is its responder when their
    ids are equal).

    Application rows (``--app-layer``) are picked out by their class (one value for all of
    them, :data:`_APP_ROWS`) and reduced by :meth:`_app_groups` into application classes.
    """

    FLUSH_EVERY = 64

    def __init__(
        self,
        path: str,
        *,
        window: Window | None = None,
        counters: bool = True,
        af: int = 4,
        book6: AddressBook6 | None = None,
    ) -> None:
        """``window``: keep only the addresses in ``[low, high)`` (one pass of several, see
        :func:`~.summary.summarize`; IPv4 only); ``counters``: count rows per class (one pass
        only); ``af``: the family of the batches added (4 or 6); ``book6``: the IPv6 book to
        number in (shared by the files of a run, so that their partials union as they are;
        a new one by default)."""
        if af not in (4, 6) or (af == 6 and window is not None):
            raise ValueError(f"af {af}, window {window}: IPv4 with any window, IPv6 without")
        self.path = path
        self.window = window
        self.counters = counters
        self.af = af
        self.partial = ReplyPartial(af=af)
        if af == 6:
            self.partial.book6 = book6 if book6 is not None else AddressBook6()
        # per (0 = responders / 1 = error targets / 2 = application responders): group ->
        # address chunks not yet in bitmaps
        self._pending: tuple[dict[int, list[U32]], ...] = ({}, {}, {})
        self._batches = 0

    def _flush(self) -> None:
        """Turn the addresses set aside into bitmaps and union them into the partial."""
        for which, into in enumerate(self.partial.bitmap_dicts()):
            pending = self._pending[which]
            for group in sorted(pending):
                chunks = pending.pop(group)
                # the chunks are the reducer's own (slices of its grouped copies): sort in place
                values = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
                bitmap = from_unsorted(values, in_place=True)
                into[group] = into[group] | bitmap if group in into else bitmap
        self._batches = 0

    def _set_aside(self, which: int, chunks: dict[int, U32]) -> None:
        pending = self._pending[which]
        for group, chunk in chunks.items():
            if self.window is not None:
                chunk = chunk[self.window.holds(chunk)]
            if chunk.size:
                pending.setdefault(group, []).append(chunk)

    def _codes(self, batch: pa.RecordBatch) -> _Codes:
        """Each row's class, UDP taken as invalid and ICMP errors as from the target (one
        lookup of its (probe, reply) dictionary codes, plus the retransmission bit; the
        application rows get :data:`_APP_ROWS` or one more); and the lookups and codes."""
        path = self.path
        probe_of, probe_codes, unknown_probes = _dictionary_codes(
            path, "probe", batch, probe_index, UNKNOWN_PROBE
        )
        category_of, reply_codes, unknown = _dictionary_codes(
            path, "reply", batch, _CATEGORY_INDEX, 255
        )
        if unknown:
            raise InputError(f"{path}: unknown reply category {unknown[0]!r} in column 'reply'")
        retransmission = _numeric(path, batch, "attempt", np.uint8) != 0
        # uint8 arithmetic: classes < N_CLASSES <= 256
        table = (probe_of[:, None] * np.uint8(N_KINDS) + _KIND_OF_CATEGORY[category_of]) * 2
        table[:, _IS_APP_CATEGORY[category_of]] = _APP_ROWS
        pair = probe_codes * np.int32(category_of.size)  # a new array: the codes are Arrow's
        pair += reply_codes
        classes = table.ravel().take(pair)
        classes += retransmission
        self.partial.unknown_probes.update(unknown_probes)
        return _Codes(classes, category_of, reply_codes, probe_of, probe_codes)

    def _app_groups(
        self, batch: pa.RecordBatch, codes: _Codes, rows: np.ndarray
    ) -> tuple[npt.NDArray[np.uint16], np.ndarray]:
        """The application classes of the application ``rows`` (batch row numbers): one per
        row for its kind, one more for each ``app_active`` row (``app_data`` and ``app_ack``
        are, whatever a narrow file kept of the column) and one for each ``app_data`` row's
        protocol. Returns (classes, the row of each: indices into ``rows``); counts the rows."""
        path = self.path
        probe = codes.probe_of.take(codes.probe_codes.take(rows)).astype(np.uint16)
        category = codes.category_of.take(codes.reply_codes.take(rows))
        base = probe * np.uint16(N_APP_GROUPS)
        kind = _APP_GROUP_OF_CATEGORY.take(category)
        data = np.flatnonzero(category == _APP_DATA)
        valid = _rows_of(_boolean_column(path, batch, "app_valid"), rows.take(data))
        kind[data[valid]] = APP_DATA_VALID
        active = category != _APP_RST
        names = batch.schema.names
        if "app_active" in names:
            active |= _rows_of(_boolean_column(path, batch, "app_active"), rows)
        if "app_proto" in names:
            proto_of, proto_codes, _ = _dictionary_codes(
                path, "app_proto", batch, _APP_PROTO_INDEX, _APP_PROTO_OTHER
            )
            proto = proto_of.take(proto_codes.take(rows.take(data))).astype(np.uint16)
        else:
            proto = np.full(data.size, _APP_PROTO_OTHER, dtype=np.uint16)
        kinds = base + kind
        if self.counters:
            self.partial.app_rows += np.bincount(kinds, minlength=N_APP_CLASSES)
        picks = np.flatnonzero(active)
        classes = np.concatenate(
            (
                kinds,
                base.take(picks) + np.uint16(APP_ACTIVE),
                base.take(data) + APP_PROTO_BASE + proto,
            )
        )
        which = np.concatenate((np.arange(rows.size), picks, data))
        return classes.astype(np.uint16), which

    def _error_classes(
        self,
        batch: pa.RecordBatch,
        rows: np.ndarray,
        classes: npt.NDArray[np.uint8],
        from_target: npt.NDArray[np.bool_],
        category_of: npt.NDArray[np.uint8],
        reply_codes: np.ndarray,
    ) -> npt.NDArray[np.uint16]:
        """The error classes (probe, error kind, from target) of the ICMP error ``rows``,
        whose classes (as from the target) are ``classes``."""
        error_category = category_of.take(reply_codes.take(rows))
        error_kind = _ERROR_KIND_OF_CATEGORY.take(error_category)
        code = _numeric(self.path, batch, "icmp_code", np.int16).take(rows)
        code_kind = np.where(code.view(np.uint16) < 16, code, N_ERROR_KINDS - 1)
        error_kind = np.where(error_category == _UNREACH_CATEGORY, code_kind, error_kind)
        base = _ERROR_CLASS_BASE.take(classes)
        result: npt.NDArray[np.uint16] = (
            base + error_kind.astype(np.uint16) * np.uint16(2) + from_target
        )
        return result

    def add(self, batch: pa.RecordBatch) -> None:
        """Reduce one record batch (vectorised, no per-row Python).

        Each row gets its class from one lookup of its (probe, reply) dictionary codes, with
        UDP replies taken as invalid and ICMP errors as sourced by the target; after grouping,
        only the rows of those classes are looked at again, to move valid UDP replies and
        router-sourced errors to their own classes and to find the errors' error classes.
        """
        if batch.num_rows == 0:
            return
        path, partial = self.path, self.partial
        target_of: Callable[[np.ndarray], U32]
        if self.af == 6:
            book = partial.book6
            responder = book.number(_address6(path, batch, "responder6"))
            target_of = lambda rows: book.number(_address6(path, batch, "target6", rows))  # noqa: E731
        else:
            target = _numeric(path, batch, "target", np.uint32)
            responder = _numeric(path, batch, "responder", np.uint32)
            target_of = target.take
            partial.target_min = min(partial.target_min, int(target.min()))
            partial.target_max = max(partial.target_max, int(target.max()))
        codes = self._codes(batch)
        classes, category_of, reply_codes = codes.classes, codes.category_of, codes.reply_codes
        app_valid = _boolean_column(path, batch, "app_valid")
        order, edges, all_sizes, grouped = _group(classes, responder, _APP_ROWS + 2)
        sizes = all_sizes[:N_CLASSES]  # a view: the moves below update it
        chunks = {c: grouped[edges[c] : edges[c + 1]] for c in np.flatnonzero(sizes).tolist()}
        if edges[-1] > edges[_APP_ROWS]:  # the application rows, grouped last
            app_rows = order[edges[_APP_ROWS] :]
            app_classes, which = self._app_groups(batch, codes, app_rows)
            _, app_edges, app_sizes, app_grouped = _group(
                app_classes, grouped[edges[_APP_ROWS] :].take(which), N_APP_CLASSES
            )
            self._set_aside(
                2,
                {
                    a: app_grouped[app_edges[a] : app_edges[a + 1]]
                    for a in np.flatnonzero(app_sizes).tolist()
                },
            )

        for c in [c for c in chunks if _CLASS_KIND[c] == KIND_UDP_INVALID]:
            valid = _rows_of(app_valid, order[edges[c] : edges[c + 1]])
            _move(chunks, sizes, c, c + _VALID_UDP_SHIFT, valid)

        errors = [c for c in chunks if _CLASS_KIND[c] == ERR_TARGET]
        if errors:
            rows = np.concatenate([order[edges[c] : edges[c + 1]] for c in errors])
            error_targets = target_of(rows)
            from_target = np.concatenate([chunks[c] for c in errors]) == error_targets
            start = 0
            for c in errors:
                size = int(sizes[c])
                _move(chunks, sizes, c, c + _ROUTER_SHIFT, ~from_target[start : start + size])
                start += size
            error_classes = self._error_classes(
                batch, rows, classes.take(rows), from_target, category_of, reply_codes
            )
            _, error_edges, error_sizes, grouped_targets = _group(
                error_classes, error_targets, N_ERROR_CLASSES
            )
            if self.counters:
                partial.error_rows += error_sizes
            self._set_aside(
                1,
                {
                    e: grouped_targets[error_edges[e] : error_edges[e + 1]]
                    for e in np.flatnonzero(error_sizes).tolist()
                },
            )

        if self.counters:
            partial.class_rows += sizes
        self._set_aside(0, chunks)
        partial.rows += batch.num_rows
        self._batches += 1
        if self._batches >= self.FLUSH_EVERY:
            self._flush()

    def finish(self) -> ReplyPartial:
        """The reduction of every batch added."""
        self._flush()
        return self.partial


def _address6(path: str, batch: pa.RecordBatch, name: str, rows: np.ndarray | None = None) -> Words:
    """IPv6 address column ``name`` (its ``rows`` if given) as ``(n, 2)`` words; InputError for
    nulls or a bad type."""
    column = batch.column(name)
    if column.null_count:
        raise InputError(f"{path}: column {name!r} has {column.null_count} null IPv6 value(s)")
    try:
        return words6(column, rows)
    except (pa.ArrowException, ValueError) as exc:
        raise InputError(
            f"{path}: column {name!r} is not 16-byte addresses ({column.type})"
        ) from exc


def reduce_file(
    path: str,
    window: Window | None = None,
    counters: bool = True,
    book6: AddressBook6 | None = None,
) -> Reduction:
    """Stream ``path`` in record batches and reduce it, each family on its own (``window``,
    ``counters`` and ``book6`` as for :class:`Reducer`; the IPv6 rows are reduced in the pass
    that counts, as a window is a range of IPv4 addresses); InputError names the file on bad
    input."""
    reducers = (
        Reducer(path, window=window, counters=counters),
        Reducer(path, af=6, book6=book6) if counters else None,
    )
    for batch in iter_reply_batches(path):
        reducers[0].add(batch.ipv4)
        if reducers[1] is not None and batch.ipv6 is not None:
            reducers[1].add(batch.ipv6)
    reduction = Reduction(
        reducers[0].finish(), reducers[1].finish() if reducers[1] else ReplyPartial(af=6)
    )
    if reduction.rows == 0 and counters:
        raise InputError(f"{path}: empty scan (no reply rows)")
    return reduction


def merge_partials(partials: Iterable[ReplyPartial]) -> ReplyPartial:
    """Merge partials by union into a new one (the inputs' sets are left unchanged; an IPv6
    input's book may gain addresses, as ids are never reused)."""
    merged = ReplyPartial()
    for partial in partials:
        merged.merge(partial)
    return merged
