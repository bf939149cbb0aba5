"""Interval-set arithmetic checked against Python sets over a small universe."""

from __future__ import annotations

import ipaddress

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from liveness.targets import intervals as iv

UNIVERSE = 256

rows_strategy = st.lists(
    st.tuples(st.integers(0, UNIVERSE), st.integers(0, UNIVERSE)), max_size=12
).map(lambda pairs: [(min(a, b), max(a, b)) for a, b in pairs])


def as_set(rows: list[tuple[int, int]]) -> set[int]:
    return {x for start, end in rows for x in range(start, end)}


def as_intervals(rows: list[tuple[int, int]]) -> iv.Intervals:
    return iv.normalize(np.array(rows, dtype=np.uint64).reshape(-1, 2))


def check_normalised(a: iv.Intervals) -> None:
    flat = a.reshape(-1)
    assert a.dtype == np.uint64
    assert np.all(np.diff(flat.astype(np.int64)) > 0), "boundaries strictly increasing"


@settings(max_examples=300, deadline=None)
@given(rows_strategy, rows_strategy)
def test_set_operations_match_python_sets(
    a_rows: list[tuple[int, int]], b_rows: list[tuple[int, int]]
) -> None:
    a, b = as_intervals(a_rows), as_intervals(b_rows)
    sa, sb = as_set(a_rows), as_set(b_rows)
    for result, expected in [
        (a, sa),
        (iv.union(a, b), sa | sb),
        (iv.intersect(a, b), sa & sb),
        (iv.subtract(a, b), sa - sb),
    ]:
        check_normalised(result)
        assert as_set([(int(s), int(e)) for s, e in result]) == expected
        assert iv.size(result) == len(expected)
    points = np.arange(UNIVERSE + 2, dtype=np.uint64)
    assert iv.contains(a, points).tolist() == [int(p) in sa for p in points]
    overlap = iv.overlapping_rows(np.array(b_rows, dtype=np.uint64).reshape(-1, 2), a)
    assert overlap.tolist() == [bool(set(range(s, e)) & sa) for s, e in b_rows]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32), st.integers(0, 2**32)), max_size=5))
def test_cidr_cover_is_minimal_and_exact(pairs: list[tuple[int, int]]) -> None:
    rows = [(min(a, b), max(a, b)) for a, b in pairs]
    a = as_intervals(rows)
    cover = iv.cidr_cover(a)
    expected = [
        str(net)
        for start, end in a.tolist()
        for net in ipaddress.summarize_address_range(
            ipaddress.IPv4Address(int(start)), ipaddress.IPv4Address(int(end) - 1)
        )
    ]
    assert cover == expected


def test_whole_space_and_empty() -> None:
    whole = np.array([[0, 2**32]], dtype=np.uint64)
    assert iv.cidr_cover(whole) == ["0.0.0.0/0"]
    assert iv.size(whole) == 2**32
    assert iv.size(iv.subtract(whole, whole)) == 0
    assert iv.union(iv.empty(), iv.empty()).shape == (0, 2)
    assert iv.cidr_cover(iv.empty()) == []
