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
from numpy.typing import NDArray

from liveness.reach.detect import Detection, DetectParams, detect, sort_events
from liveness.reach.observation import OBSERVATION_SCHEMA

__all__ = ["detect_with_island_mask", "mask_islands"]


def _codes(column: pa.ChunkedArray[Any]) -> tuple[NDArray[np.int32], list[str]]:
    """Dictionary indices and names of a string (or dictionary) column."""
    array: Any = column.combine_chunks()
    if not pa.types.is_dictionary(array.type):
        array = array.dictionary_encode()
    indices = array.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    return indices, [str(name) for name in array.dictionary.to_pylist()]


def _encoded(codes: NDArray[np.int32], names: list[str]) -> pa.DictionaryArray[Any, Any]:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(names, pa.string()))


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
    if "unknown" not in status_names:
        status_names = [*status_names, "unknown"]
    unknown = status_names.index("unknown")
    af = obs.column("af").to_numpy()
    t0, t1 = obs.column("t0").to_numpy(), obs.column("t1").to_numpy()
    vp_code = {name: code for code, name in enumerate(vp_names)}
    target_code = {name: code for code, name in enumerate(target_names)}
    own = dict(vp_blocks or {})
    for event in islands.select(["kind", "scope", "af", "start", "end"]).to_pylist():
        island_vp = str(event["scope"])
        if str(event["kind"]) != "island" or island_vp not in vp_code:
            continue
        start, end = int(event["start"]), int(event["end"])
        concerned = vp == vp_code[island_vp]
        if own.get(island_vp) in target_code:
            concerned |= target == target_code[own[island_vp]]
        hit = concerned & (af == event["af"]) & (t0 < end) & (t1 > start)
        if not hit.any():
            continue
        keep, before, after = ~hit, hit & (t0 < start), hit & (t1 > end)
        pieces = [
            (keep, t0[keep], t1[keep], status[keep]),
            (before, t0[before], np.full(before.sum(), start), status[before]),
            (hit, np.maximum(t0[hit], start), np.minimum(t1[hit], end),
             np.full(hit.sum(), unknown, np.int32)),
            (after, np.full(after.sum(), end), t1[after], status[after]),
        ]  # fmt: skip
        vp = np.concatenate([vp[rows] for rows, *_ in pieces])
        target = np.concatenate([target[rows] for rows, *_ in pieces])
        af = np.concatenate([af[rows] for rows, *_ in pieces])
        t0 = np.concatenate([piece[1] for piece in pieces]).astype(np.int64)
        t1 = np.concatenate([piece[2] for piece in pieces]).astype(np.int64)
        status = np.concatenate([piece[3] for piece in pieces]).astype(np.int32)
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
    kinds = first.events.column("kind").cast(pa.string()).to_numpy(zero_copy_only=False)
    is_island = pa.array(kinds == "island", pa.bool_())
    islands = first.events.filter(is_island)
    if islands.num_rows == 0:
        return first
    second = detect(mask_islands(obs, islands, vp_blocks), params, vp_blocks)
    second_kinds = second.events.column("kind").cast(pa.string()).to_numpy(zero_copy_only=False)
    blocks = second.events.filter(pa.array(second_kinds != "island", pa.bool_()))
    events = pa.concat_tables([blocks, islands], promote_options="permissive")
    return Detection(sort_events(events.unify_dictionaries()), first.vp_summary, first.intervals)
