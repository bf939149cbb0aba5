"""Observations from ``liveness scan`` outputs (reply records) of several VPs, both families.

Each scan file is one round per VP in it: from its first reply, rounded down to a multiple of
``round_s`` (Trinocular's 11 minutes by default), to its last, rounded up (at least one round).
A block is **up** for the VP in that round when any address in it answered the VP itself: a
reply whose ``responder`` is its ``target`` (network-alive, DESIGN.md; an ICMP error from a
router says nothing about the target's block). Blocks are IPv4 ``/block_prefix`` (default /24)
and IPv6 ``/block_prefix6`` (default /48), named as :mod:`liveness.reach.blocks` says
(``198.18.0.0/24``, ``2001:db8:1::/48``) with ``af`` 4 or 6. Silence says nothing unless the
caller says what was probed (``probed_blocks``, ``probed_blocks6``): then every probed block
of that family that did not answer is **down** for that round. ``probed_blocks="seen"`` takes,
per family, every block named in any reply of any of the files: when several VPs scan the same
targets, a block that answered one VP was probed by all. A VP's scan file says something about
a family only if it holds a reply of that family (an IPv4-only scan makes no IPv6 observation,
not every IPv6 block down). Successive scans of one VP with the same status join into one
interval; a time between scans is a hole.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from liveness.errors import InputError
from liveness.output.schema import REPLY_SCHEMA
from liveness.reach.blocks import block_keys6, block_names6, check_prefixes
from liveness.reach.observation import OBSERVATION_SCHEMA
from liveness.reach.runs import DOWN, UP, merge_intervals, observation_table
from liveness.reach.trinocular import ROUND_S, block_names
from liveness.targets.inputs import excerpt

__all__ = ["observations_from_scans", "read_scan_replies"]

PathLike = str | os.PathLike[str]
_COLUMNS = ("ts", "target", "responder", "vp")
U64 = npt.NDArray[np.uint64]


def read_scan_replies(path: PathLike) -> pa.Table:
    """The reply records of one scan output (Parquet; CSV or JSON lines through the output layer).

    Rows of both families: ``af`` says which (files without it are IPv4), IPv6 addresses are in
    ``target6`` and ``responder6``. Uses ``liveness.output.read_replies`` when the output layer
    provides it, else pyarrow.
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
    if "af" in table.column_names and bool((table["af"].to_numpy() == 6).any()):
        lacking = [name for name in ("target6", "responder6") if name not in table.column_names]
        if lacking:
            raise InputError(f"{path}: IPv6 replies but no column(s) {', '.join(lacking)}")
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


@dataclass(frozen=True)
class _Round:
    """One VP's round in one scan file, for one family: its blocks that answered and all named."""

    af: int
    vp: int
    t0: int
    t1: int
    up: U64
    seen: U64


def _is6(table: pa.Table) -> npt.NDArray[np.bool_]:
    if "af" not in table.column_names:
        return np.zeros(table.num_rows, bool)
    is6: npt.NDArray[np.bool_] = np.asarray(table["af"].to_numpy() == 6)
    return is6


