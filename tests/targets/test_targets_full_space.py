"""The whole IPv4 space, in constant memory: checked by counting, and by sampled chunks.

Enumerating all ~3.7 billion positions takes minutes on one core, so the permutation is checked
in full on smaller domains (tests/targets/test_targets_permutation.py) and here by chunks taken
at the start, the middle and the end of the full space.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
import pytest

from liveness.targets import Permutation, Shard, TargetSpace, iter_target_batches

IANA_SPECIAL = [
    line
    for line in (Path(__file__).parent / "iana_special_purpose_expected.txt")
    .read_text()
    .splitlines()
    if line and not line.startswith("#")
]

CHUNK = 1 << 21


def blocked_count() -> int:
    nets = ipaddress.collapse_addresses(ipaddress.IPv4Network(c) for c in IANA_SPECIAL)
    return sum(net.num_addresses for net in nets)


def blocked_mask(addresses: np.ndarray) -> np.ndarray:
    """Independent membership test: address & netmask == network, for every registry entry."""
    hit = np.zeros(addresses.shape, dtype=bool)
    for cidr in IANA_SPECIAL:
        net = ipaddress.IPv4Network(cidr)
        hit |= (addresses & np.uint32(int(net.netmask))) == np.uint32(int(net.network_address))
    return hit


@pytest.fixture(scope="module")
def internet() -> TargetSpace:
    return TargetSpace.from_options(["0.0.0.0/0"])


def test_size_is_the_count_of_public_addresses(internet: TargetSpace) -> None:
    assert internet.size == 2**32 - blocked_count()
    assert internet.intervals.nbytes < 1024


def test_index_order_skips_exactly_the_blocked_ranges(internet: TargetSpace) -> None:
    # Stepping across each hole: the addresses on either side of it have consecutive indices.
    for start, end in internet.intervals.tolist()[:-1]:
        assert internet.contains(np.array([start, end - 1], dtype=np.uint32)).all()
        before = internet.index_of(np.array([end - 1], dtype=np.uint32))[0]
        nxt = internet.addresses(np.array([before + 1], dtype=np.uint64))[0]
        assert int(nxt) > end
        assert blocked_mask(np.array([end, int(nxt) - 1], dtype=np.uint32)).all()
    ends = internet.addresses(np.array([0, internet.size - 1], dtype=np.uint64))
    assert ends.tolist() == [
        int(ipaddress.IPv4Address("1.0.0.0")),
        int(ipaddress.IPv4Address("223.255.255.255")),
    ]


def test_permuted_chunks_of_the_full_space(internet: TargetSpace) -> None:
    n = internet.size
    perm = Permutation(n, seed=31337)
    starts = [0, n // 2, n - CHUNK]
    seen = []
    for start in starts:
        positions = np.arange(start, start + CHUNK, dtype=np.uint64)
        index = perm(positions)
        assert int(index.max()) < n
        addresses = internet.addresses(index)
        assert not blocked_mask(addresses).any()
        assert np.array_equal(internet.index_of(addresses), index.astype(np.int64))
        assert np.array_equal(perm.inverse(index), positions)
        seen.append(addresses)
    every = np.sort(np.concatenate(seen))
    assert (np.diff(every) > 0).all(), "no address twice"
    # Spread across the space, not clustered: every /1 half gets a fair share.
    high = int((every >= 1 << 31).sum())
    assert 0.3 < high / len(every) < 0.6


def test_shards_of_the_full_space_by_counting(internet: TargetSpace) -> None:
    n = internet.size
    for shards in (1, 2, 7, 1000):
        assert sum(Shard(n, shards, i).count for i in range(shards)) == n
    perm = Permutation(n, seed=1)
    # The tail of each of 3 shards: disjoint, all inside the space.
    tails = []
    for i in range(3):
        shard = Shard(n, 3, i)
        (offset, addresses), *_ = iter_target_batches(
            internet, perm, shard, batch_size=1 << 18, start=shard.count - (1 << 18)
        )
        assert offset == shard.count - (1 << 18)
        assert not blocked_mask(addresses).any()
        tails.append(addresses)
    every = np.sort(np.concatenate(tails))
    assert (np.diff(every) > 0).all()
