"""Observations from ``liveness scan`` outputs (reply records) of several VPs.

Each scan file is one round per VP in it: from its first reply, rounded down to a multiple of
``round_s`` (Trinocular's 11 minutes by default), to its last, rounded up (at least one round).
A block (``/block_prefix``, default /24) is **up** for the VP in that round when any address in
it answered the VP itself: a reply whose ``responder`` is its ``target`` (network-alive,
DESIGN.md; an ICMP error from a router says nothing about the target's block). Silence says
nothing unless the caller says what was probed (``probed_blocks``): then every probed block that
did not answer is **down** for that round. ``probed_blocks="seen"`` takes every block named in
any reply of any of the files: when several VPs scan the same targets, a block that answered one
VP was probed by all. Successive scans of one VP with the same status join into one interval; a
time between scans is a hole.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from liveness.errors import InputError
from liveness.output.schema import REPLY_SCHEMA
from liveness.reach.observation import OBSERVATION_SCHEMA
from liveness.reach.runs import DOWN, UP, merge_intervals, observation_table
from liveness.reach.trinocular import ROUND_S, block_names
from liveness.targets.inputs import excerpt

__all__ = ["observations_from_scans", "read_scan_replies"]

PathLike = str | os.PathLike[str]
_COLUMNS = ("ts", "target", "responder", "vp")


def read_scan_replies(path: PathLike) -> pa.Table:
    """The reply records of one scan output (Parquet; CSV or JSON lines through the output layer).

    Uses ``liveness.output.read_replies`` when the output layer provides it, else pyarrow.
    """
    reader = getattr(importlib.import_module("liveness.output"), "read_replies", None)
    try:
        if reader is not None:
            table = pa.Table.from_batches(list(reader(str(path))), schema=REPLY_SCHEMA)
        else:
            table = pq.read_table(str(path))
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: not a readable reply file: {exc}") from exc
    missing = [name for name in _COLUMNS[:3] if name not in table.column_names]
    if missing:
        raise InputError(f"{path}: reply file lacks column(s) {', '.join(missing)}")
    if "af" in table.column_names:
        # IPv4 observations only, until reach reads IPv6 addresses (their ``target`` is 0).
        table = table.filter(pc.equal(table["af"], pa.scalar(4, pa.uint8())))
    return table


def _vp_indices(
    table: pa.Table, override: str | None, path: PathLike, names: list[str]
) -> npt.NDArray[np.int64]:
    """Per-row indices into ``names`` (extended as needed) of each reply's VP.

    The VP is ``override`` if given, else the ``vp`` column, else the file name's stem.
    """
    fallback = Path(path).name.split(".")[0]

    def intern(name: str) -> int:
        if name not in names:
            names.append(name)
        return names.index(name)

    if override is not None or "vp" not in table.column_names:
        return np.full(table.num_rows, intern(override or fallback), dtype=np.int64)
    column: Any = table["vp"].combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = column.cast(pa.string()).dictionary_encode()
    mapping = np.array(
        [intern(str(name) or fallback) for name in column.dictionary.to_pylist()]
        + [intern(fallback) if column.null_count else -1],
        dtype=np.int64,
    )
    indices = column.indices.fill_null(len(column.dictionary)).to_numpy(zero_copy_only=False)
    rows: npt.NDArray[np.int64] = mapping[indices.astype(np.int64)]
    return rows


def _scan_rounds(
    table: pa.Table, vp_index: npt.NDArray[np.int64], round_s: int, shift: np.uint32
) -> list[tuple[int, int, int, npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    """Per VP in one scan file: (vp, t0, t1, answering blocks, blocks seen in any reply)."""
    seconds = table["ts"].to_numpy().astype(np.int64) // 1_000_000_000
    target = table["target"].to_numpy().astype(np.uint32)
    alive = target == table["responder"].to_numpy().astype(np.uint32)
    block = (target >> shift).astype(np.int64)
    scans = []
    for index in np.unique(vp_index).tolist():
        mine = vp_index == index
        t0 = int(seconds[mine].min()) // round_s * round_s
        t1 = max(t0 + round_s, -(-(int(seconds[mine].max()) + 1) // round_s) * round_s)
        scans.append((index, t0, t1, np.unique(block[mine & alive]), np.unique(block[mine])))
    return scans


def observations_from_scans(
    paths: Sequence[PathLike] | PathLike,
    *,
    vp: str | None = None,
    round_s: int = ROUND_S,
    block_prefix: int = 24,
    probed_blocks: npt.ArrayLike | Literal["seen"] | None = None,
) -> pa.Table:
    """Scan outputs as an OBSERVATION_SCHEMA table (see the module docstring).

    ``vp`` names the vantage point of every file (default: the files' ``vp`` column).
    ``probed_blocks``: uint32 addresses (any address in a block names the block) that every
    scan probed, or ``"seen"`` for every block named in any reply of any of the files (when
    the VPs scanned the same targets); without it only up observations are made.
    """
    if not 8 <= block_prefix <= 32:
        raise InputError(f"block_prefix: {block_prefix} is not between 8 and 32")
    if round_s < 1:
        raise InputError(f"round_s: {round_s} is not a positive number of seconds")
    path_list: list[PathLike] = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    shift = np.uint32(32 - block_prefix)
    names: list[str] = []
    scans = []
    for path in path_list:
        table = read_scan_replies(path)
        if table.num_rows:
            scans.extend(_scan_rounds(table, _vp_indices(table, vp, path, names), round_s, shift))
    if not scans:
        return OBSERVATION_SCHEMA.empty_table()
    if isinstance(probed_blocks, str):
        if probed_blocks != "seen":
            raise InputError(
                f"probed_blocks: {excerpt(probed_blocks)} is not 'seen' or a block list"
            )
        probed = np.unique(np.concatenate([seen for *_, seen in scans]))
    elif probed_blocks is not None:
        probed = np.unique(np.asarray(probed_blocks, dtype=np.uint32) >> shift).astype(np.int64)
    width = np.int64(1) << np.int64(block_prefix)
    series, t0, t1, status = [], [], [], []
    for index, start, end, up, _ in scans:
        groups = [(up, UP)]
        if probed_blocks is not None:
            groups.append((np.setdiff1d(probed, up, assume_unique=True), DOWN))
        for blocks, code in groups:
            series.append(index * width + blocks)
            t0.append(np.full(blocks.size, start, dtype=np.int64))
            t1.append(np.full(blocks.size, end, dtype=np.int64))
            status.append(np.full(blocks.size, code, dtype=np.uint8))
    runs = merge_intervals(
        np.concatenate(series), np.concatenate(t0), np.concatenate(t1), np.concatenate(status)
    )
    run_vp, run_block = np.divmod(runs.series, width)
    unique_blocks, target_index = np.unique(
        (run_block.astype(np.uint32) << shift).astype(np.uint32), return_inverse=True
    )
    return observation_table(
        run_vp,
        names,
        target_index,
        block_names(unique_blocks, block_prefix),
        4,
        runs.t0,
        runs.t1,
        runs.status,
    )
