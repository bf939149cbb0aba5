"""The reply pipeline: classify -> mark repeats -> count -> record batch, on integer probe ids.

One pipeline serves the live receiver (frames from the ring) and ``liveness decode`` (frames
from a capture), so both mark the same replies as repeats and count them the same way. The
probe stays an integer (its index in the scan's probe list) from the classifier to the record
batch: repeats are keyed ``probe << 32 | target`` in a 64-bit roaring bitmap, and the counters
are ``bincount``s, with no per-row Python and no round trip through probe names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from pyroaring import BitMap, BitMap64

from liveness.output.schema import REPLY_CATEGORIES
from liveness.probes.base import Probe
from liveness.probes.classify import ReplyClassifier
from liveness.probes.context import ScanContext

__all__ = ["RepeatTracker", "ReplyPipeline", "probe_indices"]


class RepeatTracker:
    """Marks replies whose (probe, target) answered before, over the whole scan.

    Keys are ``probe_index << 32 | target`` in a 64-bit roaring bitmap: memory follows the number
    of distinct answers, and the whole batch is checked with set operations, not a row loop.
    """

    def __init__(self) -> None:
        self.seen = BitMap64()
        self.any_probe = BitMap()

    def mark(
        self, probe_index: NDArray[np.int64], target: NDArray[np.integer[Any]]
    ) -> NDArray[np.bool_]:
        """Repeat flags for a batch (in order), and remember the batch."""
        keys = (probe_index.astype(np.uint64) << np.uint64(32)) | target.astype(np.uint64)
        if keys.size == 0:
            return np.zeros(0, dtype=np.bool_)
        batch = BitMap64(keys)
        before = np.array(batch & self.seen, dtype=np.uint64)
        repeat = np.isin(keys, before) if before.size else np.zeros(keys.size, dtype=np.bool_)
        _, first = np.unique(keys, return_index=True)
        later_in_batch = np.ones(keys.size, dtype=np.bool_)
        later_in_batch[first] = False
        self.seen |= batch
        self.any_probe |= BitMap(target.astype(np.uint32))
        return repeat | later_in_batch

    def add(self, probe_index: NDArray[np.int64], target: NDArray[np.integer[Any]]) -> None:
        """Remember answers from an earlier run (``--resume``)."""
        keys = (probe_index.astype(np.uint64) << np.uint64(32)) | target.astype(np.uint64)
        self.seen |= BitMap64(keys)
        self.any_probe |= BitMap(target.astype(np.uint32))

    def distinct(self, probe_index: int) -> int:
        """How many distinct targets answered probe ``probe_index``."""
        low = probe_index << 32
        return int(self.seen.range_cardinality(low, low + (1 << 32)))


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

    def remember(self, earlier: pa.RecordBatch) -> None:
        """Replies an interrupted run already wrote (``--resume``): later ones are repeats."""
        self.repeats.add(probe_indices(earlier, self.names), earlier.column("target").to_numpy())

    def run(
        self,
        frames: NDArray[np.uint8],
        lengths: NDArray[np.integer[Any]],
        ts_ns: NDArray[np.int64],
    ) -> pa.RecordBatch:
        """Records of one batch of frames (``REPLY_SCHEMA``, input order)."""
        replies = self.classifier.classify_columns(frames, lengths, ts_ns)
        repeat = self.repeats.mark(replies["probe"], replies["target"])
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
