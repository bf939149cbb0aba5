"""IPv6 in the target space: parsing, the IPv6 default blocklist, refusal and lifting, mixed
families (index order and exact lookup), hitlists, size limits, fingerprints."""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from liveness.errors import InputError
from liveness.targets import (
    TargetSpace,
    default_blocklist,
    default_blocklist6,
    default_intervals6,
    parse_cidr6,
    parse_cidr_list,
    parse_cidrs,
    parse_iid,
    read_cidr_list,
)

IANA6 = [
    line
    for line in (Path(__file__).parent / "iana_ipv6_special_purpose_expected.txt")
    .read_text()
    .splitlines()
    if line and not line.startswith("#")
]


def a6(text: str) -> int:
    return int(ipaddress.IPv6Address(text))


def texts(space: TargetSpace, indices: np.ndarray | None = None) -> list[str]:
    """Every target (or those at ``indices``) as text, through ``lookup``."""
    if indices is None:
        indices = np.arange(space.size, dtype=np.uint64)
    batch = space.lookup(indices)
    return [
        str(ipaddress.IPv6Address(batch.v6[i].tobytes()))
        if batch.is6[i]
        else str(ipaddress.IPv4Address(int(batch.v4[i])))
        for i in range(len(batch))
    ]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2001:db8::/32", (a6("2001:db8::"), 32, 128)),
        ("2001:DB8:0:0:0:0:0:1", (a6("2001:db8::1"), 128, 128)),
        ("::/0", (0, 0, 128)),
        ("  fe80::/10 ", (a6("fe80::"), 10, 128)),
        ("::ffff:1.2.3.4", (a6("::ffff:102:304"), 128, 128)),
        ("2001:db8::/32-64", (a6("2001:db8::"), 32, 64)),
        ("2001:db8::/48-48", (a6("2001:db8::"), 48, 48)),
        ("::/0-128", (0, 0, 128)),
    ],
)
def test_parse_cidr6(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_cidr6(text, "flag", walks=True) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("2001:db8::1/32", "has host bits set; did you mean 2001:db8::/32?"),
        ("2001:db8::/129", "is not an IPv6 address or CIDR block"),
        ("2001:db8::g", "is not an IPv6 address or CIDR block"),
        ("1::2::3", "is not an IPv6 address or CIDR block"),
        ("fe80::1%eth0", "zone id"),
        ("2001:db8::/64-48", "must lie between the prefix length /64 and /128"),
        ("2001:db8::/32-129", "must lie between"),
        ("2001:db8::1/32-64", "host bits set"),
    ],
)
def test_parse_cidr6_errors(text: str, needle: str) -> None:
    with pytest.raises(InputError, match=r"^flag: ") as err:
        parse_cidr6(text, "flag", walks=True)
    assert needle in str(err.value)


def test_walks_only_on_the_command_line_and_only_for_ipv6(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^-w/--allowlist-file: .*walk.*command line"):
        TargetSpace.from_options(["2a00::/32-64"], allowlist=["2a00::/32-48"])
    path = write(tmp_path, "allow.txt", "2a00::/16\n2a00::/32-64\n")
    with pytest.raises(InputError, match=r"allow\.txt:2: '2a00::/32-64': a prefix walk"):
        read_cidr_list(path)
    with pytest.raises(InputError, match=r"^target: '198\.18\.0\.0/16-24': prefix walking"):
        TargetSpace.from_options(["198.18.0.0/16-24"], allowlist=["198.18.0.0/15"])


def test_lists_mix_families_and_keep_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mixed.txt",
        "# both\n8.8.8.0/24\n2a00:1450::/32  # google\n\n1.1.1.1\n2606:4700::1111\n",
    )
    parsed = read_cidr_list(path)
    assert [parsed.block(i) for i in range(len(parsed.rows))] == ["8.8.8.0/24", "1.1.1.1"]
    assert [parsed.origin(i) for i in range(len(parsed.rows))] == [f"{path}:2", f"{path}:5"]
    assert [parsed.v6.block(i) for i in range(len(parsed.v6))] == [
        "2a00:1450::/32",
        "2606:4700::1111",
    ]
    assert [parsed.origin6(i) for i in range(len(parsed.v6))] == [f"{path}:3", f"{path}:6"]
    flags = parse_cidr_list(["2a00::/32-64", "9.9.9.9"], "target", walks=True)
    assert flags.v6.block(0) == "2a00::/32-64" and flags.block(0) == "9.9.9.9"
    with pytest.raises(InputError, match="is IPv6"):
        parse_cidrs(["8.8.8.0/24", "2a00::/32"], "x")


