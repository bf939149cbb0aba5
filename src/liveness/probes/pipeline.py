"""The reply pipeline: classify -> mark repeats -> count -> record batch, on integer probe ids.

One pipeline serves the live receiver (frames from the ring) and ``liveness decode`` (frames
from a capture), so both mark the same replies as repeats and count them the same way. The
probe stays an integer (its index in the scan's probe list) from the classifier to the record
batch: repeats are keyed ``probe << 32 | target`` in a 64-bit roaring bitmap, and the counters
are ``bincount``s, with no per-row Python and no round trip through probe names.

The answers to ``--app-layer``'s follow-ups (``app_data``, ``app_ack``, ``app_rst``) are repeats
of each other, not of the SYN-ACK before them: they are keyed as probe ``n + p`` (``n`` probes),
so the first answer of each (target, probe) is not a repeat and the per-probe counts of
distinct targets stay those of the SYN.

An IPv6 target does not fit 32 bits, so IPv6 rows are keyed by the target's id in an address
book (:class:`~liveness.output.address_book6.AddressBook6`: ids dense from 0, given at first
sight) in a bitmap of their own: ``probe << 32 | id``, exact, and as dense as the IPv4 keys. A
64-bit hash of (probe, target) would put every key in a roaring container of its own, several
times slower to mark, and would make a false repeat of any collision.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from pyroaring import BitMap, BitMap64

from liveness.output.address_book6 import AddressBook6
from liveness.output.schema import APP_CATEGORIES, REPLY_CATEGORIES
from liveness.probes.base import Probe
from liveness.probes.classify import Replies, ReplyClassifier
from liveness.probes.context import ScanContext

__all__ = ["RepeatTracker", "ReplyPipeline", "addresses6", "probe_indices"]


class RepeatTracker:
    """Marks replies whose (probe, target) answered before, over the whole scan.

    Keys are ``probe_index << 32 | target`` in a 64-bit roaring bitmap (IPv6 targets by their
    address book id, in a bitmap of their own): memory follows the number of distinct answers,
    and the whole batch is checked with set operations, not a row loop.
    """

    def __init__(self) -> None:
        self.seen = BitMap64()
        self.any_probe = BitMap()
        self.book6 = AddressBook6()
        self.seen6 = BitMap64()

    def mark(
        self,
        probe_index: NDArray[np.int64],
        target: NDArray[np.integer[Any]],
        target6: NDArray[np.uint8] | None = None,
        af: NDArray[np.integer[Any]] | None = None,
    ) -> NDArray[np.bool_]:
        """Repeat flags for a batch (in order), and remember the batch (``target6`` and ``af``
        given when the batch holds IPv6 rows)."""
        if af is None or target6 is None:
            return self._mark4(probe_index, target)
        six = np.asarray(af) == 6
        repeat = np.zeros(probe_index.size, dtype=np.bool_)
        rows4 = np.flatnonzero(~six)
        rows6 = np.flatnonzero(six)
        repeat[rows4] = self._mark4(probe_index[rows4], target[rows4])
        if rows6.size:
            words = np.ascontiguousarray(target6[rows6], dtype=np.uint8).view(">u8")
            ids = self.book6.number(words.astype(np.uint64))
            repeat[rows6] = _mark(self.seen6, _keys(probe_index[rows6], ids))
        return repeat

    def _mark4(
        self, probe_index: NDArray[np.int64], target: NDArray[np.integer[Any]]
    ) -> NDArray[np.bool_]:
        if target.size:
            self.any_probe |= BitMap(target.astype(np.uint32))
        return _mark(self.seen, _keys(probe_index, target))

    def add(
        self,
        probe_index: NDArray[np.int64],
        target: NDArray[np.integer[Any]],
        target6: NDArray[np.uint8] | None = None,
        af: NDArray[np.integer[Any]] | None = None,
    ) -> None:
        """Remember answers from an earlier run (``--resume``)."""
        self.mark(probe_index, target, target6, af)

    def distinct(self, probe_index: int) -> int:
        """How many distinct targets (both families) answered probe ``probe_index``."""
        low = probe_index << 32
        return int(
            self.seen.range_cardinality(low, low + (1 << 32))
            + self.seen6.range_cardinality(low, low + (1 << 32))
        )

    def answered(self) -> int:
        """How many distinct targets (both families) answered any probe."""
        return len(self.any_probe) + len(self.book6)


def _keys(probe_index: NDArray[np.int64], target: NDArray[np.integer[Any]]) -> NDArray[np.uint64]:
    """``probe << 32 | target`` (an IPv4 address, or an IPv6 target's id)."""
    return (probe_index.astype(np.uint64) << np.uint64(32)) | target.astype(np.uint64)


def _mark(seen: BitMap64, keys: NDArray[np.uint64]) -> NDArray[np.bool_]:
    """Which ``keys`` were seen before (or earlier in the batch); adds them to ``seen``."""
    if keys.size == 0:
        return np.zeros(0, dtype=np.bool_)
    batch = BitMap64(keys)
    before = np.array(batch & seen, dtype=np.uint64)
    repeat = np.isin(keys, before) if before.size else np.zeros(keys.size, dtype=np.bool_)
    _, first = np.unique(keys, return_index=True)
    later_in_batch = np.ones(keys.size, dtype=np.bool_)
    later_in_batch[first] = False
    seen |= batch
    return repeat | later_in_batch


_APP_NAMES = pa.array(APP_CATEGORIES, pa.string())
_APP_CODES = np.isin(
    np.arange(len(REPLY_CATEGORIES)), [REPLY_CATEGORIES.index(c) for c in APP_CATEGORIES]
)


def addresses6(column: pa.Array[Any] | pa.ChunkedArray[Any]) -> NDArray[np.uint8]:
    """A ``binary(16)`` address column as ``(n, 16)`` uint8 (zeros where null)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    filled = pc.fill_null(column, pa.scalar(bytes(16), column.type))
    assert isinstance(filled, pa.FixedSizeBinaryArray)
    data = filled.buffers()[1]
    raw = np.frombuffer(memoryview(data), np.uint8) if data is not None else np.zeros(0, np.uint8)
    start = filled.offset * 16
    return raw[start : start + 16 * len(filled)].reshape(-1, 16)


def probe_indices(batch: pa.RecordBatch, names: Sequence[str]) -> NDArray[np.int64]:
    """Each record's probe as its index in ``names`` (-1 for a probe not in the scan): for
    records read back from a file, whose dictionary may differ from the scan's."""
    column = batch.column("probe")
    encoded = column if isinstance(column, pa.DictionaryArray) else pc.dictionary_encode(column)
    assert isinstance(encoded, pa.DictionaryArray)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    labels = [str(label) for label in encoded.dictionary.to_pylist()]
    lookup = np.array([names.index(n) if n in names else -1 for n in labels], np.int64)
    indices: NDArray[np.int64] = lookup[codes]
    return indices


class ReplyPipeline:
    """Frames in, reply records out, with repeats marked and everything counted.

    ``replies_by_category[p, c]``: valid replies to probe ``p`` of category ``c``;
    ``repeats.distinct(p)``: distinct targets that answered ``p``; ``records``: rows made.
    """

    def __init__(self, ctx: ScanContext, probes: Sequence[Probe]) -> None:
        self.classifier = ReplyClassifier(ctx, probes)
        self.names = [probe.name for probe in probes]
        self.repeats = RepeatTracker()
        self.replies_by_category = np.zeros((len(probes), len(REPLY_CATEGORIES)), dtype=np.int64)
        self.records = 0
        self.last: Replies = {}
        """The integer reply columns of the latest batch (the follow-ups read them)."""

    def remember(self, earlier: pa.RecordBatch) -> None:
        """Replies an interrupted run already wrote (``--resume``): later ones are repeats."""
        target = earlier.column("target").to_numpy()
        names = earlier.schema.names
        probe = probe_indices(earlier, self.names)
        if "reply" in names:
            app = pc.is_in(earlier.column("reply").cast(pa.string()), value_set=_APP_NAMES)
            probe = np.where(
                app.to_numpy(zero_copy_only=False) & (probe >= 0), probe + len(self.names), probe
            )
        if "af" not in names or "target6" not in names:
            self.repeats.add(probe, target)
            return
        af = earlier.column("af").to_numpy()
        target6 = addresses6(earlier.column("target6"))
        self.repeats.add(probe, target, target6, af)

    def run(
        self,
        frames: NDArray[np.uint8],
        lengths: NDArray[np.integer[Any]],
        ts_ns: NDArray[np.int64],
    ) -> pa.RecordBatch:
        """Records of one batch of frames (``REPLY_SCHEMA``, input order)."""
        replies = self.classifier.classify_columns(frames, lengths, ts_ns)
        self.last = replies
        keyed = np.where(
            _APP_CODES[replies["reply"]], replies["probe"] + len(self.names), replies["probe"]
        )
        repeat = self.repeats.mark(
            keyed, replies["target"], replies.get("target6"), replies.get("af")
        )
        pairs = replies["probe"] * len(REPLY_CATEGORIES) + replies["reply"]
        counts = np.bincount(pairs, minlength=self.replies_by_category.size)
        self.replies_by_category += counts.reshape(self.replies_by_category.shape)
        self.records += repeat.size
        return self.classifier.records(replies, repeat)

    @property
    def counters(self) -> dict[str, int]:
        """The classifier's frame counters (valid, and every drop reason)."""
        return self.classifier.counters

    def replies_per_probe(self) -> NDArray[np.int64]:
        """Valid replies per probe (all categories)."""
        total: NDArray[np.int64] = self.replies_by_category.sum(axis=1)
        return total

    def categories(self) -> dict[str, dict[str, int]]:
        """``{probe: {category: replies}}``, the categories that occurred."""
        return {
            name: {
                REPLY_CATEGORIES[c]: int(self.replies_by_category[p, c])
                for c in np.flatnonzero(self.replies_by_category[p])
            }
            for p, name in enumerate(self.names)
        }
