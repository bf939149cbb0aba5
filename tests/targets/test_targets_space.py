"""The target space: allow/block rules, refusals, index <-> address mapping."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
import pytest

from liveness.errors import InputError
from liveness.targets import TargetSpace, default_blocklist, default_intervals

# Independent statement of the default blocklist (IANA special-purpose registry + 224/4 + 240/4).
IANA_SPECIAL = [
    line
    for line in (Path(__file__).parent / "iana_special_purpose_expected.txt")
    .read_text()
    .splitlines()
    if line and not line.startswith("#")
]


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def addrs(*texts: str) -> np.ndarray:
    return np.array([ip(t) for t in texts], dtype=np.uint32)


def test_default_blocklist_is_the_iana_registry() -> None:
    assert sorted(e.cidr for e in default_blocklist()) == sorted(IANA_SPECIAL)
    assert all(e.name and e.name != e.cidr for e in default_blocklist())
    blocked = sum(
        n.num_addresses
        for n in ipaddress.collapse_addresses(ipaddress.IPv4Network(c) for c in IANA_SPECIAL)
    )
    merged = default_intervals()
    assert int((merged[:, 1] - merged[:, 0]).sum()) == blocked


def test_no_targets_is_an_error() -> None:
    with pytest.raises(InputError, match=r"no targets: .*0\.0\.0\.0/0"):
        TargetSpace.from_options()


def test_benchmark_range_refused_without_allowlist() -> None:
    with pytest.raises(InputError) as err:
        TargetSpace.from_options(["198.18.0.0/24"])
    message = str(err.value)
    assert "198.18.0.0/24" in message
    assert "198.18.0.0/15" in message
    assert "-w" in message


def test_partly_blocked_cidr_is_refused() -> None:
    with pytest.raises(InputError, match=r"198\.0\.0\.0/8 .*198\.18\.0\.0/15"):
        TargetSpace.from_options(["198.0.0.0/8"])
    with pytest.raises(InputError, match=r"target 127\.0\.0\.0/31 .*127\.0\.0\.0/8"):
        TargetSpace.from_options(["1.1.1.1", "8.8.8.8/32", "127.0.0.0/31", "10.1.2.3"])
    with pytest.raises(InputError, match=r"target 10\.1\.2\.3 .*10\.0\.0\.0/8"):
        TargetSpace.from_options(["1.1.1.1", "10.1.2.3"])


def test_allowlist_naming_the_range_lifts_the_default_blocklist() -> None:
    space = TargetSpace.from_options(["198.18.0.0/24"], allowlist=["198.18.0.0/15"])
    assert space.size == 256
    assert space.cidrs() == ["198.18.0.0/24"]
    # The allowlist alone as targets.
    space = TargetSpace.from_options(allowlist=["198.18.0.0/15", "8.8.8.0/24"])
    assert space.cidrs() == ["8.8.8.0/24", "198.18.0.0/15"]
    # Lifted for exactly the named part: the rest of 198.18/15 stays refused.
    with pytest.raises(InputError, match=r"198\.18\.0\.0/15"):
        TargetSpace.from_options(["198.18.0.0/16"], allowlist=["198.18.0.0/24", "198.0.0.0/8"])
    space = TargetSpace.from_options(["0.0.0.0/0"], allowlist=["198.18.0.0/24", "198.18.1.0/24"])
    assert space.cidrs() == ["198.18.0.0/23"]
    # Only the targeted part (positional ∩ allowlist) must be named.
    space = TargetSpace.from_options(
        ["198.18.0.0/16"], allowlist=["198.18.0.0/24", "198.18.1.0/24"]
    )
    assert space.cidrs() == ["198.18.0.0/23"]


def test_allowlist_reaching_outside_the_blocklist_lifts_nothing() -> None:
    space = TargetSpace.from_options(allowlist=["198.0.0.0/8"])
    assert not space.contains(addrs("198.18.0.1", "198.19.255.255")).any()
    assert space.contains(addrs("198.0.0.0", "198.17.255.255", "198.20.0.0")).all()
    space = TargetSpace.from_options(allowlist=["0.0.0.0/0"])
    assert not space.contains(addrs("10.0.0.1", "127.0.0.1", "224.0.0.1")).any()
    with pytest.raises(InputError, match=r"10\.0\.0\.0/8"):
        TargetSpace.from_options(["10.0.0.0/8"], allowlist=["0.0.0.0/0"])


def test_user_blocklist_always_applies() -> None:
    space = TargetSpace.from_options(
        ["198.18.0.0/24"], allowlist=["198.18.0.0/15"], blocklist=["198.18.0.128/25"]
    )
    assert space.cidrs() == ["198.18.0.0/25"]
    space = TargetSpace.from_options(["8.0.0.0/8"], blocklist=["8.8.8.8"])
    assert space.size == 2**24 - 1
    assert not space.contains(addrs("8.8.8.8"))[0]
    # The user's own blocklist removes what the default one would have refused.
    space = TargetSpace.from_options(
        ["198.0.0.0/8"], blocklist=["198.18.0.0/15", "198.51.100.0/24"]
    )
    assert space.size == 2**24 - 2**17 - 2**8
    with pytest.raises(InputError, match="no address left to scan"):
        TargetSpace.from_options(["8.8.8.0/24"], blocklist=["8.0.0.0/8"])


def test_whole_internet_excludes_every_special_purpose_range() -> None:
    space = TargetSpace.from_options(["0.0.0.0/0"])
    for cidr in IANA_SPECIAL:
        net = ipaddress.IPv4Network(cidr)
        probe = addrs(str(net.network_address), str(net.broadcast_address))
        assert not space.contains(probe).any(), cidr
        assert (space.index_of(probe) == -1).all(), cidr
    assert space.contains(addrs("1.1.1.1", "8.8.8.8", "223.255.255.255")).all()


def test_default_blocklist_can_be_disabled() -> None:
    space = TargetSpace.from_options(["10.0.0.0/8"], default_blocklist=False)
    assert space.size == 2**24


def test_targets_intersect_positional_allowlist_and_ip_list() -> None:
    space = TargetSpace.from_options(
        ["8.8.0.0/16"], allowlist=["8.8.8.0/24", "9.9.9.0/24"], ip_list=["8.8.8.8", "8.8.4.4"]
    )
    assert space.cidrs() == ["8.8.8.8/32"]
    space = TargetSpace.from_options(ip_list=["1.1.1.1", "1.1.1.1", "1.1.1.0"])
    assert space.cidrs() == ["1.1.1.0/31"]
    with pytest.raises(InputError, match=r"^-I/--list-of-ips-file 192\.168\.1\.1 overlaps"):
        TargetSpace.from_options(ip_list=["1.1.1.1", "192.168.1.1"])


def test_from_files_reads_zmap_lists(tmp_path: Path) -> None:
    allow = tmp_path / "allow.txt"
    allow.write_text("# testbed\n198.18.0.0/15\n")
    block = tmp_path / "block.txt"
    block.write_text("198.18.0.0/24 # routers\n")
    ips = tmp_path / "ips.txt"
    ips.write_text("198.18.0.1\n198.18.1.1\n198.18.1.2\n")
    space = TargetSpace.from_files(allowlist_file=allow, blocklist_file=block, list_of_ips_file=ips)
    assert space.cidrs() == ["198.18.1.1/32", "198.18.1.2/32"]
    ips.write_text("# list\n8.8.8.8\n\n10.9.9.9\n")
    with pytest.raises(InputError, match=r"ips\.txt:4: 10\.9\.9\.9 overlaps .* 10\.0\.0\.0/8"):
        TargetSpace.from_files(list_of_ips_file=ips)
    block.write_text("198.18.0.0/24\nbogus\n")
    with pytest.raises(InputError, match=r"block.txt:2: 'bogus'"):
        TargetSpace.from_files(["8.8.8.0/24"], blocklist_file=block)


def test_index_address_round_trip() -> None:
    space = TargetSpace.from_options(
        ["1.0.0.0/24", "1.0.2.0/23", "5.6.7.8", "223.255.255.0/24"], blocklist=["1.0.2.5"]
    )
    expected = [int(a) for cidr in space.cidrs() for a in ipaddress.IPv4Network(cidr)]
    assert space.size == len(expected) == 256 + 511 + 1 + 256
    index = np.arange(space.size, dtype=np.uint64)
    got = space.addresses(index)
    assert got.dtype == np.uint32
    assert got.tolist() == sorted(expected)
    assert (space.index_of(got) == index.astype(np.int64)).all()
    outside = addrs("1.0.1.0", "1.0.2.5", "0.0.0.0", "255.255.255.255", "5.6.7.9")
    assert (space.index_of(outside) == -1).all()
    assert not space.contains(outside).any()
    assert space.contains(got).all()
    with pytest.raises(IndexError):
        space.addresses(np.array([space.size], dtype=np.uint64))
    with pytest.raises(IndexError):
        space.addresses(np.array([-1]))
    assert "size=1024" in repr(space)


def test_intervals_are_read_only_and_cover_the_space() -> None:
    space = TargetSpace.from_options(["8.8.8.0/24", "8.8.9.0/24", "9.9.9.9"])
    assert space.intervals.tolist() == [
        [ip("8.8.8.0"), ip("8.8.10.0")],
        [ip("9.9.9.9"), ip("9.9.9.10")],
    ]
    with pytest.raises(ValueError):
        space.intervals[0, 0] = 0
