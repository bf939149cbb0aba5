"""The 128-bit helpers (pairs of uint64 arrays) and the big-integer interval sets, against
Python's own integers and sets."""

from __future__ import annotations

import bisect
import itertools
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from liveness.targets import bigintervals as big
from liveness.targets import wide

TOP = 2**128


def sample(rng: random.Random, count: int) -> list[int]:
    """128-bit values with many shared high words and edge values, as hitlists have."""
    highs = [rng.getrandbits(64) for _ in range(count // 8 + 1)] + [0, 2**64 - 1]
    values = [rng.choice(highs) << 64 | rng.getrandbits(64) for _ in range(count)]
    return [*values, 0, 1, 2**64 - 1, 2**64, TOP - 1]


def test_round_trips_and_bytes() -> None:
    values = sample(random.Random(1), 1000)
    hi, lo = wide.from_ints(values)
    assert wide.to_ints(hi, lo) == values
    rows = wide.to_bytes(hi, lo)
    assert rows.shape == (len(values), 16) and rows.flags.c_contiguous
    assert [int.from_bytes(r.tobytes(), "big") for r in rows] == values


def test_add_shift_less_and_masks() -> None:
    rng = random.Random(2)
    a, b = sample(rng, 500), sample(rng, 500)
    s = wide.add(*wide.from_ints(a), *wide.from_ints(b))
    assert wide.to_ints(*s) == [(x + y) % TOP for x, y in zip(a, b, strict=True)]
    less = wide.less(*wide.from_ints(a), *wide.from_ints(b))
    assert less.tolist() == [x < y for x, y in zip(a, b, strict=True)]
    small = [rng.getrandbits(64) for _ in range(600)]
    shifts = [rng.randint(0, 128) for _ in range(600)] + [0] * 5 + [64] * 5 + [128] * 5
    small += small[:15]
    shifted = wide.shift_left(np.array(small, np.uint64), np.array(shifts, np.uint8))
    assert wide.to_ints(*shifted) == [(v << k) % TOP for v, k in zip(small, shifts, strict=True)]
    masks = wide.bit_masks(np.array(shifts, np.uint8))
    assert wide.to_ints(*masks) == [(1 << k) - 1 for k in shifts]


def test_searchsorted_matches_bisect() -> None:
    rng = random.Random(3)
    haystack = sorted(sample(rng, 3000))
    queries = sample(rng, 2000) + haystack[::7]
    h_hi, h_lo = wide.from_ints(haystack)
    q_hi, q_lo = wide.from_ints(queries)
    left = wide.searchsorted(h_hi, h_lo, q_hi, q_lo, side="left")
    right = wide.searchsorted(h_hi, h_lo, q_hi, q_lo, side="right")
    assert left.tolist() == [bisect.bisect_left(haystack, q) for q in queries]
    assert right.tolist() == [bisect.bisect_right(haystack, q) for q in queries]


def test_in_intervals_and_sort_unique() -> None:
    rng = random.Random(4)
    values = sample(rng, 5000)
    values += values[:2000]  # duplicates
    rng.shuffle(values)
    rows = big.normalize(
        (start, min(TOP, start + rng.randint(1, 2**70))) for start in sample(rng, 50)
    )
    rows = big.union(rows, ((TOP - 10, TOP),))
    hi, lo = wide.from_ints(values)
    inside = wide.in_intervals(hi, lo, rows)
    assert inside.tolist() == [any(s <= v < e for s, e in rows) for v in values]
    u_hi, u_lo = wide.sort_unique(hi, lo)
    assert wide.to_ints(u_hi, u_lo) == sorted(set(values))
    # Mostly distinct high words: the cheap path.
    spread = [rng.getrandbits(128) for _ in range(3000)] + [5, 5, 2**64 + 5, 2**64 + 3]
    d_hi, d_lo = wide.sort_unique(*wide.from_ints(spread))
    assert wide.to_ints(d_hi, d_lo) == sorted(set(spread))


small_rows = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=6)


def as_set(rows: big.BigIntervals) -> set[int]:
    return {v for s, e in rows for v in range(s, e)}


@settings(max_examples=300, deadline=None)
@given(small_rows, small_rows)
def test_big_interval_algebra(a_rows: list[tuple[int, int]], b_rows: list[tuple[int, int]]) -> None:
    a, b = big.normalize(a_rows), big.normalize(b_rows)
    assert as_set(a) == {v for s, e in a_rows for v in range(s, e)}
    assert all(e1 < s2 for (_, e1), (s2, _) in itertools.pairwise(a)), "disjoint, apart"
    assert as_set(big.union(a, b)) == as_set(a) | as_set(b)
    assert as_set(big.intersect(a, b)) == as_set(a) & as_set(b)
    assert as_set(big.subtract(a, b)) == as_set(a) - as_set(b)
    assert big.size(a) == len(as_set(a))
    for result in (big.union(a, b), big.intersect(a, b), big.subtract(a, b)):
        assert result == big.normalize(result)
