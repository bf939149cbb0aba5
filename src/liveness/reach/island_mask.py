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

from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from liveness.reach.detect import (
    UNKNOWN,
    Detection,
    DetectParams,
    VpBlocks,
    coded_observations,
    detect,
    dictionary_of,
    own_block_codes,
)
from liveness.reach.observation import OBSERVATION_SCHEMA, STATUSES

__all__ = ["detect_with_island_mask", "mask_islands"]

I64 = NDArray[np.int64]


def _island_edges(islands: pa.Table) -> dict[tuple[str, int], I64]:
    """Per (island VP, address family), its islands merged into sorted disjoint spans, as the
    flat edge array ``[start0, end0, start1, end1, ...]``."""
    spans: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for event in islands.select(["kind", "scope", "af", "start", "end"]).to_pylist():
        if str(event["kind"]) == "island" and event["end"] > event["start"]:
            key = (str(event["scope"]), int(event["af"]))
            spans.setdefault(key, []).append((int(event["start"]), int(event["end"])))
    edges: dict[tuple[str, int], I64] = {}
    for key, pairs in spans.items():
        merged: list[list[int]] = []
        for start, end in sorted(pairs):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        edges[key] = np.asarray(merged, dtype=np.int64).ravel()
    return edges


def mask_islands(obs: pa.Table, islands: pa.Table, vp_blocks: VpBlocks | None = None) -> pa.Table:
    """``obs`` with each island VP's rows, and every VP's rows of that VP's own block (from
    ``vp_blocks``, compared in canonical CIDR form), ``unknown`` while its islands last; rows
    crossing an island's start or end are split there. ``islands`` is an event table (only
    ``island`` rows are used).

    One vectorised pass per island VP, whatever its number of islands: each concerned row is
    cut at the island edges inside it (``searchsorted`` on the merged edges), and a piece is
    inside an island when an odd number of edges lie at or before its start.
    """
    edges_of = _island_edges(islands)
    if obs.num_rows == 0 or not edges_of:
        return obs
    coded = coded_observations(obs)
    vp, target, af, t0, t1 = coded.vp, coded.target, coded.af, coded.t0, coded.t1
    known = {name: code for code, name in enumerate(coded.vp_names)}
    blocks = {name: block for name, block in (vp_blocks or {}).items() if name in known}
    own_of = {
        family: own_block_codes(coded.vp_names, coded.target_names, blocks, family)
        for family in {island_af for _, island_af in edges_of}
    }
    status = coded.status.copy()  # edited in place below
    for (island_vp, island_af), edges in edges_of.items():
        code = known.get(island_vp, -1)
        if code < 0:
            continue
        own = own_of[island_af]  # the island's family: an IPv6 island masks its IPv6 block
        concerned = vp == code
        if own[code] >= 0:
            concerned |= target == own[code]
        rows = np.flatnonzero(concerned & (af == island_af))
        first, last = t0[rows], t1[rows]
        before_first = np.searchsorted(edges, first, side="right")  # edges at or before t0
        before_last = np.searchsorted(edges, last, side="left")  # edges before t1
        cuts = before_last - before_first  # edges strictly inside (t0, t1)
        status[rows[(cuts == 0) & (before_first % 2 == 1)]] = UNKNOWN  # wholly inside
        split = cuts > 0
        if not split.any():
            continue
        rows, first, last, base = rows[split], first[split], last[split], before_first[split]
        pieces = cuts[split] + 1
        source = np.repeat(rows, pieces)
        offset = np.arange(int(pieces.sum())) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        edge_at = np.repeat(base, pieces) + offset  # edges at or before each piece's start
        starts = np.where(offset == 0, np.repeat(first, pieces), edges[edge_at - 1])
        is_last = offset == np.repeat(pieces - 1, pieces)
        ends = np.where(
            is_last, np.repeat(last, pieces), edges[np.minimum(edge_at, edges.size - 1)]
        )
        pieces_status = np.where(edge_at % 2 == 1, UNKNOWN, status[source]).astype(np.int8)
        keep = np.ones(vp.size, dtype=bool)
        keep[rows] = False
        vp, target, af = (np.concatenate([col[keep], col[source]]) for col in (vp, target, af))
        t0 = np.concatenate([t0[keep], starts])
        t1 = np.concatenate([t1[keep], ends])
        status = np.concatenate([status[keep], pieces_status])
    return pa.Table.from_arrays(
        [
            dictionary_of(vp, pa.array(coded.vp_names, pa.string())),
            dictionary_of(target, coded.target_names),
            pa.array(af, pa.uint8()),
            pa.array(t0, pa.int64()),
            pa.array(t1, pa.int64()),
            dictionary_of(status, pa.array(STATUSES, pa.string())),  # codes are STATUSES'
        ],
        schema=OBSERVATION_SCHEMA,
    )


def detect_with_island_mask(
    obs: pa.Table, params: DetectParams | None = None, vp_blocks: VpBlocks | None = None
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