def test_bad_ipv6_line_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "hits.txt", "2a00:1450::1\n8.8.8.8\n# c\n2a00:1450::zz\n")
    with pytest.raises(InputError, match=rf"^{path}:4: '2a00:1450::zz' is not an IPv6 address"):
        TargetSpace.from_files(list_of_ips_file=path)
    path.write_text("2a00:1450::1\n2a00:1450::2 2a00:1450::3\n")
    with pytest.raises(InputError, match=rf"^{path}:2: .*one address or CIDR block per line"):
        TargetSpace.from_files(list_of_ips_file=path)


# --- the IPv6 default blocklist --------------------------------------------------------------


def test_default_blocklist6_is_the_iana_registry() -> None:
    entries = default_blocklist6()
    assert sorted(e.cidr for e in entries) == sorted(IANA6)
    assert all(e.name and e.name != e.cidr and e.version == 6 for e in entries)
    for e in entries:
        net = ipaddress.IPv6Network(e.cidr)
        assert (e.start, e.end) == (int(net.network_address), int(net.broadcast_address) + 1)
    collapsed = list(ipaddress.collapse_addresses(ipaddress.IPv6Network(c) for c in IANA6))
    expected = [(int(n.network_address), int(n.broadcast_address) + 1) for n in collapsed]
    # collapse_addresses leaves touching blocks apart when they do not form one CIDR: merge.
    merged: list[tuple[int, int]] = []
    for start, end in expected:
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    assert list(default_intervals6()) == merged
    # The IPv4 list is untouched: no IPv6 entry in it.
    assert all(e.version == 4 and e.end <= 2**32 for e in default_blocklist())


@pytest.mark.parametrize(
    ("target", "entry"),
    [
        ("2001:db8::/32-64", "2001:db8::/32"),
        ("2001:2::/48-64", "2001:2::/48"),
        ("2001::/16-32", "2001::/32"),  # the first /32 walked is TEREDO (inside 2001::/23)
        ("fe80::/10-64", "fe80::/10"),
        ("ff02::1", "ff00::/8"),
        ("64:ff9b::/96", "64:ff9b::/96"),
        ("2620:4f::/32-64", "2620:4f:8000::/48"),
        ("5f00::/16-64", "5f00::/16"),
        ("3fff::/20-64", "3fff::/20"),
    ],
)
def test_targets_meeting_the_default_blocklist_are_refused(target: str, entry: str) -> None:
    with pytest.raises(InputError) as err:
        TargetSpace.from_options([target])
    message = str(err.value)
    assert message.startswith(f"target {target} overlaps the default blocklist entry {entry} (")
    assert "-w/--allowlist-file" in message


def test_refusal_looks_at_the_probed_address_of_a_walk() -> None:
    # 100::/64 is blocked; the walk 100::/56-56 probes 100::1, inside it: refused.
    with pytest.raises(InputError, match=r"100::/64 \(Discard-Only"):
        TargetSpace.from_options(["100::/56-56"])
    # 64:ff9b::/96 is narrower than a /48, but the walk's /48 64:ff9b::/48 probes 64:ff9b::1,
    # inside it: refused too.
    with pytest.raises(InputError, match=r"64:ff9b::/96"):
        TargetSpace.from_options(["64::/16-48"])
    # 2001:1::1/128 is blocked, yet with fixed:5 the /64 2001:1::/64 probes 2001:1::5, also
    # blocked (2001::/23 holds it): named by the most specific entry holding it.
    with pytest.raises(InputError, match=r"2001::/23 \(IETF"):
        TargetSpace.from_options(["2001:1::/64-64"], iid=parse_iid("fixed:5"))