def _v6_bytes(column: Any) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    """A ``binary(16)`` column as ``(n, 16)`` bytes and its validity."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    array = array.cast(pa.binary(16))
    valid: npt.NDArray[np.bool_] = np.asarray(array.is_valid().to_numpy(zero_copy_only=False))
    data = array.buffers()[1]
    if data is None or len(array) == 0:
        return np.zeros((len(array), 16), np.uint8), valid
    flat = np.frombuffer(memoryview(data), np.uint8)
    return flat[array.offset * 16 : (array.offset + len(array)) * 16].reshape(-1, 16), valid


def _block_keys(
    table: pa.Table, is6: npt.NDArray[np.bool_], prefix: int, prefix6: int
) -> tuple[U64, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Per row: its block key in its family, whether it answered from the target, and whether
    it is usable (an IPv6 row needs its ``target6``)."""
    zero = pa.scalar(0, pa.uint32())
    target = np.asarray(pc.fill_null(table["target"], zero))
    responder = np.asarray(pc.fill_null(table["responder"], zero))
    v4 = ~is6
    key = np.zeros(table.num_rows, np.uint64)
    alive = np.zeros(table.num_rows, bool)
    usable = v4.copy()
    if v4.any():
        t4 = target[v4].astype(np.uint32)
        key[v4] = (t4 >> np.uint32(32 - prefix)).astype(np.uint64)
        alive[v4] = t4 == responder[v4].astype(np.uint32)
    if is6.any():
        rows = np.flatnonzero(is6)
        part = table.take(rows)
        t6, t6_ok = _v6_bytes(part["target6"])
        r6, r6_ok = _v6_bytes(part["responder6"])
        key[rows] = block_keys6(t6, prefix6)
        alive[rows] = t6_ok & r6_ok & (t6 == r6).all(axis=1)
        usable[rows] = t6_ok
    return key, alive, usable


