"""Reduce reply files to roaring bitmaps; merge per-file reductions by union.

Each reply row gets a *class* (probe, reply kind, answered a retransmission; see
:mod:`.taxonomy`) and its responder goes into that class's bitmap; each ICMP error row also gets
an *error class* (probe, error kind, sourced by the target) and its target goes into that error
class's bitmap. Every analysis is a union/intersection/difference of these bitmaps, so a file
reduces independently of the others and the reductions combine by union (shards, partitions,
Dask workers). Memory is bounded by the bitmaps, not by the number of rows.

The hot path is vectorised: per batch, one ``np.sort`` of ``class << 32 | address`` (uint64)
groups the rows by class with addresses sorted, which is what roaring bitmaps build fastest from.
"""

from __future__ import annotations

import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from pyroaring import BitMap

from liveness.analysis.source import iter_reply_batches
from liveness.analysis.taxonomy import (
    ALL_PROBES,
    ERR_TARGET,
    ERROR_KINDS,
    KIND_ECHO,
    KIND_RST,
    KIND_SYNACK,
    KIND_UDP_INVALID,
    N_CLASSES,
    N_ERROR_CLASSES,
    N_ERROR_KINDS,
    N_KINDS,
    UNKNOWN_PROBE,
)
from liveness.errors import InputError
from liveness.output.schema import REPLY_CATEGORIES

__all__ = ["Reducer", "ReplyPartial", "merge_partials", "reduce_file"]

