"""Outages, peninsulas and islands from Observation tables (block and vantage-point detectors).

Per block and time: *up* when every VP that measured it saw it up, an *outage* when every one saw
it down, a *peninsula* when some saw it up and some down; ``unknown`` does not vote. Per VP and
time: the share of active blocks (up for some VP) that the VP measured and reached; below
``island_share`` while the VP still reaches its own block, the VP is an *island*; a VP that
measured fewer than ``min_blocks`` blocks is *unmeasurable* instead. Consecutive times of one
kind merge into events; events of one scope and kind at most ``gap`` apart join; events shorter
than ``min_duration`` are dropped.

Everything works on intervals: boundaries are snapped to the round grid (Trinocular's 11-minute
rounds by default, so VPs whose rounds start at different seconds line up), swept once per chunk
of blocks (``intervals.sweep``), and per-VP counts are running sums over the round grid.

Event table (``EVENT_SCHEMA``): ``kind`` (outage / peninsula / island), ``scope`` (the block for
outages and peninsulas, the VP for islands), ``af``, ``start``, ``end`` (exclusive),
``duration`` (seconds), ``vps_up`` and ``vps_down`` (list<string>: VPs that saw the block up or
down at some time in the event; for an island, the VP itself is in ``vps_up``), ``share``: the
lowest reachability seen from the scope during the event (block: up VPs / voting VPs; VP: blocks
reached / active blocks; Atlas probe: letters answered / letters measured). ``kind`` and
``scope`` are dictionary-encoded (no string copies); rows come by address family, then chunk of
blocks and kind, then block and start, islands last (``sort_events`` orders them by time).
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.output.schema import STRING_DICT
from liveness.reach.blocks import block_af
from liveness.reach.intervals import (
    Codes,
    bit_of,
    dictionary_codes,
    mask_members,
    merge_runs,
    one_hot,
    snap,
    sweep,
)
from liveness.reach.trinocular import ROUND_S
from liveness.targets.inputs import excerpt

__all__ = [
    "EVENT_KINDS",
    "EVENT_SCHEMA",
    "VP_SUMMARY_SCHEMA",
    "DetectParams",
    "Detection",
    "VpBlocks",
    "coded_observations",
    "detect",
    "dictionary_of",
    "empty_events",
    "events_table",
    "own_block_codes",
    "parse_vp_blocks",
    "sort_events",
]

EVENT_KINDS: tuple[str, ...] = ("outage", "peninsula", "island")


_DICT = STRING_DICT


def _field(name: str, kind: pa.DataType, nullable: bool = True) -> pa.Field[Any]:
    field: pa.Field[Any] = pa.field(name, kind, nullable=nullable)
    return field


EVENT_SCHEMA = pa.schema(
    [
        _field("kind", _DICT, nullable=False),
        _field("scope", _DICT, nullable=False),
        _field("af", pa.uint8(), nullable=False),
        _field("start", pa.int64(), nullable=False),
        _field("end", pa.int64(), nullable=False),
        _field("duration", pa.int64(), nullable=False),
        _field("vps_up", pa.list_(pa.string()), nullable=False),
        _field("vps_down", pa.list_(pa.string()), nullable=False),
        _field("share", pa.float64(), nullable=False),
    ],
    metadata={"liveness.schema": "event/1"},
)

VP_SUMMARY_SCHEMA = pa.schema(
    [
        _field("vp", pa.string(), nullable=False),
        _field("af", pa.uint8(), nullable=False),
        _field("measured_s", pa.int64(), nullable=False),
        _field("island_s", pa.int64(), nullable=False),
        _field("peninsula_s", pa.int64(), nullable=False),
        _field("unmeasurable_s", pa.int64(), nullable=False),
    ],
    metadata={"liveness.schema": "vp-summary/1"},
)
"""Per VP and address family: seconds measured, an island, a peninsula (Atlas), unmeasurable."""

DOWN, UP, UNKNOWN = 0, 1, 2
_STATUS_CODES = {"down": DOWN, "up": UP, "unknown": UNKNOWN}
_MAX_GRID_CELLS = 400_000_000

I64 = NDArray[np.int64]


@dataclass(frozen=True)
class DetectParams:
    """Thresholds of the block and VP detectors (seconds unless said otherwise)."""

    round_s: int = ROUND_S
    """Round length: boundaries snap to this grid (Trinocular: 11 min); 0 or 1 keeps seconds."""
    min_duration: int = ROUND_S
    """Events shorter than this are dropped (default: one Trinocular round)."""
    gap: int = 0
    """Events of one scope and kind separated by at most this much join into one."""
    island_share: float = 0.5
    """A VP reaching strictly less than this share of active blocks is an island."""
    min_blocks: int = 10
    """A VP measuring fewer blocks than this (at a time) is unmeasurable, not an island."""
    chunk_rows: int = 1_000_000
    """Blocks are swept in chunks of about this many intervals (bounds memory)."""

    def __post_init__(self) -> None:
        for name in ("round_s", "min_duration", "gap", "min_blocks"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, not {getattr(self, name)}")
        if not 0.0 < self.island_share <= 1.0:
            raise InputError(f"island_share must be in (0, 1], not {self.island_share}")
        if self.chunk_rows < 1:
            raise InputError("chunk_rows must be >= 1")


@dataclass(frozen=True)
class Detection:
    """What the detectors found: the events and a per-VP summary."""

    events: pa.Table
    vp_summary: pa.Table
    intervals: int


@dataclass(frozen=True)
class CodedObservations:
    """An Observation table as integer arrays (one row per interval)."""

    vp: Codes
    vp_names: list[str]
    target: Codes
    target_names: pa.Array[Any]
    af: NDArray[np.uint8]
    t0: I64
    t1: I64
    status: NDArray[np.int8]

    def take(self, rows: NDArray[np.bool_]) -> CodedObservations:
        """The rows selected by a boolean mask (names unchanged)."""
        return CodedObservations(
            self.vp[rows],
            self.vp_names,
            self.target[rows],
            self.target_names,
            self.af[rows],
            self.t0[rows],
            self.t1[rows],
            self.status[rows],
        )


def coded_observations(obs: pa.Table) -> CodedObservations:
    """Check an Observation table and turn it into integer arrays."""
    missing = {"vp", "target", "af", "t0", "t1", "status"} - set(obs.column_names)
    if missing:
        raise InputError(f"observations lack column(s): {', '.join(sorted(missing))}")
    vp, vp_names = dictionary_codes(obs.column("vp"))
    target, target_names = dictionary_codes(obs.column("target"))
    status_codes, status_names = dictionary_codes(obs.column("status"))
    lookup = np.zeros(max(1, len(status_names)), np.int8)
    for i, name in enumerate(status_names.to_pylist()):
        if name not in _STATUS_CODES:
            raise InputError(f"observation status {excerpt(name)} is not one of up, down, unknown")
        lookup[i] = _STATUS_CODES[name]
    t0 = obs.column("t0").to_numpy().astype(np.int64, copy=False)
    t1 = obs.column("t1").to_numpy().astype(np.int64, copy=False)
    bad = np.flatnonzero(t1 < t0)
    if len(bad):
        raise InputError(
            f"observation row {int(bad[0])}: t1 {int(t1[bad[0]])} < t0 {int(t0[bad[0]])}"
        )
    return CodedObservations(
        vp=vp,
        vp_names=[str(v) for v in vp_names.to_pylist()],
        target=target,
        target_names=target_names,
        af=obs.column("af").to_numpy().astype(np.uint8, copy=False),
        t0=t0,
        t1=t1,
        status=lookup[status_codes] if len(status_codes) else np.zeros(0, np.int8),
    )


def empty_events() -> pa.Table:
    """An Event table with no rows."""
    return EVENT_SCHEMA.empty_table()


def events_table(
    kind: str,
    scope: pa.Array[Any],
    af: int | NDArray[np.uint8],
    start: I64,
    end: I64,
    vps_up: pa.Array[Any],
    vps_down: pa.Array[Any],
    share: NDArray[np.float64],
) -> pa.Table:
    """An Event table from column arrays (times in seconds; ``scope`` a dictionary array)."""
    n = len(start)
    return pa.Table.from_arrays(
        [
            pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), pa.array([kind], pa.string())),
            scope,
            pa.array(np.broadcast_to(np.asarray(af, np.uint8), (n,))),
            pa.array(start, pa.int64()),
            pa.array(end, pa.int64()),
            pa.array(end - start, pa.int64()),
            vps_up,
            vps_down,
            pa.array(share, pa.float64()),
        ],
        schema=EVENT_SCHEMA,
    )


def dictionary_of(
    codes: NDArray[np.integer[Any]], names: pa.Array[Any]
) -> pa.DictionaryArray[Any, Any]:
    """Names by code as a dictionary array (no string copies)."""
    return pa.DictionaryArray.from_arrays(codes.astype(np.int32), names)


def sort_events(events: pa.Table) -> pa.Table:
    """Events ordered by start, kind and scope (for display and files)."""
    if events.num_rows == 0:
        return events
    plain = events.set_column(0, "kind", events.column("kind").cast(pa.string()))
    plain = plain.set_column(1, "scope", plain.column("scope").cast(pa.string()))
    order = pc.sort_indices(
        plain, [("start", "ascending"), ("kind", "ascending"), ("scope", "ascending")]
    )
    return events.take(order)


VpBlocks = Mapping[str, "str | Sequence[str]"]
"""Each VP's own block(s): one name, or one per address family (``198.18.0.0/24`` and
``2001:db8::/48`` for a dual-stack VP)."""


def parse_vp_blocks(pairs: list[str]) -> dict[str, tuple[str, ...]]:
    """``vp=cidr`` strings (the ``--vp-blocks`` option) as a mapping VP -> its blocks, at most
    one per address family (give the option twice for a dual-stack VP)."""
    mapping: dict[str, tuple[str, ...]] = {}
    families: dict[tuple[str, int], str] = {}
    for pair in pairs:
        vp, sep, block = pair.partition("=")
        if not sep or not vp or not block:
            raise InputError(f"--vp-blocks: expected vp=cidr, got {excerpt(pair)}")
        try:
            version = ipaddress.ip_network(block, strict=False).version
        except ValueError as exc:
            raise InputError(f"--vp-blocks: {excerpt(block)} is not a CIDR block ({exc})") from None
        earlier = families.setdefault((vp, version), block)
        if earlier != block:
            raise InputError(
                f"--vp-blocks: VP {excerpt(vp)} has two IPv{version} blocks, {earlier} and {block}"
            )
        if block not in mapping.get(vp, ()):
            mapping[vp] = (*mapping.get(vp, ()), block)
    return mapping


def _blocks_of(vp_blocks: VpBlocks | None, af: int | None) -> dict[str, str]:
    """Per VP, its own block of family ``af`` (a name that is no CIDR block fits any family)."""
    chosen: dict[str, str] = {}
    for vp, given in (vp_blocks or {}).items():
        blocks = [given] if isinstance(given, str) else list(given)
        fitting = [b for b in blocks if af is None or block_af(b) in (af, None)]
        if len({_block_key(b) for b in fitting}) > 1:
            raise InputError(
                f"--vp-blocks: VP {excerpt(vp)} has {len(fitting)} blocks"
                + (f" of IPv{af}" if af else "")
                + f": {', '.join(fitting)}"
            )
        if fitting:
            chosen[vp] = fitting[0]
    return chosen


def _block_key(name: str) -> str:
    """A block name in canonical CIDR form when it is one, else unchanged."""
    try:
        return str(ipaddress.ip_network(name, strict=False))
    except ValueError:
        return name


@dataclass
class _Grid:
    """The round grid: time index i covers ``[origin + i*step, origin + (i+1)*step)``."""

    origin: int
    step: int
    length: int

    def seconds(self, index: I64) -> I64:
        return self.origin + index * self.step


def _chunks(target: Codes, chunk_rows: int) -> list[slice | I64]:
    """Rows per chunk of targets (each chunk about ``chunk_rows`` rows; all rows: a slice)."""
    if len(target) <= chunk_rows:
        return [slice(None)]
    per_target = np.bincount(target)
    chunk_of_target = (np.cumsum(per_target) - per_target) // chunk_rows
    small = int(chunk_of_target[-1]) < 1 << 16
    chunk = chunk_of_target[target].astype(np.uint16 if small else np.int64)
    order = np.argsort(chunk, kind="stable")  # a radix sort for 16-bit keys
    bounds = np.searchsorted(chunk[order], np.arange(int(chunk.max()) + 2))
    return [order[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _block_events(
    coded: CodedObservations,
    rows: slice | I64,
    start: I64,
    end: I64,
    grid: _Grid,
    params: DetectParams,
    af: int,
    outage_down: I64,
) -> list[pa.Table]:
    """Outage and peninsula events of the blocks in ``rows``; adds outage down-counts per VP.

    ``start`` and ``end`` are the grid indices of ``rows`` already.
    """
    n_vps = len(coded.vp_names)
    sw = sweep(coded.target[rows], coded.vp[rows], coded.status[rows], start, end, n_vps)
    tables = []
    unit = max(1, grid.step)
    for kind in ("outage", "peninsula"):
        if kind == "outage":
            seg = np.flatnonzero((sw.n_up == 0) & (sw.n_down > 0))
            # Blocks a VP measured that were not active: its island share leaves them out.
            down_kind, out_start, out_end = sw.down[:, seg], sw.start[seg], sw.end[seg]
            for vp in range(n_vps):
                has = bit_of(down_kind, vp)
                _add(outage_down, vp * (grid.length + 1) + out_start[has], 1)
                _add(outage_down, vp * (grid.length + 1) + out_end[has], -1)
        else:
            seg = np.flatnonzero((sw.n_up > 0) & (sw.n_down > 0))
        if len(seg) == 0:
            continue
        group, seg_start, seg_end = sw.group[seg], sw.start[seg], sw.end[seg]
        n_up, n_down = sw.n_up[seg], sw.n_down[seg]
        runs = merge_runs(group, seg_start, seg_end, params.gap // unit)
        ev_start = grid.seconds(seg_start[runs])
        ev_end = grid.seconds(np.maximum.reduceat(seg_end, runs))
        long_enough = np.flatnonzero((ev_end - ev_start) >= params.min_duration)
        share = np.minimum.reduceat(n_up / (n_up + n_down), runs)[long_enough]
        up = np.bitwise_or.reduceat(sw.up[:, seg], runs, axis=1)[:, long_enough]
        down = np.bitwise_or.reduceat(sw.down[:, seg], runs, axis=1)[:, long_enough]
        runs = runs[long_enough]
        tables.append(
            events_table(
                kind,
                dictionary_of(group[runs], coded.target_names),
                af,
                ev_start[long_enough],
                ev_end[long_enough],
                mask_members(up, coded.vp_names),
                mask_members(down, coded.vp_names),
                share,
            )
        )
    return tables


class _VpCounts:
    """Per VP and grid cell, running-sum deltas of blocks measured, reached, own block reached,
    and measured-but-not-active (outage) blocks; filled chunk by chunk, summed at the end."""

    def __init__(self, n_vps: int, length: int, own_target: I64) -> None:
        self.n_vps, self.width = n_vps, length + 1
        size = n_vps * self.width
        self.measured = np.zeros(size, np.int64)
        self.reached = np.zeros(size, np.int64)
        self.own = np.zeros(size, np.int64)
        self.not_active = np.zeros(size, np.int64)
        self.own_target = own_target

    def add_intervals(
        self, coded: CodedObservations, rows: slice | I64, start: I64, end: I64
    ) -> None:
        """Count the intervals of ``rows`` (grid indices ``start``, ``end``)."""
        vp = coded.vp[rows].astype(np.int64)
        status = coded.status[rows]
        first = vp * self.width + start
        last = vp * self.width + end
        up = status == UP
        own = up & (self.own_target[vp] == coded.target[rows])
        for counts, sel in (
            (self.measured, status != UNKNOWN),
            (self.reached, up),
            (self.own, own),
        ):
            _add(counts, first[sel], 1)
            _add(counts, last[sel], -1)

    def counts(self, deltas: I64) -> I64:
        """Running sums per VP: shape (n_vps, length)."""
        return np.cumsum(deltas.reshape(self.n_vps, self.width), axis=1)[:, :-1]


def _add(counts: I64, where: I64, value: int) -> None:
    """``counts[where] += value`` with repeats: bincount when dense, ``np.add.at`` when sparse."""
    if len(where) == 0:
        return
    if len(counts) <= 4 * len(where):
        counts += value * np.bincount(where, minlength=len(counts))
    else:
        np.add.at(counts, where, value)


def _runs_2d(flags: NDArray[np.bool_]) -> tuple[I64, I64, I64]:
    """Runs of True per row of a 2-D array: (row, start column, end column exclusive)."""
    rows, width = flags.shape
    padded = np.zeros((rows, width + 1), np.int8)
    padded[:, :width] = flags
    change = np.diff(np.concatenate([[0], padded.ravel()]))
    starts = np.flatnonzero(change == 1)
    ends = np.flatnonzero(change == -1)
    row = starts // (width + 1)
    return row, starts - row * (width + 1), ends - row * (width + 1)


def _island_events(
    coded: CodedObservations,
    grid: _Grid,
    params: DetectParams,
    af: int,
    vp_counts: _VpCounts,
) -> tuple[list[pa.Table], pa.Table]:
    """Island events per VP from per-grid-cell counts, and the per-VP summary."""
    n_vps = len(coded.vp_names)
    length = grid.length
    measured = vp_counts.counts(vp_counts.measured)
    reached = vp_counts.counts(vp_counts.reached)
    own = vp_counts.counts(vp_counts.own)
    active = measured - vp_counts.counts(vp_counts.not_active)
    has_own = (vp_counts.own_target >= 0)[:, None]
    alive = np.where(has_own, own > 0, reached > 0)
    measurable = measured >= params.min_blocks
    island = measurable & (active > 0) & (reached < params.island_share * active) & alive
    unmeasurable = (measured > 0) & ~measurable
    unit = max(1, grid.step)
    summary = pa.Table.from_arrays(
        [
            pa.array(coded.vp_names, pa.string()),
            pa.array(np.full(n_vps, af, np.uint8)),
            pa.array((measured > 0).sum(axis=1) * unit, pa.int64()),
            pa.array(island.sum(axis=1) * unit, pa.int64()),
            pa.array(np.zeros(n_vps, np.int64)),
            pa.array(unmeasurable.sum(axis=1) * unit, pa.int64()),
        ],
        schema=VP_SUMMARY_SCHEMA,
    )
    row, col_start, col_end = _runs_2d(island)
    if len(row) == 0:
        return [], summary
    share = np.where(island, reached / np.maximum(active, 1), np.inf).ravel()
    padded_width = length + 1
    flat_share = np.full(n_vps * padded_width, np.inf)
    flat_share.reshape(n_vps, padded_width)[:, :length] = share.reshape(n_vps, length)
    run_share = np.minimum.reduceat(flat_share, row * padded_width + col_start)
    runs = merge_runs(row, col_start, col_end, params.gap // unit)
    ev_start = grid.seconds(col_start[runs])
    ev_end = grid.seconds(np.maximum.reduceat(col_end, runs))
    ev_share = np.minimum.reduceat(run_share, runs)
    ev_vp = row[runs]
    keep = (ev_end - ev_start) >= params.min_duration
    ev_start, ev_end, ev_share, ev_vp = ev_start[keep], ev_end[keep], ev_share[keep], ev_vp[keep]
    masks = one_hot(ev_vp, n_vps)
    table = events_table(
        "island",
        dictionary_of(ev_vp, pa.array(coded.vp_names, pa.string())),
        af,
        ev_start,
        ev_end,
        mask_members(masks, coded.vp_names),
        mask_members(np.zeros_like(masks), coded.vp_names),
        ev_share,
    )
    return [table], summary


def _own_targets(coded: CodedObservations, vp_blocks: VpBlocks | None, af: int) -> I64:
    """Per VP, the target code of its own block of family ``af`` (-1: not given or not
    observed): a dual-stack VP is an IPv6 island only while it reaches its IPv6 block."""
    return own_block_codes(coded.vp_names, coded.target_names, vp_blocks, af)


def own_block_codes(
    vp_names: list[str], names: pa.Array[Any], vp_blocks: VpBlocks | None, af: int | None = None
) -> I64:
    """Per VP (in ``vp_names`` order), the index in the target dictionary ``names`` of its
    own block of family ``af`` from ``vp_blocks``, blocks compared in canonical CIDR form
    (-1: none). ``af`` None: the VP's only block, whatever its family."""
    unknown = sorted(set(vp_blocks or {}) - set(vp_names))
    if unknown:
        raise InputError(f"--vp-blocks: no observations by VP(s) {', '.join(unknown)}")
    vp_blocks = _blocks_of(vp_blocks, af)
    own = np.full(len(vp_names), -1, np.int64)
    if not vp_blocks:
        return own
    wanted = {_block_key(block) for block in vp_blocks.values()}
    found = pc.is_in(names, value_set=pa.array(sorted(wanted), pa.string()))
    code_of = {
        _block_key(str(names[int(i)])): int(i)
        for i in np.flatnonzero(found.to_numpy(zero_copy_only=False))
    }
    if len(code_of) < len(wanted):
        # Targets not in canonical form (e.g. "198.18.0.0/24 " or addresses): parse them all.
        for i, name in enumerate(names.to_pylist()):
            code_of.setdefault(_block_key(str(name)), i)
    for vp, block in vp_blocks.items():
        own[vp_names.index(vp)] = code_of.get(_block_key(block), -1)
    return own


