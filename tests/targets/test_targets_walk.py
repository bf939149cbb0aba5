"""IPv6 prefix walking (``P/L-b``): the IID modes, blocks narrower than a walked prefix, targets
that overlap, and a property test against a brute-force model of the rules."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liveness.errors import InputError
from liveness.targets import IID_LOW, IID_RANDOM, IidMode, TargetSpace, parse_iid
from liveness.targets.iid import interface_ids
from liveness.targets.space6 import generated

BENCH = ["2001:2::/48"]  # the allowlist that makes the benchmarking range scannable


def a6(text: str) -> int:
    return int(ipaddress.IPv6Address(text))


def values(space: TargetSpace) -> list[int]:
    """Every IPv6 target of the space as an int, in index order."""
    batch = space.lookup(np.arange(space.size4, space.size, dtype=np.uint64))
    return [int.from_bytes(row.tobytes(), "big") for row in batch.v6]


# --- parse_iid -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("low", IID_LOW),
        (" LOW ", IID_LOW),
        ("random", IID_RANDOM),
        ("fixed:1", IidMode("fixed", 1)),
        ("fixed:0x1F", IidMode("fixed", 31)),
        ("fixed:" + "f" * 32, IidMode("fixed", 2**128 - 1)),
    ],
)
def test_parse_iid(text: str, mode: IidMode) -> None:
    assert parse_iid(text) == mode
    assert parse_iid(str(mode)) == mode


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("high", "is not an IID mode: use low, random or fixed:HEX"),
        ("fixed:", "1 to 32 hex digits"),
        ("fixed:xyz", "1 to 32 hex digits"),
        ("fixed:" + "1" * 33, "1 to 32 hex digits"),
        ("", "is not an IID mode"),
    ],
)
def test_parse_iid_errors(text: str, needle: str) -> None:
    with pytest.raises(InputError, match=r"^--iid: ") as err:
        parse_iid(text)
    assert needle in str(err.value)


# --- the three modes on 2001:2::/48-64 -------------------------------------------------------


def test_low_iid_probes_prefix_colon_colon_one() -> None:
    space = TargetSpace.from_options(["2001:2::/48-64"], allowlist=BENCH)
    got = values(space)
    assert got == [a6("2001:2::1") + (i << 64) for i in range(65536)]
    assert got[5] == a6("2001:2:0:5::1") and got[-1] == a6("2001:2:0:ffff::1")


def test_fixed_iid_probes_that_value() -> None:
    space = TargetSpace.from_options(
        ["2001:2::/48-64"], allowlist=BENCH, iid=parse_iid("fixed:abcd")
    )
    assert values(space) == [a6("2001:2::abcd") + (i << 64) for i in range(65536)]
    # The value must fit in the 128 - b bits of every walk.
    with pytest.raises(InputError, match=r"--iid fixed:100: .*9 bits.*2001:2::/48-120 leaves 8"):
        TargetSpace.from_options(["2001:2::/48-120"], allowlist=BENCH, iid=parse_iid("fixed:100"))
    small = TargetSpace.from_options(
        ["2001:2::/112-120"], allowlist=BENCH, iid=parse_iid("fixed:ff")
    )
    assert values(small) == [a6("2001:2::ff") + (i << 8) for i in range(256)]


def test_random_iid_is_keyed_per_prefix_and_deterministic() -> None:
    def walk(seed: int, *extra: str, blocklist: list[str] | None = None) -> list[int]:
        space = TargetSpace.from_options(
            ["2001:2::/48-64", *extra],
            allowlist=BENCH,
            blocklist=blocklist,
            iid=IID_RANDOM,
            seed=seed,
        )
        return values(space)

    first = walk(7)
    assert first == walk(7)  # deterministic: retransmissions and --resume agree
    prefixes = [v >> 64 for v in first]
    assert prefixes == [(a6("2001:2::") >> 64) + i for i in range(65536)]  # one per /64
    iids = {v & (2**64 - 1) for v in first}
    assert len(iids) == 65536  # distinct per prefix
    assert 0.45 < sum(i >> 63 for i in iids) / 65536 < 0.55  # the top bit is fair
    other = walk(8)
    assert sum(a == b for a, b in zip(first, other, strict=True)) == 0  # the seed keys it
    # The IID depends on the seed and the prefix only, not on the rest of the space.
    fifth = a6("2001:2:0:5::") >> 64
    alone = TargetSpace.from_options(
        ["2001:2:0:5::/64-64"], allowlist=BENCH, iid=IID_RANDOM, seed=7
    )
    assert values(alone) == [first[5]]
    dropped = walk(7, blocklist=["2001:2::/62"])  # the first four /64s removed
    assert dropped[1] == first[5] and dropped[0] >> 64 == fifth - 1
    # The same address as the scalar helper and the vectorised definition give.
    assert generated(64, [fifth], IID_RANDOM, 7) == [first[5]]
    hi = np.array([fifth], dtype=np.uint64)
    lo = np.zeros(1, dtype=np.uint64)
    iid_hi, iid_lo = interface_ids(IID_RANDOM, 7, np.array([64], np.uint8), hi, lo)
    assert int(iid_hi[0]) == 0 and (fifth << 64 | int(iid_lo[0])) == first[5]


def test_random_iid_fits_the_walk() -> None:
    space = TargetSpace.from_options(["2001:2::/112-120"], allowlist=BENCH, iid=IID_RANDOM)
    got = values(space)
    assert [v >> 8 for v in got] == [(a6("2001:2::") >> 8) + i for i in range(256)]
    assert len({v & 0xFF for v in got}) > 100  # 256 draws of 8 bits: many distinct


def test_plain_block_is_every_address_whatever_the_mode() -> None:
    for mode in (IID_LOW, IID_RANDOM, parse_iid("fixed:ffff")):
        space = TargetSpace.from_options(["2001:2::/120"], allowlist=BENCH, iid=mode)
        assert values(space) == [a6("2001:2::") + i for i in range(256)]


# --- blocks narrower than the walked prefix --------------------------------------------------


def test_block_inside_a_prefix_removes_it_only_when_it_holds_the_address() -> None:
    base = ["2a00:1::/48-64"]
    assert TargetSpace.from_options(base, blocklist=["2a00:1:0:7::/65"]).size == 65535  # ::1
    assert TargetSpace.from_options(base, blocklist=["2a00:1:0:7:8000::/65"]).size == 65536
    fixed = parse_iid("fixed:8000000000000000")
    assert TargetSpace.from_options(base, blocklist=["2a00:1:0:7::/65"], iid=fixed).size == 65536
    # Random: a /65 holds the probed address of its /64 exactly when that IID's top bit says so.
    for seed in range(8):
        iid = generated(64, [a6("2a00:1:0:7::") >> 64], IID_RANDOM, seed)[0] & (2**64 - 1)
        low_half = TargetSpace.from_options(
            base, blocklist=["2a00:1:0:7::/65"], iid=IID_RANDOM, seed=seed
        )
        assert low_half.size == 65536 - (iid >> 63 == 0)
        assert all(v >> 64 != a6("2a00:1:0:7::") >> 64 for v in values(low_half)) == (
            iid >> 63 == 0
        )


def test_allowlist_inside_a_prefix_keeps_it_only_when_it_holds_the_address() -> None:
    got = TargetSpace.from_options(["2a00::/32-48"], allowlist=["2a00:0:5::/127"])
    assert values(got) == [a6("2a00:0:5::1")]
    with pytest.raises(InputError, match="no address left"):
        TargetSpace.from_options(["2a00::/32-48"], allowlist=["2a00:0:5::2/127"])


# --- overlapping targets: no address twice ---------------------------------------------------


@pytest.mark.parametrize(
    ("targets", "size"),
    [
        (["2a00::/32-64", "2a00::/48-64"], 2**32),  # the /48's /64s are the /32's
        (["2a00::/32-64", "2a00::1"], 2**32),  # 2a00::1 is what 2a00::/64 probes
        (["2a00::/32-64", "2a00::2"], 2**32 + 1),
        (["2a00::/32-64", "2a00::/32-48"], 2**32),  # 2a00:0:X::1 are probed by the /64s
        (["2a00::/32-64", "2a00::/40-56"], 2**32),
        (["2a00::/48-64", "2a00::/32-48"], 65536 + 65535),  # only 2a00::1 is shared
        (["2a00::/48-64", "2a00::/120"], 65536 + 255),  # 2a00::1 is in the /120
        (["2a00::/33-64", "2a00:0:8000::/33-64"], 2**32),
    ],
)
def test_overlapping_targets_are_merged(targets: list[str], size: int) -> None:
    space = TargetSpace.from_options(targets)
    assert space.size == size
    if size < 200_000:
        got = values(space)
        assert len(set(got)) == len(got)


def test_overlaps_exact_for_fixed_iid_and_refused_for_random_of_two_steps() -> None:
    fixed = parse_iid("fixed:5")
    space = TargetSpace.from_options(["2a00::/48-64", "2a00::/32-48", "2a00::/120"], iid=fixed)
    # 2a00::5 is probed by 2a00::/64, by the /48 2a00::/48 and lies in 2a00::/120: once.
    assert space.size == 65536 + 65535 + 255
    got = values(space)
    assert len(set(got)) == len(got) and got.count(a6("2a00::5")) == 1
    with pytest.raises(InputError, match=r"2a00::/32-48 and 2a00::/48-64 overlap .*--iid random"):
        TargetSpace.from_options(["2a00::/48-64", "2a00::/32-48"], iid=IID_RANDOM)
    # One step, or a plain block, is exact with random IIDs too.
    space = TargetSpace.from_options(["2a00::/32-64", "2a00::/40-64"], iid=IID_RANDOM)
    assert space.size == 2**32
    iid = generated(64, [a6("2a00::") >> 64], IID_RANDOM, 0)[0]
    space = TargetSpace.from_options(
        ["2a00::/48-64", str(ipaddress.IPv6Address(iid))], iid=IID_RANDOM
    )
    assert space.size == 65536


# --- property test against a brute-force model ----------------------------------------------

# The universe: 2**18 addresses around 2001:200::, the end of the blocklisted 2001::/23.
EDGE = a6("2001:200::")
BASE = EDGE - (1 << 17)
BITS = 18


@st.composite
def blocks(draw: st.DrawFn, walks: bool, step: int | None = None) -> str:
    length = draw(st.integers(128 - BITS + 1, 128))
    block = draw(st.integers(0, (1 << (BITS - (128 - length))) - 1))
    start = BASE + (block << (128 - length))
    text = f"{ipaddress.IPv6Address(start)}/{length}"
    if walks:
        b = step if step is not None and step >= length else draw(st.integers(length, 128))
        text += f"-{b}"
    return text


def model(
    targets: list[str],
    allow: list[str] | None,
    block: list[str],
    mode: IidMode,
    seed: int,
) -> set[int] | None:
    """The documented rules, address by address. None means "must be refused"."""
    size = 1 << BITS

    def mask(entries: list[str]) -> np.ndarray:
        out = np.zeros(size, dtype=bool)
        for text in entries:
            net = ipaddress.IPv6Network(text.split("-")[0])
            lo = int(net.network_address) - BASE
            out[lo : lo + net.num_addresses] = True
        return out

    allowed = mask(allow) if allow is not None else np.ones(size, dtype=bool)
    user = mask(block)
    registry = np.zeros(size, dtype=bool)
    registry[: EDGE - BASE] = True
    default = registry.copy()
    for text in allow or []:
        net = ipaddress.IPv6Network(text)
        lo = int(net.network_address) - BASE
        if registry[lo : lo + net.num_addresses].all():
            default[lo : lo + net.num_addresses] = False  # named: lifted
    refused = allowed & default & ~user
    chosen: set[int] = set()
    for text in targets:
        prefix, step = text.split("-")
        net = ipaddress.IPv6Network(prefix)
        b = int(step)
        probes = []
        for n in range(1 << (b - net.prefixlen)):
            p = int(net.network_address) + (n << (128 - b))
            high = np.array([p >> 64], np.uint64)
            low = np.array([p & (2**64 - 1)], np.uint64)
            hi, lo = interface_ids(mode, seed, np.array([b], dtype=np.uint8), high, low)
            probes.append(p | int(hi[0]) << 64 | int(lo[0]))
        offsets = [p - BASE for p in probes]
        if any(refused[o] for o in offsets):
            return None
        chosen |= {p for p, o in zip(probes, offsets, strict=True) if allowed[o] and not user[o]}
    if not targets:
        chosen = {BASE + o for o in np.flatnonzero(allowed & ~user & ~default).tolist()}
    return {p for p in chosen if not default[p - BASE]}


def span_bits(walk: str) -> int:
    """``b - L`` of the walk ``P/L-b``: log2 of its number of targets."""
    length, step = walk.split("/")[1].split("-")
    return int(step) - int(length)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.data(),
    st.sampled_from(["low", "fixed:3", "random"]),
    st.integers(0, 2**32),
)
def test_walks_match_the_model(data: st.DataObject, mode_text: str, seed: int) -> None:
    mode = parse_iid(mode_text)
    # Random IIDs: walks of one step (two steps that overlap are refused, tested above).
    step = data.draw(st.integers(118, 128)) if mode_text == "random" else None
    targets = data.draw(st.lists(blocks(walks=True, step=step), max_size=3))
    if step is not None:
        targets = [t for t in targets if t.endswith(f"-{step}") or t.endswith("-128")]
    targets = [t for t in targets if span_bits(t) <= 12]
    allow = data.draw(st.none() | st.lists(blocks(walks=False), max_size=3))
    block = data.draw(st.lists(blocks(walks=False), max_size=3))
    if mode.kind == "fixed":
        targets = [t for t in targets if int(t.split("-")[1]) <= 126]
    if not targets and allow is None:
        return
    expected = model(targets, allow, block, mode, seed)
    try:
        space = TargetSpace.from_options(
            targets, allowlist=allow, blocklist=block, iid=mode, seed=seed
        )
    except InputError as err:
        assert expected is None or not expected, (targets, allow, block, str(err))
        return
    assert expected is not None, (targets, allow, block)
    got = values(space)
    assert len(got) == len(set(got)), "an address twice"
    assert set(got) == expected