def test_allowlist_naming_the_range_lifts_it() -> None:
    space = TargetSpace.from_options(["2001:2::/48-64"], allowlist=["2001:2::/48"])
    assert space.size == space.size6 == 65536
    # Any part of it names that part: only the /64s of the named /56 are targets.
    space = TargetSpace.from_options(["2001:2::/48-64"], allowlist=["2001:2:0:100::/56"])
    assert space.size == 256
    assert texts(space)[:2] == ["2001:2:0:100::1", "2001:2:0:101::1"]
    assert texts(space)[-1] == "2001:2:0:1ff::1"
    space = TargetSpace.from_options(["2001:2::/64"], allowlist=["2001:2::/48"])
    assert space.size == 2**64  # the largest space a scan holds
    last = np.array([2**64 - 1], dtype=np.uint64)
    assert texts(space, last) == ["2001:2::ffff:ffff:ffff:ffff"]
    # A range reaching outside the blocklist lifts nothing.
    with pytest.raises(InputError, match=r"2001:2::/48 \(Benchmarking"):
        TargetSpace.from_options(["2001:2::/48-64"], allowlist=["2001::/16"])
    # The allowlist alone, naming a blocked /120: its 256 addresses.
    space = TargetSpace.from_options(allowlist=["2001:db8::/120"])
    assert space.size == 256 and texts(space)[255] == "2001:db8::ff"


def test_user_blocklist_applies_to_ipv6() -> None:
    space = TargetSpace.from_options(
        ["2001:2::/48-64"], allowlist=["2001:2::/48"], blocklist=["2001:2:0:5::/64"]
    )
    assert space.size == 65535
    assert "2001:2:0:5::1" not in texts(space)
    assert texts(space)[4:6] == ["2001:2:0:4::1", "2001:2:0:6::1"]
    # A /128 hitting the probed address removes its prefix; one next to it does not.
    assert TargetSpace.from_options(["2a00:1::/48-64"], blocklist=["2a00:1::1"]).size == 65535
    assert TargetSpace.from_options(["2a00:1::/48-64"], blocklist=["2a00:1::2"]).size == 65536


def test_user_blocklist_removes_what_would_be_refused() -> None:
    # 2620:4f:8000::/47 is half AS112 (refused), unless -b takes that half away.
    with pytest.raises(InputError, match=r"2620:4f:8000::/48 \(Direct Delegation AS112"):
        TargetSpace.from_options(["2620:4f:8000::/47-64"])
    space = TargetSpace.from_options(["2620:4f:8000::/47-64"], blocklist=["2620:4f:8000::/48"])
    assert space.size == 65536
    assert texts(space)[0] == "2620:4f:8001::1"
    with pytest.raises(InputError, match="no address left"):
        TargetSpace.from_options(["2a00::/32-64"], blocklist=["2a00::/16"])


def test_whole_internet_walk_silently_drops_special_ranges() -> None:
    space = TargetSpace.from_options(["::/0-16"])
    # By hand: of the 65536 /16s, those whose address P::1 is special: ::/16 (::1), 100::/16
    # (100::1 in 100::/64), 2001::/16, 2002::/16, 3fff::/16 (3fff::1 in 3fff::/20), 5f00::/16,
    # fc00::/7 (512), fe80::/10 (64), ff00::/8 (256). 64::/16 probes 64::1, outside
    # 64:ff9b::/96, and 2620::/16 probes 2620::1, outside 2620:4f:8000::/48: both kept.
    assert space.size == 65536 - (6 + 512 + 64 + 256) == 64698
    every = set(texts(space))
    assert {"64::1", "2620::1", "2a00::1", "fbff::1", "fe7f::1"} <= every
    assert not {"::1", "100::1", "2001::1", "2002::1", "3fff::1", "fc00::1", "ff02::1"} & every
    # A plain ::/0 is 2**128 addresses: too many.
    with pytest.raises(InputError, match=r"::/0 is 2\*\*128 addresses.*write ::/0-64"):
        TargetSpace.from_options(["::/0"])


