"""Islands first, then blocks: keep an island VP from turning every block into a peninsula.

A VP on an island sees every block down while the other VPs see them up, so the block detector
alone reports a peninsula for each block the island VP measures (and the island VP's own block,
seen down by everyone else, looks like a peninsula too). :func:`detect_with_island_mask` runs the
detectors once to find the islands, sets the island VP's observations, and every VP's
observations of that VP's own block, to ``unknown`` for the island's duration
(:func:`mask_islands`), and runs the block detector again on what is left. Its events are the
second pass's outages and peninsulas plus the first pass's islands. ``unknown`` does not vote,
so masking removes only the island's view, never another VP's evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from liveness.reach.detect import Detection, DetectParams, detect
from liveness.reach.observation import OBSERVATION_SCHEMA

__all__ = ["detect_with_island_mask", "mask_islands"]


def _codes(column: pa.ChunkedArray[Any]) -> tuple[NDArray[np.int32], Any]:
    """Dictionary indices and the dictionary (an Arrow string array) of a string column."""
    array: Any = column.combine_chunks()
    if not pa.types.is_dictionary(array.type):
        array = array.dictionary_encode()
    indices = array.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return indices, array.dictionary.cast(pa.string())


def _code_of(names: Any, name: str | None) -> int:
    """The index of ``name`` in the dictionary ``names``; -1 when absent (or None)."""
    return -1 if name is None else int(pc.index(names, pa.scalar(name, pa.string())).as_py())


def _encoded(codes: NDArray[np.int32], names: Any) -> pa.DictionaryArray[Any, Any]:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), names)


def mask_islands(
    obs: pa.Table, islands: pa.Table, vp_blocks: Mapping[str, str] | None = None
) -> pa.Table:
    """``obs`` with each island VP's rows, and every VP's rows of that VP's own block (from
    ``vp_blocks``), ``unknown`` while its island lasts; rows crossing the island's start or
    end are split there. ``islands`` is an event table (only ``island`` rows are used)."""
    if obs.num_rows == 0 or islands.num_rows == 0:
        return obs
    vp, vp_names = _codes(obs.column("vp"))
    target, target_names = _codes(obs.column("target"))
    status, status_names = _codes(obs.column("status"))
    unknown = _code_of(status_names, "unknown")
    if unknown < 0:
        unknown = len(status_names)
        status_names = pa.concat_arrays([status_names, pa.array(["unknown"], pa.string())])
    af = obs.column("af").to_numpy()
    t0, t1 = obs.column("t0").to_numpy(), obs.column("t1").to_numpy()
    own = dict(vp_blocks or {})
    for event in islands.select(["kind", "scope", "af", "start", "end"]).to_pylist():
        island_vp = str(event["scope"])
        island_code = _code_of(vp_names, island_vp)
        if str(event["kind"]) != "island" or island_code < 0:
            continue
        start, end = int(event["start"]), int(event["end"])
        concerned = vp == island_code
        own_code = _code_of(target_names, own.get(island_vp))
        if own_code >= 0:
            concerned |= target == own_code
        hit = np.flatnonzero(concerned & (af == event["af"]) & (t0 < end) & (t1 > start))
        if not hit.size:
            continue
        # Rows crossing the island's edges add rows: the part after the island keeps its
        # status, and a row starting before the island is cut at its start with the part
        # inside added as an unknown row. The concatenation that appends them is also the
        # one copy of the columns (the first time, they are Arrow's and read-only); the
        # masking itself then edits rows in place.
        first, last, was = t0[hit], t1[hit], status[hit]
        inside_first, inside_last = np.maximum(first, start), np.minimum(last, end)
        after, before = last > end, first < start
        rows = np.concatenate([hit[after], hit[before]])
        vp, target, af = (np.concatenate([column, column[rows]]) for column in (vp, target, af))
        t0 = np.concatenate([t0, np.full(after.sum(), end, np.int64), inside_first[before]])
        t1 = np.concatenate([t1, last[after], inside_last[before]])
        added_unknown = np.full(before.sum(), unknown, np.int32)
        status = np.concatenate([status, was[after], added_unknown]).astype(np.int32, copy=False)
        t1[hit[before]] = start
        moved = hit[~before]
        t0[moved], t1[moved], status[moved] = inside_first[~before], inside_last[~before], unknown
    return pa.Table.from_arrays(
        [
            _encoded(vp, vp_names),
            _encoded(target, target_names),
            pa.array(af, pa.uint8()),
            pa.array(t0, pa.int64()),
            pa.array(t1, pa.int64()),
            _encoded(status, status_names),
        ],
        schema=OBSERVATION_SCHEMA,
    )


def detect_with_island_mask(
    obs: pa.Table, params: DetectParams | None = None, vp_blocks: Mapping[str, str] | None = None
) -> Detection:
    """Islands from the VP detector, then outages and peninsulas with the islands masked
    (:func:`mask_islands`); the per-VP summary is the first pass's. One pass when there is
    no island."""
    first = detect(obs, params, vp_blocks)
    islands = first.events.filter(_is_island(first.events))
    if islands.num_rows == 0:
        return first
    vp_summary, intervals = first.vp_summary, first.intervals
    del first  # its block events are superseded: free them before the second pass
    masked = mask_islands(obs, islands, vp_blocks)
    events = detect(masked, params, vp_blocks).events
    del masked
    blocks = events.filter(~_is_island(events))
    # detect() lists block events, then islands: the concatenation keeps its order. The
    # chunks keep their own dictionaries (as detect's do); unifying 1M block names costs
    # seconds and buys nothing.
    return Detection(pa.concat_tables([blocks, islands]), vp_summary, intervals)


def _is_island(events: pa.Table) -> NDArray[np.bool_]:
    """Which rows of an event table (``kind`` dictionary-encoded) are islands."""
    masks = [np.zeros(0, dtype=bool)]
    chunks: list[Any] = events.column("kind").chunks
    for chunk in chunks:
        names = chunk.dictionary.to_pylist()
        code = names.index("island") if "island" in names else -1
        masks.append(chunk.indices.to_numpy(zero_copy_only=False) == code)
    return np.concatenate(masks)
