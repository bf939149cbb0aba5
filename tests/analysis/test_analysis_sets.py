"""The set helpers: /24 masking (also the chunked path for huge sets), the bounded union cache."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_replies import WriteReplies, reply_table
from handmade_rows import ROWS
from pyroaring import BitMap

from liveness.analysis import sets as sets_module
from liveness.analysis.partial import Reducer, reduce_file
from liveness.analysis.sets import ReplySets, mask24
from liveness.analysis.taxonomy import ALL_PROBES, REPLY_KINDS


@pytest.mark.parametrize("chunk", [1 << 24, 4])
def test_mask24_matches_python(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sets_module, "_MASK_CHUNK", chunk)
    values = np.random.default_rng(5).integers(0, 2**32, size=2000, dtype=np.uint32)
    assert set(mask24(BitMap(values.tolist()))) == {int(v) >> 8 for v in values}


def test_tiny_cache_gives_the_same_sets(write_replies: WriteReplies) -> None:
    partial = reduce_file(write_replies(ROWS, "scan.parquet")).ipv4
    roomy, tiny = ReplySets(partial), ReplySets(partial, cache_bytes=1)
    queries = [([p], [k]) for p in ALL_PROBES for k in REPLY_KINDS] + [(None, REPLY_KINDS)]
    for _ in range(2):  # the second round hits the roomy cache, misses the tiny one
        for probes, kinds in queries:
            assert roomy.responders(probes, kinds) == tiny.responders(probes, kinds)
    assert len(tiny._cache) <= 1


def test_reducer_gives_the_same_bitmaps_however_batches_are_flushed() -> None:
    table = reply_table(ROWS)
    whole = Reducer("whole")
    whole.add(table.to_batches()[0])
    expected = whole.finish()
    small = Reducer("small")
    small.FLUSH_EVERY = 2
    for batch in table.to_batches(max_chunksize=3):
        small.add(batch)
    got = small.finish()
    assert got.responders == expected.responders
    assert got.error_targets == expected.error_targets
    assert (got.class_rows == expected.class_rows).all() and got.rows == expected.rows
