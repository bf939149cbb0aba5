"""Run-length merging: per-round statuses become intervals of constant status.

Every reader ends here. Its input is one row per measurement: a series id (one per VP and
target), a time in seconds and a status code (the index in ``STATUSES``: 0 down, 1 up,
2 unknown). A row holds until the next row of the same series, so consecutive rows with the
same status merge into one interval ``[first row, next change)``. The last row of a series holds
until ``series_end`` when given (the end of its file), else for ``hold_s`` seconds; a gap longer
than ``max_gap_s`` between two rows ends the interval ``hold_s`` after the earlier row (no
observation in between). Two rows of one series at the same time are one row: up wins over down,
down over unknown. Everything is numpy; no Python loop per row.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from liveness.reach.observation import OBSERVATION_SCHEMA, STATUSES

__all__ = [
    "DOWN",
    "UNKNOWN",
    "UP",
    "Runs",
    "merge_intervals",
    "merge_runs",
    "observation_table",
]

DOWN, UP, UNKNOWN = (STATUSES.index(name) for name in ("down", "up", "unknown"))

# status code -> priority when two rows share a time (up > down > unknown), and back
_PRIORITY = np.array([1, 2, 0], dtype=np.uint8)
_FROM_PRIORITY = np.array([UNKNOWN, DOWN, UP], dtype=np.uint8)

Int64s = npt.NDArray[np.int64]


class Runs(NamedTuple):
    """Intervals of constant status: ``series``, ``t0``, ``t1`` (exclusive), ``status``."""

    series: Int64s
    t0: Int64s
    t1: Int64s
    status: npt.NDArray[np.uint8]


def _sort_order(series: Int64s, t: Int64s) -> npt.NDArray[np.intp]:
    """Row order by (series, t): one argsort over a packed 64-bit key when it fits."""
    t_min = int(t.min())
    span = int(t.max()) - t_min
    if int(series.min()) >= 0 and int(series.max()) < 2**31 and span < 2**32:
        key = (series.astype(np.uint64) << np.uint64(32)) | (t - t_min).astype(np.uint64)
        return np.argsort(key, kind="stable")
    return np.lexsort((t, series))


def merge_runs(
    series: npt.ArrayLike,
    t: npt.ArrayLike,
    status: npt.ArrayLike,
    *,
    hold_s: int,
    max_gap_s: int | None = None,
    series_end: npt.ArrayLike | None = None,
) -> Runs:
    """Merge rows (series, t, status) into runs of constant status; see the module docstring.

    ``series_end``, if given, is aligned with the rows: the end of the data for that row's
    series (all rows of one series should carry the same value).
    """
    s = np.asarray(series, dtype=np.int64)
    tt = np.asarray(t, dtype=np.int64)
    st = np.asarray(status, dtype=np.uint8)
    end = None if series_end is None else np.asarray(series_end, dtype=np.int64)
    if s.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return Runs(empty, empty.copy(), empty.copy(), np.empty(0, dtype=np.uint8))
    if int(st.max()) > UNKNOWN:
        raise ValueError(f"status code {int(st.max())} is not one of 0, 1, 2")

    order = _sort_order(s, tt)
    s, tt, st = s[order], tt[order], st[order]
    if end is not None:
        end = end[order]

    duplicate = (s[1:] == s[:-1]) & (tt[1:] == tt[:-1])
    if duplicate.any():
        first = np.flatnonzero(np.concatenate(([True], ~duplicate)))
        best = np.maximum.reduceat(_PRIORITY[st], first)
        s, tt, st = s[first], tt[first], _FROM_PRIORITY[best]
        if end is not None:
            end = end[first]

    same_series = s[1:] == s[:-1]
    gap_break = np.zeros(same_series.shape, dtype=bool)
    if max_gap_s is not None:
        gap_break = (tt[1:] - tt[:-1]) > max_gap_s
    ends_run = np.concatenate((~same_series | (st[1:] != st[:-1]) | gap_break, [True]))
    last = np.flatnonzero(ends_run)
    first_rows = np.concatenate(([0], last[:-1] + 1))

    t_last = tt[last]
    has_next = np.concatenate((same_series & ~gap_break, [False]))[last]
    t1 = t_last + hold_s
    if end is not None:
        tail = ~np.concatenate((same_series, [False]))[last]
        to_end = tail if max_gap_s is None else tail & (end[last] - t_last <= max_gap_s)
        t1 = np.where(to_end, np.maximum(end[last], t_last + 1), t1)
    next_index = np.minimum(last + 1, s.size - 1)
    t1 = np.where(has_next, tt[next_index], t1)
    return Runs(s[first_rows], tt[first_rows], t1, st[first_rows])


def merge_intervals(
    series: npt.ArrayLike, t0: npt.ArrayLike, t1: npt.ArrayLike, status: npt.ArrayLike
) -> Runs:
    """Join intervals of one series and status that touch or overlap (rows in any order).

    For sources whose rows are already intervals (one scan = one round of its own length).
    """
    s = np.asarray(series, dtype=np.int64)
    start = np.asarray(t0, dtype=np.int64)
    end = np.asarray(t1, dtype=np.int64)
    st = np.asarray(status, dtype=np.uint8)
    if s.size == 0:
        return Runs(s.copy(), start.copy(), end.copy(), st.copy())
    order = np.lexsort((start, st, s))
    s, start, end, st = s[order], start[order], end[order], st[order]
    joins = (s[1:] == s[:-1]) & (st[1:] == st[:-1]) & (start[1:] <= end[:-1])
    first = np.flatnonzero(np.concatenate(([True], ~joins)))
    return Runs(s[first], start[first], np.maximum.reduceat(end, first), st[first])


def _dictionary(indices: npt.ArrayLike, names: pa.Array[Any] | list[str]) -> pa.Array[Any]:
    dictionary = names if isinstance(names, pa.Array) else pa.array(names, type=pa.string())
    return pa.DictionaryArray.from_arrays(
        pa.array(np.asarray(indices, dtype=np.int32), type=pa.int32()), dictionary
    )


def observation_table(
    vp_index: npt.ArrayLike,
    vp_names: pa.Array[Any] | list[str],
    target_index: npt.ArrayLike,
    target_names: pa.Array[Any] | list[str],
    af: npt.ArrayLike,
    t0: npt.ArrayLike,
    t1: npt.ArrayLike,
    status: npt.ArrayLike,
) -> pa.Table:
    """An OBSERVATION_SCHEMA table from indices into name lists and numpy columns.

    ``af`` may be one number for every row.
    """
    rows = np.asarray(t0).shape[0]
    af_column = np.broadcast_to(np.asarray(af, dtype=np.uint8), (rows,))
    columns = [
        _dictionary(vp_index, vp_names),
        _dictionary(target_index, target_names),
        pa.array(np.ascontiguousarray(af_column), type=pa.uint8()),
        pa.array(np.asarray(t0, dtype=np.int64), type=pa.int64()),
        pa.array(np.asarray(t1, dtype=np.int64), type=pa.int64()),
        _dictionary(status, list(STATUSES)),
    ]
    return pa.Table.from_arrays(columns, schema=OBSERVATION_SCHEMA)