def test_whole_internet_walk_at_64_counts_exactly() -> None:
    space = TargetSpace.from_options(["::/0-64"])
    # Independent count: a /64 is dropped when its address P::1 lies in a registry entry.
    dropped: list[tuple[int, int]] = []
    for cidr in IANA6:
        net = ipaddress.IPv6Network(cidr)
        first = int(net.network_address) >> 64
        if net.prefixlen <= 64:
            dropped.append((first, first + (1 << (64 - net.prefixlen))))
        elif ipaddress.IPv6Address(first << 64 | 1) in net:
            dropped.append((first, first + 1))
    dropped.sort()
    count, reach = 0, 0
    for start, end in dropped:
        start = max(start, reach)
        if end > start:
            count += end - start
            reach = end
    assert space.size == 2**64 - count
    assert space.size < 2**64


# --- mixed families --------------------------------------------------------------------------


def test_mixed_space_order_and_exact_lookup() -> None:
    space = TargetSpace.from_options(
        ["2606:4700::/126", "8.8.8.0/30", "2a00:1450::/32-48", "9.9.9.9"]
    )
    assert (space.size4, space.size6, space.size) == (5, 65540, 65545)
    assert space.has_ipv6
    v6 = [str(ipaddress.IPv6Address(f"2a00:1450:{i:x}::1")) for i in range(65536)]
    v6 += [str(ipaddress.IPv6Address(f"2606:4700::{i}")) for i in range(4)]
    expected = ["8.8.8.0", "8.8.8.1", "8.8.8.2", "8.8.8.3", "9.9.9.9", *v6]
    assert texts(space) == expected
    batch = space.lookup(np.array([4, 5, 0, 65544], dtype=np.uint64))
    assert batch.is6.tolist() == [False, True, False, True]
    assert batch.v4.dtype == np.uint32 and batch.v6.dtype == np.uint8
    assert batch.v6.shape == (4, 16) and batch.v6.flags.c_contiguous
    nine, eight = (int(ipaddress.IPv4Address(a)) for a in ("9.9.9.9", "8.8.8.0"))
    assert batch.v4.tolist() == [nine, 0, eight, 0]
    assert not batch.v6[[0, 2]].any()
    assert batch.v6[3].tobytes() == ipaddress.IPv6Address("2606:4700::3").packed
    # addresses() serves the IPv4 part and says so for IPv6 indices.
    assert space.addresses(np.array([1, 4], dtype=np.uint64)).tolist() == [
        int(ipaddress.IPv4Address("8.8.8.1")),
        int(ipaddress.IPv4Address("9.9.9.9")),
    ]
    with pytest.raises(ValueError, match=r"IPv6 target.*lookup"):
        space.addresses(np.array([5], dtype=np.uint64))
    with pytest.raises(IndexError):
        space.lookup(np.array([space.size], dtype=np.uint64))
    assert space.cidrs() == ["8.8.8.0/30", "9.9.9.9/32", "2a00:1450::/32-48", "2606:4700::/126"]
    text = repr(space)
    assert "size=65545" in text and "ipv4=5" in text and "ipv6=65540" in text
    assert "2a00:1450::/32-48" in text


def test_ipv4_only_space_is_unchanged() -> None:
    space = TargetSpace.from_options(["8.8.8.0/24"])
    assert (space.size4, space.size6, space.has_ipv6) == (256, 0, False)
    batch = space.lookup(np.arange(256, dtype=np.uint64))
    assert not batch.is6.any() and not batch.v6.any()
    assert np.array_equal(batch.v4, space.addresses(np.arange(256, dtype=np.uint64)))
    # The fingerprint of an IPv4 space is what resume identities hashed before IPv6.
    assert space.fingerprint() == np.ascontiguousarray(space.intervals, "<u8").tobytes()


