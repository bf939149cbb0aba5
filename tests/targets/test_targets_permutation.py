"""The keyed permutation: a bijection on [0, n), deterministic for (seed, n), keyed by the seed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveness.errors import InputError
from liveness.targets import Permutation, Shard


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 1000, 65537, 1 << 20])
def test_bijection_by_full_enumeration(n: int) -> None:
    perm = Permutation(n, seed=12345)
    out = perm(np.arange(n, dtype=np.uint64))
    assert out.dtype == np.uint64
    assert np.array_equal(np.sort(out), np.arange(n, dtype=np.uint64))
    assert np.array_equal(perm.inverse(out), np.arange(n, dtype=np.uint64))


def test_deterministic_for_seed_and_size() -> None:
    positions = np.arange(10_000, dtype=np.uint64)
    first = Permutation(100_000, seed=7)(positions)
    assert np.array_equal(first, Permutation(100_000, seed=7)(positions))
    assert not np.array_equal(first, Permutation(100_000, seed=8)(positions))
    assert not np.array_equal(first, Permutation(100_001, seed=7)(positions))


def test_batches_agree_with_one_call() -> None:
    perm = Permutation(50_000, seed=3)
    whole = perm(np.arange(50_000, dtype=np.uint64))
    pieces = [
        perm(np.arange(a, min(a + 777, 50_000), dtype=np.uint64)) for a in range(0, 50_000, 777)
    ]
    assert np.array_equal(np.concatenate(pieces), whole)


def test_order_looks_shuffled() -> None:
    n = 1 << 16
    out = Permutation(n, seed=99)(np.arange(n, dtype=np.uint64)).astype(np.int64)
    # Few fixed points and no long runs of consecutive indices, unlike the identity.
    assert int((out == np.arange(n)).sum()) < 20
    assert int((np.diff(out) == 1).sum()) < 20
    # Each half of the order visits both halves of the space about equally.
    first_half_low = int((out[: n // 2] < n // 2).sum())
    assert abs(first_half_low - n // 4) < n // 50


def test_random_seed_when_none() -> None:
    seeds = {Permutation(1000).seed for _ in range(5)}
    assert len(seeds) == 5
    perm = Permutation(1000)
    again = Permutation(1000, seed=perm.seed)
    positions = np.arange(1000, dtype=np.uint64)
    assert np.array_equal(perm(positions), again(positions))


def test_rejects_bad_arguments() -> None:
    with pytest.raises(InputError, match="-e/--seed"):
        Permutation(10, seed=-1)
    with pytest.raises(InputError, match="-e/--seed"):
        Permutation(10, seed=1 << 64)
    with pytest.raises(InputError):
        Permutation(0, seed=1)
    with pytest.raises(InputError):
        Permutation((1 << 64) + 1, seed=1)
    perm = Permutation(10, seed=1)
    with pytest.raises(IndexError):
        perm(np.array([10], dtype=np.uint64))
    with pytest.raises(IndexError):
        perm(np.array([-1]))


def test_full_ipv4_domain_samples() -> None:
    n = 1 << 32
    perm = Permutation(n, seed=2024)
    starts = [0, n // 3, n - (1 << 20)]
    chunks = [perm(np.arange(s, s + (1 << 20), dtype=np.uint64)) for s in starts]
    seen = np.sort(np.concatenate(chunks))
    assert int(seen[-1]) < n
    assert (np.diff(seen) > 0).all(), "no index repeats"

    for s, chunk in zip(starts, chunks, strict=True):
        assert np.array_equal(perm.inverse(chunk), np.arange(s, s + (1 << 20), dtype=np.uint64))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 70_000), st.integers(0, 2**64 - 1))
def test_bijection_for_random_sizes_and_seeds(n: int, seed: int) -> None:
    perm = Permutation(n, seed)
    positions = np.arange(n, dtype=np.uint64)
    out = perm(positions)
    assert np.array_equal(np.sort(out), positions)
    assert np.array_equal(perm.inverse(out), positions)


@pytest.mark.slow
def test_large_domain_by_bitmap_count_over_shards() -> None:
    # 2**25 + 1: the Feistel domain is 2**26, the worst case for cycle walking.
    n = (1 << 25) + 1
    perm = Permutation(n, seed=777)
    seen = np.zeros(n, dtype=np.bool_)
    total = 0
    for i in range(3):
        shard = Shard(n, 3, i)
        for start in range(0, shard.count, 1 << 22):
            index = perm(shard.positions(start, start + (1 << 22)))
            seen[index] = True
            total += len(index)
    assert total == n
    assert bool(seen.all()), "every index reached, hence none twice"
