"""Which detector a set of observations needs, and a summary of what it found.

Atlas results (DNS root letters per probe) go to the per-probe Atlas detector; block
observations (Trinocular files, scans, the monitor) to the block detector, islands found first
and masked (:mod:`liveness.reach.island_mask`) unless asked not to. Used by ``reach detect``,
``reach report`` and the connectivity demo alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from liveness.reach.atlas_islands import AtlasParams, detect_atlas
from liveness.reach.detect import Detection, DetectParams, VpBlocks, detect
from liveness.reach.island_mask import detect_with_island_mask

__all__ = ["detection_summary", "is_atlas", "run_detection"]


def is_atlas(obs: pa.Table, kind: str, paths: Sequence[str] = ()) -> bool:
    """Whether to use the Atlas per-probe detector.

    Yes when asked for (``--kind atlas``), when every file is Atlas results (``auto``), or when
    every target is a DNS root letter (Observation Parquet of Atlas data).
    """
    if kind not in ("auto", "observation"):
        return kind == "atlas"
    if kind == "auto" and paths:
        from liveness.reach.readers import detect_kind

        if all(detect_kind(path) == "atlas" for path in paths):
            return True
    if obs.num_rows == 0:
        return False
    names: Any = obs.column("target").combine_chunks()
    values = names.dictionary if pa.types.is_dictionary(names.type) else names.unique()
    return all(str(name).endswith(".root") for name in values.to_pylist())


def run_detection(
    obs: pa.Table,
    atlas: bool,
    params: DetectParams,
    atlas_params: AtlasParams,
    vp_blocks: VpBlocks,
    island_mask: bool = True,
) -> Detection:
    """The right detector for the observations (blocks: islands masked unless told not to)."""
    if atlas:
        return detect_atlas(obs, atlas_params)
    if island_mask:
        return detect_with_island_mask(obs, params, vp_blocks)
    return detect(obs, params, vp_blocks)


def detection_summary(found: Detection) -> dict[str, Any]:
    """Counts per kind and total seconds, JSON-ready: over both families (``by_kind``, as
    before IPv6) and per family (``by_af``: ``"4"`` and ``"6"``, each ``events`` and
    ``by_kind``)."""
    kinds = [str(k) for k in found.events.column("kind").to_pylist()]
    durations = [int(d or 0) for d in found.events.column("duration").to_pylist()]
    families = [int(af) for af in found.events.column("af").to_numpy().tolist()]
    by_kind: dict[str, dict[str, int]] = {}
    by_af: dict[str, dict[str, Any]] = {str(af): {"events": 0, "by_kind": {}} for af in (4, 6)}
    for kind, duration, af in zip(kinds, durations, families, strict=True):
        family = by_af.setdefault(str(af), {"events": 0, "by_kind": {}})
        family["events"] += 1
        for counts in (by_kind, family["by_kind"]):
            entry = counts.setdefault(kind, {"events": 0, "seconds": 0})
            entry["events"] += 1
            entry["seconds"] += duration
    return {
        "intervals": found.intervals,
        "events": found.events.num_rows,
        "by_kind": by_kind,
        "by_af": by_af,
    }