def _scan_rounds(
    table: pa.Table, vp_index: npt.NDArray[np.int64], round_s: int, prefix: int, prefix6: int
) -> list[_Round]:
    """Per VP in one scan file and per family it has replies of: its round and blocks."""
    seconds = table["ts"].to_numpy().astype(np.int64) // 1_000_000_000
    is6 = _is6(table)
    key, alive, usable = _block_keys(table, is6, prefix, prefix6)
    rounds = []
    for index in np.unique(vp_index).tolist():
        mine = vp_index == index
        t0 = int(seconds[mine].min()) // round_s * round_s
        t1 = max(t0 + round_s, -(-(int(seconds[mine].max()) + 1) // round_s) * round_s)
        for af, of_af in ((4, ~is6), (6, is6)):
            rows = mine & of_af & usable
            if rows.any():
                rounds.append(
                    _Round(af, index, t0, t1, np.unique(key[rows & alive]), np.unique(key[rows]))
                )
    return rounds


def _probed_keys(
    given: npt.ArrayLike | Literal["seen"] | None,
    af: int,
    rounds: list[_Round],
    prefix: int,
    prefix6: int,
) -> U64 | None:
    """The probed blocks of one family as sorted keys (None: silence says nothing)."""
    if given is None:
        return None
    if isinstance(given, str):
        return np.unique(np.concatenate([r.seen for r in rounds] or [np.zeros(0, np.uint64)]))
    if af == 4:
        return np.unique(np.asarray(given, dtype=np.uint32) >> np.uint32(32 - prefix)).astype(
            np.uint64
        )
    if isinstance(given, pa.Array | pa.ChunkedArray) or np.ndim(given) == 2:
        return np.unique(block_keys6(given, prefix6))  # type: ignore[arg-type]
    try:
        return np.unique(block_keys6(pa.array(list(given), pa.binary(16)), prefix6))  # type: ignore[arg-type]
    except (TypeError, pa.ArrowInvalid) as exc:
        raise InputError(
            "probed_blocks6: give 16-byte IPv6 addresses (bytes, binary(16) or (n, 16) uint8)"
        ) from exc


def _family_observations(
    rounds: list[_Round], probed: U64 | None
) -> tuple[npt.NDArray[np.int64], U64, npt.NDArray[np.int64], Any]:
    """One family's runs: (VP index, block key, target index into the keys, runs)."""
    keys = np.unique(
        np.concatenate([r.up for r in rounds] + ([probed] if probed is not None else []))
    )
    width = np.int64(max(1, keys.size))
    series, t0, t1, status = [], [], [], []
    for r in rounds:
        groups = [(r.up, UP)]
        if probed is not None:
            groups.append((np.setdiff1d(probed, r.up, assume_unique=True), DOWN))
        for blocks, code in groups:
            series.append(r.vp * width + np.searchsorted(keys, blocks).astype(np.int64))
            t0.append(np.full(blocks.size, r.t0, dtype=np.int64))
            t1.append(np.full(blocks.size, r.t1, dtype=np.int64))
            status.append(np.full(blocks.size, code, dtype=np.uint8))
    runs = merge_intervals(
        np.concatenate(series), np.concatenate(t0), np.concatenate(t1), np.concatenate(status)
    )
    run_vp, run_block = np.divmod(runs.series, width)
    used, target_index = np.unique(run_block, return_inverse=True)
    return run_vp, keys[used], target_index.astype(np.int64), runs


def observations_from_scans(
    paths: Sequence[PathLike] | PathLike,
    *,
    vp: str | None = None,
    round_s: int = ROUND_S,
    block_prefix: int = 24,
    block_prefix6: int = 48,
    probed_blocks: npt.ArrayLike | Literal["seen"] | None = None,
    probed_blocks6: npt.ArrayLike | pa.Array[Any] | None = None,
) -> pa.Table:
    """Scan outputs as an OBSERVATION_SCHEMA table of both families (see the module docstring).

    ``vp`` names the vantage point of every file (default: the files' ``vp`` column).
    ``probed_blocks``: uint32 addresses (any address in a block names the block) that every
    scan probed, or ``"seen"`` for every block of either family named in any reply of any of
    the files (when the VPs scanned the same targets); ``probed_blocks6``: the IPv6 list,
    16-byte addresses (``bytes``, ``binary(16)`` or ``(n, 16)`` uint8), taking the place of
    ``"seen"`` for IPv6 when both are given. Without them only up
    observations are made (IPv4 rows of IPv4 blocks, IPv6 rows of IPv6 blocks).
    """
    check_prefixes(block_prefix, block_prefix6)
    if round_s < 1:
        raise InputError(f"round_s: {round_s} is not a positive number of seconds")
    if isinstance(probed_blocks, str) and probed_blocks != "seen":
        raise InputError(f"probed_blocks: {excerpt(probed_blocks)} is not 'seen' or a block list")
    path_list: list[PathLike] = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    names: list[str] = []
    rounds: list[_Round] = []
    for path in path_list:
        table = read_scan_replies(path)
        if table.num_rows:
            rounds.extend(
                _scan_rounds(
                    table,
                    _vp_indices(table, vp, path, names),
                    round_s,
                    block_prefix,
                    block_prefix6,
                )
            )
    parts = []
    for af in (4, 6):
        mine = [r for r in rounds if r.af == af]
        given = probed_blocks if af == 4 else probed_blocks6
        if af == 6 and given is None and isinstance(probed_blocks, str):
            given = probed_blocks  # "seen" for both families unless an IPv6 list is given
        if mine:
            probed = _probed_keys(given, af, mine, block_prefix, block_prefix6)
            parts.append((af, *_family_observations(mine, probed)))
    if not parts:
        return OBSERVATION_SCHEMA.empty_table()
    target_names: list[pa.Array[Any]] = []
    offset = 0
    vp_index, target_index, af_column, t0, t1, status = [], [], [], [], [], []
    for af, run_vp, keys, index, runs in parts:
        if af == 4:
            base = (keys.astype(np.uint32) << np.uint32(32 - block_prefix)).astype(np.uint32)
            target_names.append(block_names(base, block_prefix))
        else:
            target_names.append(block_names6(keys, block_prefix6))
        vp_index.append(run_vp)
        target_index.append(index + offset)
        offset += keys.size
        af_column.append(np.full(index.size, af, np.uint8))
        t0.append(runs.t0)
        t1.append(runs.t1)
        status.append(runs.status)
    return observation_table(
        np.concatenate(vp_index),
        names,
        np.concatenate(target_index),
        pa.concat_arrays([name.cast(pa.string()) for name in target_names]),
        np.concatenate(af_column),
        np.concatenate(t0),
        np.concatenate(t1),
        np.concatenate(status),
    )
