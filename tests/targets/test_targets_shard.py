"""Shards are disjoint and cover every position once; batches resume from an offset."""

from __future__ import annotations

import numpy as np
import pytest

from liveness.errors import InputError
from liveness.targets import Permutation, Shard, TargetSpace, iter_target_batches


@pytest.mark.parametrize(("n", "shards"), [(1, 1), (1, 3), (10, 3), (100, 7), (4096, 64), (5, 9)])
def test_shards_partition_the_positions(n: int, shards: int) -> None:
    parts = [Shard(n, shards, i) for i in range(shards)]
    assert sum(p.count for p in parts) == n
    assert max(p.count for p in parts) - min(p.count for p in parts) <= 1
    every = np.concatenate([p.positions(0, p.count) for p in parts])
    assert np.array_equal(np.sort(every), np.arange(n, dtype=np.uint64))


def test_positions_are_clipped_slices() -> None:
    shard = Shard(100, 4, 1)
    assert shard.count == 25
    assert shard.positions(0, 3).tolist() == [1, 5, 9]
    assert shard.positions(24, 1000).tolist() == [97]
    assert shard.positions(30, 40).size == 0


def test_bad_shard_flags() -> None:
    with pytest.raises(InputError, match="--shards"):
        Shard(10, 0, 0)
    with pytest.raises(InputError, match="--shard: 3"):
        Shard(10, 3, 3)
    with pytest.raises(InputError, match="--shard"):
        Shard(10, 3, -1)


def small_space() -> TargetSpace:
    return TargetSpace.from_options(["8.8.8.0/24", "1.1.1.0/30", "9.9.9.9"])


def test_batches_cover_the_shard_and_resume() -> None:
    space = small_space()
    perm = Permutation(space.size, seed=5)
    seen = []
    for i in range(3):
        shard = Shard(space.size, 3, i)
        batches = list(iter_target_batches(space, perm, shard, batch_size=10))
        assert [off for off, _ in batches] == list(range(0, shard.count, 10))
        assert all(a.dtype == np.uint32 for _, a in batches)
        addresses = np.concatenate([a for _, a in batches])
        assert len(addresses) == shard.count
        resumed = list(iter_target_batches(space, perm, shard, batch_size=10, start=20))
        assert np.array_equal(np.concatenate([a for _, a in resumed]), addresses[20:])
        seen.append(addresses)
    everything = np.sort(np.concatenate(seen))
    assert np.array_equal(everything, space.addresses(np.arange(space.size, dtype=np.uint64)))


def test_batches_reject_mismatches() -> None:
    space = small_space()
    perm = Permutation(space.size, seed=5)
    shard = Shard(space.size)
    with pytest.raises(ValueError):
        next(iter_target_batches(space, Permutation(space.size + 1, seed=5), shard, 10))
    with pytest.raises(InputError):
        next(iter_target_batches(space, perm, shard, 0))
    with pytest.raises(InputError):
        next(iter_target_batches(space, perm, shard, 10, start=space.size + 1))
    assert list(iter_target_batches(space, perm, shard, 10, start=space.size)) == []
