"""Property tests over random allow/block lists, against a brute-force model of the rules.

The universe is the /14 198.16.0.0-198.19.255.255: its upper half is the default-blocklisted
benchmarking range 198.18.0.0/15, its lower half is ordinary space, so random lists exercise the
refusal and lifting rules as well as plain set arithmetic.
"""

from __future__ import annotations

import ipaddress

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from liveness.errors import InputError
from liveness.targets import Permutation, Shard, TargetSpace

BASE = int(ipaddress.IPv4Address("198.16.0.0"))
BITS = 18
SIZE = 1 << BITS
BLOCKED_LO = int(ipaddress.IPv4Address("198.18.0.0")) - BASE  # default blocklist in the universe


@st.composite
def cidrs(draw: st.DrawFn) -> str:
    prefix = draw(st.integers(32 - BITS, 32))
    host_bits = 32 - prefix
    block = draw(st.integers(0, (SIZE >> host_bits) - 1))
    return f"{ipaddress.IPv4Address(BASE + (block << host_bits))}/{prefix}"


cidr_lists = st.lists(cidrs(), max_size=5)


def mask_of(entries: list[str]) -> np.ndarray:
    mask = np.zeros(SIZE, dtype=bool)
    for text in entries:
        net = ipaddress.IPv4Network(text)
        lo = int(net.network_address) - BASE
        mask[lo : lo + net.num_addresses] = True
    return mask


def model(
    targets: list[str], allow: list[str] | None, block: list[str], default: bool
) -> np.ndarray | None:
    """The documented rules, brute force. None means "must be refused"."""
    allowed = mask_of(allow) if allow is not None else np.ones(SIZE, dtype=bool)
    chosen = allowed & mask_of(targets) if targets else allowed.copy()
    user = mask_of(block)
    default_mask = np.zeros(SIZE, dtype=bool)
    if default:
        default_mask[BLOCKED_LO:] = True
        registry = default_mask.copy()
        for text in allow or []:
            net = ipaddress.IPv4Network(text)
            lo = int(net.network_address) - BASE
            if registry[lo : lo + net.num_addresses].all():
                default_mask[lo : lo + net.num_addresses] = False  # named: lifted
        refused = allowed & default_mask & ~user
        if any((mask_of([t]) & refused).any() for t in targets):
            return None
    kept: np.ndarray = chosen & ~user & ~default_mask
    return kept


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    targets=cidr_lists,
    allow=st.none() | cidr_lists,
    block=cidr_lists,
    default=st.booleans(),
    seed=st.integers(0, 2**64 - 1),
    shards=st.integers(1, 6),
)
def test_space_permutation_and_shards_follow_the_rules(
    targets: list[str],
    allow: list[str] | None,
    block: list[str],
    default: bool,
    seed: int,
    shards: int,
) -> None:
    expected = model(targets, allow, block, default) if (targets or allow is not None) else None
    try:
        space = TargetSpace.from_options(targets, allow, block, default_blocklist=default)
    except InputError as err:
        event("refused" if expected is None else "empty or no targets")
        assert expected is None or not expected.any(), f"unexpected refusal: {err}"
        return
    assert expected is not None, "should have been refused"
    event("space built")
    want = np.flatnonzero(expected).astype(np.uint64) + BASE
    assert space.size == len(want)
    if default and want.size and int(want[-1]) >= BASE + BLOCKED_LO:
        event("space built, with lifted default-blocklisted addresses")

    index = np.arange(space.size, dtype=np.uint64)
    got = space.addresses(index)
    assert np.array_equal(got.astype(np.uint64), want)
    assert np.array_equal(space.index_of(got), index.astype(np.int64))
    # Never in the user's blocklist, never in an unlifted default range.
    assert not mask_of(block)[got.astype(np.int64) - BASE].any()
    assert np.array_equal(
        np.sort(np.concatenate([mask_of([c]).nonzero()[0] for c in space.cidrs()])), want - BASE
    )

    perm = Permutation(space.size, seed)
    order = perm(index)
    assert np.array_equal(np.sort(order), index)

    owned = [Shard(space.size, shards, i) for i in range(shards)]
    parts = [perm(s.positions(0, s.count)) for s in owned]
    union = np.sort(np.concatenate(parts))
    assert np.array_equal(union, index), "shards cover every target exactly once"
