"""Islands and peninsulas of RIPE Atlas probes: which DNS root letters a probe reaches per window.

Per probe, address family and window (24 h by default, aligned on the epoch so windows are UTC
days): the letters measured (some query answered or failed) and the letters answered at least
once. Fewer than ``min_letters`` measured: *unmeasurable*; none answered: *island* (the probe is
cut off from every root, so from the core); some but not all: *peninsula*; all: ok. Consecutive
windows of one kind merge into events (``detect.EVENT_SCHEMA``, scope = the probe).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.reach.detect import (
    UP,
    VP_SUMMARY_SCHEMA,
    Detection,
    coded_observations,
    dictionary_of,
    empty_events,
    events_table,
    sort_events,
)
from liveness.reach.intervals import mask_members, merge_runs, one_hot

__all__ = [
    "WINDOW_KINDS",
    "AtlasParams",
    "Windows",
    "classify_windows",
    "detect_atlas",
    "root_targets",
    "windows_from_observations",
]

WINDOW_KINDS: tuple[str, ...] = ("ok", "peninsula", "island", "unmeasurable")
OK, PENINSULA, ISLAND, UNMEASURABLE = 0, 1, 2, 3

I64 = NDArray[np.int64]


@dataclass(frozen=True)
class AtlasParams:
    """Thresholds of the per-probe window detector (seconds unless said otherwise)."""

    window: int = 86_400
    """Window length; windows are aligned on multiples of it since the epoch."""
    min_letters: int = 6
    """A probe measuring fewer letters than this in a window is unmeasurable."""
    min_duration: int = 0
    """Events shorter than this are dropped."""
    gap: int = 0
    """Events of one probe and kind separated by at most this much join."""
    roots_only: bool = True
    """Count only DNS root letters (targets named ``x.root``), not other destinations."""

    def __post_init__(self) -> None:
        if self.window < 1:
            raise InputError(f"window must be >= 1 s, not {self.window}")
        if self.min_letters < 1:
            raise InputError(f"min_letters must be >= 1, not {self.min_letters}")
        if self.min_duration < 0 or self.gap < 0:
            raise InputError("min_duration and gap must be >= 0")


@dataclass(frozen=True)
class Windows:
    """One row per (probe, af, window): letters measured and answered, and the window's kind.

    ``row_kind`` gives, for each input row of ``classify_windows``, the kind of its window.
    """

    vp: I64
    af: NDArray[np.uint8]
    window: I64
    measured: I64
    answered: I64
    kind: NDArray[np.int8]
    row_kind: NDArray[np.int8]


def classify_windows(
    vp: I64,
    af: NDArray[np.uint8],
    target: I64,
    window: I64,
    answered: NDArray[np.bool_],
    min_letters: int,
) -> Windows:
    """Classify every (probe, af, window) from rows (probe, af, letter, window, answered)."""
    n = len(vp)
    if n == 0:
        empty = np.zeros(0, np.int64)
        return Windows(
            empty,
            np.zeros(0, np.uint8),
            empty,
            empty,
            empty,
            np.zeros(0, np.int8),
            np.zeros(0, np.int8),
        )
    order = np.lexsort((target, window, af, vp))
    s_vp, s_af, s_win, s_tgt = vp[order], af[order], window[order], target[order]
    new_window = np.empty(n, bool)
    new_window[0] = True
    new_window[1:] = (s_vp[1:] != s_vp[:-1]) | (s_af[1:] != s_af[:-1]) | (s_win[1:] != s_win[:-1])
    new_letter = new_window.copy()
    new_letter[1:] |= s_tgt[1:] != s_tgt[:-1]
    letter_starts = np.flatnonzero(new_letter)
    letter_answered = np.maximum.reduceat(answered[order].astype(np.int8), letter_starts)
    window_of_letter = np.cumsum(new_window)[letter_starts] - 1
    n_windows = int(window_of_letter[-1]) + 1
    measured = np.bincount(window_of_letter, minlength=n_windows).astype(np.int64)
    reached = np.bincount(window_of_letter, weights=letter_answered, minlength=n_windows).astype(
        np.int64
    )
    kind = np.full(n_windows, OK, np.int8)
    kind[reached < measured] = PENINSULA
    kind[reached == 0] = ISLAND
    kind[measured < min_letters] = UNMEASURABLE
    window_starts = np.flatnonzero(new_window)
    row_kind = np.empty(n, np.int8)
    row_kind[order] = kind[np.cumsum(new_window) - 1]
    return Windows(
        s_vp[window_starts],
        s_af[window_starts],
        s_win[window_starts],
        measured,
        reached,
        kind,
        row_kind,
    )


def windows_from_observations(obs: pa.Table, params: AtlasParams) -> tuple[Windows, list[str]]:
    """Classify probe windows from an Observation table (target = root letter); and VP names.

    An interval counts in every window it overlaps; ``unknown`` intervals are ignored.
    """
    coded = coded_observations(obs)
    voting = coded.status != 2
    if params.roots_only:
        voting &= root_targets(coded.target_names)[coded.target]
    t0, t1 = coded.t0[voting], coded.t1[voting]
    first = np.floor_divide(t0, params.window)
    last = np.floor_divide(np.maximum(t1 - 1, t0), params.window)
    repeats = last - first + 1
    offsets = np.arange(int(repeats.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(repeats) - repeats, repeats
    )
    window = np.repeat(first, repeats) + offsets
    windows = classify_windows(
        np.repeat(coded.vp[voting].astype(np.int64), repeats),
        np.repeat(coded.af[voting], repeats),
        np.repeat(coded.target[voting].astype(np.int64), repeats),
        window,
        np.repeat(coded.status[voting] == UP, repeats),
        params.min_letters,
    )
    return windows, coded.vp_names


def detect_atlas(obs: pa.Table, params: AtlasParams | None = None) -> Detection:
    """Island and peninsula events of Atlas probes, and the per-probe summary."""
    params = params or AtlasParams()
    windows, vp_names = windows_from_observations(obs, params)
    if len(windows.vp) == 0:
        return Detection(empty_events(), VP_SUMMARY_SCHEMA.empty_table(), obs.num_rows)
    events: list[pa.Table] = []
    group = windows.vp * 256 + windows.af
    names = pa.array(vp_names, pa.string())
    for kind_name, code in (("island", ISLAND), ("peninsula", PENINSULA)):
        sel = windows.kind == code
        if not sel.any():
            continue
        g, w = group[sel], windows.window[sel]
        runs = merge_runs(g, w, w + 1, params.gap // params.window)
        start = w[runs] * params.window
        end = (np.maximum.reduceat(w, runs) + 1) * params.window
        share = np.minimum.reduceat(windows.answered[sel] / windows.measured[sel], runs)
        keep = (end - start) >= params.min_duration
        runs, start, end, share = runs[keep], start[keep], end[keep], share[keep]
        vp_idx = windows.vp[sel][runs]
        masks = one_hot(vp_idx, len(vp_names))
        events.append(
            events_table(
                kind_name,
                dictionary_of(vp_idx, names),
                windows.af[sel][runs],
                start,
                end,
                mask_members(masks, vp_names),
                mask_members(np.zeros_like(masks), vp_names),
                share,
            )
        )
    table = pa.concat_tables([empty_events(), *events])
    table = sort_events(table)
    return Detection(table, _summary(windows, vp_names, params.window), obs.num_rows)


def root_targets(names: pa.Array[Any]) -> NDArray[np.bool_]:
    """Per target name: is it a DNS root letter (``x.root``)?"""
    flags: Any = pc.ends_with(names.cast(pa.string()), ".root")
    return np.asarray(flags.to_numpy(zero_copy_only=False), dtype=bool)


def _summary(windows: Windows, vp_names: list[str], window: int) -> pa.Table:
    """Per probe and af: seconds measured, an island, a peninsula, unmeasurable."""
    key = windows.vp * 256 + windows.af
    uniq, inverse = np.unique(key, return_inverse=True)

    def seconds(flags: NDArray[np.bool_]) -> I64:
        return np.bincount(inverse, weights=flags, minlength=len(uniq)).astype(np.int64) * window

    return pa.Table.from_arrays(
        [
            pa.array(vp_names, pa.string()).take(uniq // 256),
            pa.array((uniq % 256).astype(np.uint8)),
            pa.array(seconds(windows.measured > 0)),
            pa.array(seconds(windows.kind == ISLAND)),
            pa.array(seconds(windows.kind == PENINSULA)),
            pa.array(seconds(windows.kind == UNMEASURABLE)),
        ],
        schema=VP_SUMMARY_SCHEMA,
    )