def test_each_source_restricts_each_family() -> None:
    # An allowlist naming only IPv4 allows no IPv6.
    with pytest.raises(InputError, match="no address left"):
        TargetSpace.from_options(["2a00::/32-64"], allowlist=["8.8.8.0/24"])
    # Positional IPv6 targets only: no IPv4 even though the allowlist has some.
    space = TargetSpace.from_options(["2a00::/32-48"], allowlist=["8.8.8.0/24", "2a00::/40"])
    assert (space.size4, space.size6) == (0, 256)
    # Positional ∩ allowlist for IPv6: the walk's /48s whose address the allowlist holds.
    space = TargetSpace.from_options(
        ["2a00::/32-48"], allowlist=["2a00:0:7::1", "2a00:0:9::/64", "2a00:0:b::2"]
    )
    assert texts(space) == ["2a00:0:7::1", "2a00:0:9::1"]
    # No positional targets: the allowlist is the target set, both families.
    space = TargetSpace.from_options(allowlist=["8.8.8.8", "2a00::/127"])
    assert texts(space) == ["8.8.8.8", "2a00::", "2a00::1"]


def test_no_targets_message_mentions_both_families() -> None:
    with pytest.raises(InputError, match=r"no targets: .*0\.0\.0\.0/0.*::/0-32"):
        TargetSpace.from_options()


# --- size limits -----------------------------------------------------------------------------


def test_plain_blocks_beyond_2_64_are_refused_with_the_walk_to_use() -> None:
    with pytest.raises(InputError) as err:
        TargetSpace.from_options(["2001:db8::/48"])
    assert str(err.value) == (
        "target 2001:db8::/48 is 2**80 addresses, more than a scan can hold (2**64); "
        "to probe one address in every /64 of it, write 2001:db8::/48-64"
    )
    with pytest.raises(InputError, match=r"2a00::/16-96 is 2\*\*80 .*2a00::/16-64"):
        TargetSpace.from_options(["2a00::/16-96"])
    # What the allowlist leaves counts: the same /48 restricted to a /64 is fine.
    space = TargetSpace.from_options(["2a00::/48"], allowlist=["2a00::/120"])
    assert space.size == 256
    # The allowlist alone, too big to be a target list.
    with pytest.raises(InputError, match=r"^-w/--allowlist-file 2a00::/32 is 2\*\*96 .*walk"):
        TargetSpace.from_options(allowlist=["2a00::/32"])
    # 2**64 IPv6 targets plus one IPv4 target: one too many.
    with pytest.raises(InputError, match="more than a scan can hold"):
        TargetSpace.from_options(["2001:2::/64", "8.8.8.8"], allowlist=["2001:2::/48", "8.8.8.8"])


# --- hitlists --------------------------------------------------------------------------------


def test_hitlist_mixed_families_comments_duplicates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "hits.txt",
        "# a hitlist\n"
        "2a00:1450:4001:800::200e\n"
        "8.8.8.8   # dns\n"
        "2A00:1450:4001:0800:0:0:0:200E\n"  # the first one again
        "\n"
        "2606:4700::1111\n"
        "1.1.1.1\n",
    )
    space = TargetSpace.from_files(list_of_ips_file=path)
    assert (space.size4, space.size6) == (2, 2)
    assert texts(space) == ["1.1.1.1", "8.8.8.8", "2606:4700::1111", "2a00:1450:4001:800::200e"]
    # ∩ positional: only the address a positional target probes survives.
    only = TargetSpace.from_files(["2a00:1450::/32"], list_of_ips_file=path)
    assert texts(only) == ["2a00:1450:4001:800::200e"]
    walk = "2a00:1450:4001:800::/64-64"
    with pytest.raises(InputError, match="no address left"):  # the walk probes ...::1
        TargetSpace.from_files([walk], list_of_ips_file=path)
    fixed = TargetSpace.from_files([walk], list_of_ips_file=path, iid=parse_iid("fixed:200e"))
    assert texts(fixed) == ["2a00:1450:4001:800::200e"]
    # ∩ allowlist, - blocklist.
    allow = write(tmp_path, "allow.txt", "2606:4700::/32\n8.8.8.0/24\n")
    block = write(tmp_path, "block.txt", "8.8.8.8\n")
    space = TargetSpace.from_files(
        allowlist_file=allow, blocklist_file=block, list_of_ips_file=path
    )
    assert texts(space) == ["2606:4700::1111"]