U64 = npt.NDArray[np.uint64]
_PROBE_INDEX = {name: i for i, name in enumerate(ALL_PROBES)}
_CATEGORY_INDEX = {name: i for i, name in enumerate(REPLY_CATEGORIES)}
_UDP_CATEGORY = _CATEGORY_INDEX["udp"]
_UNREACH_CATEGORY = _CATEGORY_INDEX["icmp_unreach"]
# reply category -> reply kind (UDP is refined by app_valid, ICMP errors by their source)
_KIND_OF_CATEGORY = np.array(
    [
        {
            "echo_reply": KIND_ECHO,
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
    dtype=np.uint64,
)
_CLASS_BOUNDS = np.arange(N_CLASSES + 1, dtype=np.uint64) << np.uint64(32)
_ERROR_CLASS_BOUNDS = np.arange(N_ERROR_CLASSES + 1, dtype=np.uint64) << np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)


@dataclass
class ReplyPartial:
    """The reduction of some reply rows: bitmaps per class and row counters.

    ``responders[c]``: responders of the rows of class ``c``; ``error_targets[e]``: targets of
    the ICMP error rows of error class ``e``; ``class_rows`` / ``error_rows``: row counts per
    class / error class; ``target_min`` / ``target_max``: the range of probed addresses.
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
    target_min: int = 2**32
    target_max: int = -1
    unknown_probes: set[str] = field(default_factory=set)

    def merge(self, other: ReplyPartial) -> None:
        """Add ``other`` into this partial (union of bitmaps, sum of counters)."""
        self.rows += other.rows
        self.class_rows += other.class_rows
        self.error_rows += other.error_rows
        _union_into(self.responders, other.responders)
        _union_into(self.error_targets, other.error_targets)
        self.target_min = min(self.target_min, other.target_min)
        self.target_max = max(self.target_max, other.target_max)
        self.unknown_probes |= other.unknown_probes


def _union_into(into: dict[int, BitMap], other: dict[int, BitMap]) -> None:
    for key, bitmap in other.items():
        if key in into:
            into[key] |= bitmap
        else:
            into[key] = BitMap(bitmap)


def _dictionary_indices(
    path: str, name: str, batch: pa.RecordBatch, index: dict[str, int], unknown: int
) -> tuple[npt.NDArray[np.uint8], list[str]]:
    """Map string column ``name`` to indices by ``index`` (looking up its dictionary, not rows)."""
    column: pa.Array[Any] | pa.ChunkedArray[Any] = batch.column(name)
    if column.null_count:
        raise InputError(f"{path}: column {name!r} has {column.null_count} null value(s)")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    encoded = cast("pa.DictionaryArray[Any, Any]", column)
    names = encoded.dictionary.to_pylist()
    lookup = np.array([index.get(str(n), unknown) for n in names], dtype=np.uint8)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    unknown_names = [str(n) for n, i in zip(names, lookup, strict=True) if i == unknown]
    return lookup[codes], unknown_names


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


class Reducer:
    """Reduces the record batches of one input into a :class:`ReplyPartial`.

    Each batch's rows become one small bitmap per class; those are kept aside and unioned in
    bulk (one multi-way union per ``FLUSH_EVERY`` batches) rather than one in-place union per
    batch into an ever larger bitmap, which would cost O(batches x bitmap size).
    """

    FLUSH_EVERY = 16

    def __init__(self, path: str) -> None:
        self.path = path
        self.partial = ReplyPartial()
        # (0 = responders / 1 = error targets, group) -> bitmaps not yet unioned in
        self._pending: dict[tuple[int, int], list[BitMap]] = {}

    def _add_sorted_groups(
        self, which: int, counts: npt.NDArray[np.int64], keys: U64, bounds: U64
    ) -> None:
        """Add ``keys`` (``group << 32 | address``) to per-group bitmaps; count rows per group."""
        keys = np.sort(keys)
        edges = np.searchsorted(keys, bounds)
        sizes = np.diff(edges)
        counts += sizes
        addresses = (keys & _LOW32).astype(np.uint32)
        for group in np.flatnonzero(sizes).tolist():
            chunk = addresses[edges[group] : edges[group + 1]]
            pending = self._pending.setdefault((which, group), [])
            pending.append(BitMap(array.array("I", chunk.tobytes())))
            if len(pending) >= self.FLUSH_EVERY:
                self._flush((which, group))

    def _flush(self, key: tuple[int, int]) -> None:
        which, group = key
        into = self.partial.error_targets if which else self.partial.responders
        pending = self._pending.pop(key)
        if group in into:
            pending.append(into[group])
        into[group] = BitMap.union(*pending)

    def add(self, batch: pa.RecordBatch) -> None:
        """Reduce one record batch (vectorised, no per-row Python)."""
        if batch.num_rows == 0:
            return
        path, partial = self.path, self.partial
        probe, unknown_probes = _dictionary_indices(
            path, "probe", batch, _PROBE_INDEX, UNKNOWN_PROBE
        )
        category, bad_categories = _dictionary_indices(path, "reply", batch, _CATEGORY_INDEX, 255)
        if bad_categories:
            raise InputError(
                f"{path}: unknown reply category {bad_categories[0]!r} in column 'reply'"
            )
        target = _numeric(path, batch, "target", np.uint32)
        responder = _numeric(path, batch, "responder", np.uint32)
        retransmission = _numeric(path, batch, "attempt", np.uint8) != 0
        app_valid = _numeric(path, batch, "app_valid", np.bool_)

        # uint8 arithmetic: classes < N_CLASSES <= 256
        kind = _KIND_OF_CATEGORY[category]
        kind -= (category == _UDP_CATEGORY) & app_valid
        is_error = kind >= ERR_TARGET
        from_router = responder != target
        kind += is_error & from_router
        classes = (probe * np.uint8(N_KINDS) + kind) * np.uint8(2) + retransmission
        keys = (classes.astype(np.uint64) << np.uint64(32)) | responder
        self._add_sorted_groups(0, partial.class_rows, keys, _CLASS_BOUNDS)

        if is_error.any():
            code = _numeric(path, batch, "icmp_code", np.int16)[is_error]
            error_category = category[is_error]
            error_kind = _ERROR_KIND_OF_CATEGORY[error_category]
            unreach = error_category == _UNREACH_CATEGORY
            code_kind = np.where((code >= 0) & (code < 16), code, N_ERROR_KINDS - 1)
            error_kind = np.where(unreach, code_kind, error_kind).astype(np.uint64)
            from_target = ~from_router[is_error]
            error_classes = (probe[is_error] * np.uint64(N_ERROR_KINDS) + error_kind) * np.uint64(2)
            error_classes += from_target
            error_keys = (error_classes << np.uint64(32)) | target[is_error]
            self._add_sorted_groups(1, partial.error_rows, error_keys, _ERROR_CLASS_BOUNDS)

        partial.rows += batch.num_rows
        partial.target_min = min(partial.target_min, int(target.min()))
        partial.target_max = max(partial.target_max, int(target.max()))
        partial.unknown_probes.update(unknown_probes)

    def finish(self) -> ReplyPartial:
        """The reduction of every batch added."""
        for key in list(self._pending):
            self._flush(key)
        return self.partial


def reduce_file(path: str) -> ReplyPartial:
    """Stream ``path`` in record batches and reduce it; InputError names the file on bad input."""
    reducer = Reducer(path)
    for batch in iter_reply_batches(path):
        reducer.add(batch)
    partial = reducer.finish()
    if partial.rows == 0:
        raise InputError(f"{path}: empty scan (no reply rows)")
    return partial


def merge_partials(partials: Iterable[ReplyPartial]) -> ReplyPartial:
    """Merge partials by union into a new one (the inputs are left unchanged)."""
    merged = ReplyPartial()
    for partial in partials:
        merged.merge(partial)
    return merged
