"""The permutation and shards beyond 2**32 (IPv6 spaces, up to 2**64), and the IPv4-sized order
pinned to values captured before the change (saved checkpoints depend on it)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from liveness.errors import InputError
from liveness.targets import Permutation, Shard, TargetSpace, iter_target_lookups, parse_iid
from liveness.targets import permutation as permutation_module

# (n, seed) -> (perm([0, 1, 2, n//2, n-1]), perm.inverse(same)), from the implementation of
# before IPv6 (table-driven rounds only, n <= 2**32).
CAPTURED = {
    (10, 1): ([3, 2, 1, 5, 0], [9, 2, 1, 5, 8]),
    (1000, 12345): ([210, 124, 763, 238, 332], [511, 848, 845, 190, 636]),
    (65537, 7): ([24303, 59646, 18891, 43869, 63054], [18653, 6826, 63930, 29112, 63892]),
    (2**32, 2024): (
        [3378140521, 3457402310, 3580511735, 3940190853, 2183335428],
        [3212143438, 3974331976, 1653780600, 2412509302, 2375522342],
    ),
    (2**32 - 1, 99): (
        [3712740516, 3658983778, 1778187048, 1534925788, 2692851462],
        [4016439272, 2252707804, 1047092863, 1905265524, 4065428627],
    ),
    (3702258432, 31337): (
        [874325055, 1762879570, 640674408, 2407555214, 3208707972],
        [2586047390, 2559042339, 3055867864, 2534105554, 2155544301],
    ),
    (2**24 + 3, 0): (
        [2391212, 10510776, 13250651, 14777879, 8071193],
        [14571698, 13507209, 12370880, 12897800, 12682674],
    ),
}
# sha256 of perm(arange(min(n, 2**16))) as little-endian uint64, captured the same way.
CAPTURED_DIGESTS = {
    (2**32, 2024): "ae15a541efe9e257f2febfb660d0d6806fa893092014db87422a4dc8888ee23b",
    (3702257664, 31337): "77fc922ad3be3b5d6b9e1c6c42d30767e655c97bfc5d837c75d100dc42a95e65",
    (1000, 12345): "964e5be2e2aa8046af365bca2266388e065b97adc6bef0f884a10102721375f7",
    (70000, 5): "a42abe09c38a0c1b3fd2a6c0f6cb74d4aca896e8e826b7c2e7197538bbecec16",
}
WHOLE_IPV4_SPACE_SHA256 = "f360e0a9d7c5469639ae7deafcb2d391238af4ff569318f0b360320c35741809"


@pytest.mark.parametrize(("n", "seed"), sorted(CAPTURED))
def test_ipv4_sized_order_is_unchanged(n: int, seed: int) -> None:
    perm = Permutation(n, seed)
    positions = np.array([0, 1, 2, n // 2, n - 1], dtype=np.uint64)
    forward, backward = CAPTURED[n, seed]
    assert perm(positions).tolist() == forward
    assert perm.inverse(positions).tolist() == backward


@pytest.mark.parametrize(("n", "seed"), sorted(CAPTURED_DIGESTS))
def test_ipv4_sized_order_digests_are_unchanged(n: int, seed: int) -> None:
    out = Permutation(n, seed)(np.arange(min(n, 2**16), dtype=np.uint64))
    assert hashlib.sha256(out.astype("<u8").tobytes()).hexdigest() == CAPTURED_DIGESTS[n, seed]


def test_whole_ipv4_space_digest_is_unchanged() -> None:
    space = TargetSpace.from_options(["0.0.0.0/0"])
    assert space.size == 3702257664
    assert hashlib.sha256(space.fingerprint()).hexdigest() == WHOLE_IPV4_SPACE_SHA256


def test_computed_rounds_equal_the_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The round function beyond 2**32 is the one the tables hold, computed: same order."""
    tabled = {n: Permutation(n, 11)(np.arange(n, dtype=np.uint64)) for n in (5, 1000, 65537)}
    monkeypatch.setattr(permutation_module, "TABLE_DOMAIN", 0)
    for n, expected in tabled.items():
        perm = Permutation(n, 11)
        assert not perm._tabled
        assert np.array_equal(perm(np.arange(n, dtype=np.uint64)), expected)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 100, 255, 4097, 65535, 70001, 1 << 18])