def test_hitlist_refusals_name_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "hits.txt", "2a00::1\n# x\n2a00::2\n::ffff:8.8.4.4\nfe80::1\n")
    with pytest.raises(InputError) as err:
        TargetSpace.from_files(list_of_ips_file=path)
    assert str(err.value).startswith(
        f"{path}:4: ::ffff:808:404 overlaps the default blocklist entry ::ffff:0:0/96 "
        "(IPv4-mapped Address"
    )
    path.write_text("2a00::1\n2001:2::7\n")
    with pytest.raises(InputError, match=rf"^{path}:2: 2001:2::7 overlaps .* 2001:2::/48"):
        TargetSpace.from_files(list_of_ips_file=path)
    allow = write(tmp_path, "allow.txt", "2001:2::/64\n2a00::/16\n")
    space = TargetSpace.from_files(allowlist_file=allow, list_of_ips_file=path)
    assert texts(space) == ["2001:2::7", "2a00::1"]
    path.write_text("2a00::1\n2a00::/64\n")
    with pytest.raises(
        InputError, match=rf"^{path}:2: 2a00::/64: an IPv6 entry of -I.*one address"
    ):
        TargetSpace.from_files(list_of_ips_file=path)
    path.write_text("2a00::1/128\n")
    assert texts(TargetSpace.from_files(list_of_ips_file=path)) == ["2a00::1"]


def test_big_hitlist_reads_into_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    count = 200_000
    hi = (np.uint64(0x2A00) << np.uint64(48)) | rng.integers(0, 2**48, count, dtype=np.uint64)
    lo = rng.integers(0, 2**64, count, dtype=np.uint64)
    values = [(h << 64) | low for h, low in zip(hi.tolist(), lo.tolist(), strict=True)]
    lines = [str(ipaddress.IPv6Address(v)) for v in values]
    lines[1000] = "8.8.8.8"
    path = write(tmp_path, "big.txt", "\n".join(lines) + "\n")
    parsed = read_cidr_list(path)
    assert len(parsed.v6) == count - 1 and parsed.origin(0) == f"{path}:1001"
    assert parsed.origin6(1000) == f"{path}:1002"
    space = TargetSpace.from_files(list_of_ips_file=path)
    expected = sorted(set(values[:1000] + values[1001:]))
    assert space.size6 == len(expected)
    probe = np.array([0, 1, count // 2, count - 1], dtype=np.uint64)
    assert texts(space, probe) == [
        "8.8.8.8",
        *(str(ipaddress.IPv6Address(expected[i - 1])) for i in probe[1:].tolist()),
    ]
    assert space.v6.hits_hi.nbytes + space.v6.hits_lo.nbytes == 16 * space.size6


# --- fingerprints ----------------------------------------------------------------------------


def test_fingerprint_tells_spaces_apart() -> None:
    def fp(*targets: str, **options: Any) -> bytes:
        space = TargetSpace.from_options(list(targets), **options)
        return hashlib.sha256(space.fingerprint()).digest()

    base = fp("8.8.8.0/24", "2a00::/32-64")
    assert base == fp("2a00::/33-64", "2a00:0:8000::/33-64", "8.8.8.0/24")  # same targets
    assert base != fp("8.8.8.0/24", "2a00::/32-56")
    assert base != fp("8.8.8.0/24", "2a00::/32-64", blocklist=["2a00::/64"])
    assert base != fp("8.8.8.0/24", "2a00::/32-64", iid=parse_iid("fixed:2"))
    assert base != fp("8.8.8.0/25", "2a00::/32-64")
    random = fp("2a00::/32-64", iid=parse_iid("random"), seed=1)
    assert random != fp("2a00::/32-64", iid=parse_iid("random"), seed=2)
    # The seed matters for random IIDs only.
    assert fp("2a00::/32-64", seed=1) == fp("2a00::/32-64", seed=2)
    assert fp("8.8.8.0/24") != base
