"""IPv4 set verbs against Python sets on random data; CIDR covers; set files."""

from __future__ import annotations

import ipaddress
import tempfile
from functools import reduce
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroaring import BitMap

from liveness.analysis import ipset, ipset4
from liveness.errors import InputError

# Addresses clustered near a few bases, so sets overlap, form runs and cross 2**24 windows.
BASES = (0, 2**24 - 40, 0x0A000000, 2**32 - 64)
address = st.builds(lambda b, o: min(b + o, 2**32 - 1), st.sampled_from(BASES), st.integers(0, 100))
address_lists = st.lists(address, max_size=80)


def as_set(values: list[int]) -> BitMap:
    return ipset4.from_addresses(np.array(values, dtype=np.uint32))


@settings(max_examples=80, deadline=None)
@given(st.lists(address_lists, min_size=1, max_size=4))
def test_verbs_match_python_sets(lists: list[list[int]]) -> None:
    sets = [as_set(values) for values in lists]
    plain = [set(values) for values in lists]
    assert set(ipset4.union(*sets)) == set().union(*plain)
    assert set(ipset4.intersect(*sets)) == reduce(set.intersection, plain)
    assert set(ipset4.difference(*sets)) == plain[0] - set().union(*plain[1:])
    assert set(ipset4.symdiff(*sets)) == reduce(set.symmetric_difference, plain)
    assert len(sets[0]) == len(plain[0])
    assert ipset4.to_addresses(sets[0]).tolist() == sorted(plain[0])


@settings(max_examples=80, deadline=None)
@given(address_lists, st.integers(0, 32))
def test_mask_matches_python(values: list[int], prefix: int) -> None:
    netmask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    assert set(ipset4.mask(as_set(values), prefix)) == {v & netmask for v in values}


@settings(max_examples=80, deadline=None)
@given(address_lists)
def test_cidr_cover_is_exact_and_minimal(values: list[int]) -> None:
    cover = ipset4.format_cidrs(*ipset4.cidr_cover(as_set(values)))
    hosts = [ipaddress.IPv4Network(v) for v in set(values)]
    collapsed = ipaddress.collapse_addresses(hosts)
    assert cover == [str(network) for network in collapsed]  # the unique minimal cover


@settings(max_examples=40, deadline=None)
@given(address_lists)
def test_cidr_list_round_trips_through_from_text(values: list[int]) -> None:

    original = as_set(values)
    with tempfile.TemporaryDirectory() as directory:
        text = Path(directory) / "cidrs.txt"
        text.write_text(
            "".join(f"{c}\n" for c in ipset4.format_cidrs(*ipset4.cidr_cover(original)))
        )
        assert ipset.from_text(str(text)).v4 == original


def test_large_ranges_are_not_materialised() -> None:
    everything = ipset4.from_ranges([0], [2**32])
    bases, lengths = ipset4.cidr_cover(everything)
    assert bases.tolist() == [0] and lengths.tolist() == [0]
    assert len(ipset4.mask(everything, 8)) == 256
    split = ipset4.from_ranges([2**24 - 1], [2**25 + 1])
    assert ipset4.format_cidrs(*ipset4.cidr_cover(split)) == [
        "0.255.255.255/32",
        "1.0.0.0/8",
        "2.0.0.0/32",
    ]


def test_from_text_reads_addresses_cidrs_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("# allow list\n10.0.0.0/30\n\n192.0.2.7  # one host\n10.0.0.2\n10.1.2.3/24\n")
    expected = {int(ipaddress.IPv4Address(a)) for a in ("10.0.0.0", "10.0.0.1", "10.0.0.2")}
    expected |= {int(ipaddress.IPv4Address("10.0.0.3")), int(ipaddress.IPv4Address("192.0.2.7"))}
    expected |= set(
        range(int(ipaddress.IPv4Address("10.1.2.0")), 256 + int(ipaddress.IPv4Address("10.1.2.0")))
    )
    assert set(ipset.from_text(str(path)).v4) == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("10.0.0.1\nfoo\n", r"line 2: not an address or CIDR: 'foo'"),
        ("10.0.0.1\n\n10.0.0.0/40\n", r"line 3: bad prefix length in '10.0.0.0/40'"),
        ("# c\n1.2.3.256\n", r"line 2: not an address or CIDR"),
    ],
)
def test_from_text_errors_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "list.txt"
    path.write_text(content)
    with pytest.raises(InputError, match=rf"list.txt: {message}"):
        ipset.from_text(str(path))


def test_set_files_round_trip_and_bad_files_are_named(tmp_path: Path) -> None:
    original = ipset4.from_ranges([10, 5000], [4000, 70000]) | as_set([2**31, 7])
    path = tmp_path / "a.roar"
    ipset.save_set(original, str(path))
    assert ipset.load_set(str(path)).v4 == original
    data = path.read_bytes()
    assert BitMap.deserialize(data) == original  # an IPv4 set is still one plain roaring bitmap
    for name, content in (
        ("cut.roar", data[:-3]),
        ("long.roar", data + b"xx"),
        ("text.roar", b"hello\n"),
        ("empty.roar", b""),
    ):
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(InputError, match=rf"{name}: not an IP set file"):
            ipset.load_set(str(bad))
    with pytest.raises(InputError, match=r"missing.roar: cannot read"):
        ipset.load_set(str(tmp_path / "missing.roar"))