def test_computed_rounds_are_a_bijection(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    monkeypatch.setattr(permutation_module, "TABLE_DOMAIN", 0)
    perm = Permutation(n, seed=n * 31)
    everything = np.arange(n, dtype=np.uint64)
    out = perm(everything)
    assert np.array_equal(np.sort(out), everything)
    assert np.array_equal(perm.inverse(out), everything)


@pytest.mark.parametrize(
    "n", [2**32 + 1, 2**40, 2**40 + 12345, 3 * 2**45, 2**63 + 5, 2**64 - 1, 2**64]
)
def test_large_domains_sampled(n: int) -> None:
    perm = Permutation(n, seed=2026)
    rng = np.random.default_rng(n % 1000)
    spread = rng.integers(0, min(n, 2**64 - 1), 50_000, dtype=np.uint64, endpoint=False)
    ends = np.arange(1000, dtype=np.uint64)
    positions = np.unique(np.concatenate([spread, ends, np.uint64(n - 1) - ends]))
    out = perm(positions)
    assert out.dtype == np.uint64
    assert len(np.unique(out)) == len(positions), "no two positions share an index"
    assert int(out.max()) < n or n == 2**64
    assert np.array_equal(perm.inverse(out), positions)
    # Deterministic for (seed, n); keyed by both.
    assert np.array_equal(Permutation(n, seed=2026)(positions[:100]), out[:100])
    assert not np.array_equal(Permutation(n, seed=2027)(positions[:100]), out[:100])
    # Consecutive positions land all over the domain.
    first = perm(np.arange(10_000, dtype=np.uint64)).astype(np.float64) / n
    assert 0.4 < float(np.mean(first)) < 0.6 and float(np.max(first)) > 0.9


def test_domain_limits() -> None:
    assert permutation_module.MAX_DOMAIN == 2**64
    assert Permutation(2**64, seed=1).n == 2**64
    with pytest.raises(InputError, match="1 to 2\\*\\*64"):
        Permutation(2**64 + 1, seed=1)
    perm = Permutation(2**40, seed=1)
    with pytest.raises(IndexError):
        perm(np.array([2**40], dtype=np.uint64))


@pytest.mark.parametrize(("n", "shards"), [(2**64, 3), (2**64 - 1, 7), (2**40 + 3, 1000)])
def test_shards_of_huge_spaces(n: int, shards: int) -> None:
    parts = [Shard(n, shards, i) for i in range(shards)]
    assert sum(p.count for p in parts) == n
    assert max(p.count for p in parts) - min(p.count for p in parts) <= 1
    for i, part in enumerate(parts):
        tail = part.positions(part.count - 3, part.count + 10)
        assert tail.dtype == np.uint64 and len(tail) == 3
        assert [int(p) % shards for p in tail] == [i] * 3
        assert int(tail[-1]) <= n - 1 and int(tail[-1]) + shards > n - 1
        head = part.positions(0, 3)
        assert head.tolist() == [i, i + shards, i + 2 * shards]
    # Sampled union: the shard owning a position holds it at offset position // shards.
    rng = np.random.default_rng(3)
    for p in rng.integers(0, min(n, 2**63), 20, dtype=np.uint64).tolist():
        owner = parts[p % shards]
        assert owner.positions(p // shards, p // shards + 1).tolist() == [p]


def test_small_shards_of_a_computed_permutation_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(permutation_module, "TABLE_DOMAIN", 0)
    n = 10_007
    perm = Permutation(n, seed=5)
    seen = np.concatenate(
        [perm(Shard(n, 4, i).positions(0, Shard(n, 4, i).count)) for i in range(4)]
    )
    assert np.array_equal(np.sort(seen), np.arange(n, dtype=np.uint64))


def test_ipv6_walk_through_permutation_and_shards() -> None:
    space = TargetSpace.from_options(["::/0-64"], iid=parse_iid("random"), seed=9)
    assert space.size > 2**63
    perm = Permutation(space.size, seed=9)
    got = []
    for i in range(3):
        shard = Shard(space.size, 3, i)
        start = shard.count - 20_000
        for offset, batch in iter_target_lookups(space, perm, shard, 10_000, start=start):
            assert offset in (start, start + 10_000)
            assert batch.is6.all() and batch.v6.shape == (10_000, 16)
            got.append(batch.v6)
    rows = np.concatenate(got)
    assert len(np.unique(rows.view("V16").reshape(-1))) == len(rows), "no address twice"
    # None in fc00::/7, fe80::/10, ff00::/8 or 2001:db8::/32.
    assert not ((rows[:, 0] & 0xFE) == 0xFC).any()
    assert not ((rows[:, 0] == 0xFE) & ((rows[:, 1] & 0xC0) == 0x80)).any()
    assert not (rows[:, 0] == 0xFF).any()
    assert not ((rows[:, :4] == [0x20, 0x01, 0x0D, 0xB8]).all(axis=1)).any()