def detect(
    obs: pa.Table,
    params: DetectParams | None = None,
    vp_blocks: VpBlocks | None = None,
) -> Detection:
    """Outage, peninsula and island events of an Observation table, and a per-VP summary.

    Every detector runs per address family: events and summary rows carry ``af``, and a VP
    can be an island in one family and reach the core in the other. ``vp_blocks`` maps a VP
    name to its own block, or one per family (target names, e.g. ``198.18.0.0/24`` and
    ``2001:db8::/48``): a VP is an island of a family only while it still reaches its block
    of that family. For a VP without one, reaching any block of the family counts as still
    reaching itself (a VP that reaches nothing is down, not an island).
    """
    params = params or DetectParams()
    coded = coded_observations(obs)
    if len(coded.t0) == 0:
        return Detection(empty_events(), VP_SUMMARY_SCHEMA.empty_table(), 0)
    unknown = sorted(set(vp_blocks or {}) - set(coded.vp_names))
    if unknown:  # said now, whatever the families observed
        raise InputError(f"--vp-blocks: no observations by VP(s) {', '.join(unknown)}")
    events: list[pa.Table] = []
    summaries: list[pa.Table] = []
    for af in np.unique(coded.af).tolist():
        part = coded if (coded.af == af).all() else coded.take(coded.af == af)
        origin = int(part.t0.min())
        start = snap(part.t0, origin, params.round_s)
        end = snap(part.t1, origin, params.round_s)
        length = int(end.max()) + 1
        if len(part.vp_names) * (length + 1) > _MAX_GRID_CELLS:
            raise InputError(
                f"time span too long for a {params.round_s} s grid "
                f"({length} cells x {len(part.vp_names)} VPs): use a larger --round"
            )
        grid = _Grid(origin, max(1, params.round_s), length)
        vp_counts = _VpCounts(len(part.vp_names), length, _own_targets(part, vp_blocks, af))
        for rows in _chunks(part.target, params.chunk_rows):
            chunk_start, chunk_end = start[rows], end[rows]
            events += _block_events(
                part, rows, chunk_start, chunk_end, grid, params, af, vp_counts.not_active
            )
            vp_counts.add_intervals(part, rows, chunk_start, chunk_end)
        islands, summary = _island_events(part, grid, params, af, vp_counts)
        events += islands
        summaries.append(summary)
    table = pa.concat_tables([empty_events(), *events])
    return Detection(table, pa.concat_tables(summaries), len(coded.t0))
