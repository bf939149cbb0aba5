"""IPv6 and mixed-family IP sets: verbs against Python sets of ``ipaddress`` addresses
(Hypothesis), CIDR covers, masks, the file format, text lists, dual-stack scans, the CLI."""

from __future__ import annotations

import ipaddress
import json
import struct
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroaring import BitMap

from liveness.analysis import ipset, ipset4, ipset6
from liveness.analysis.ipset import IPSet
from liveness.cli.main import cli, main
from liveness.errors import InputError
from liveness.output.schema import REPLY_SCHEMA
from liveness.output.writers import open_writer
from liveness.targets import wide

IPv6 = ipaddress.IPv6Address
TOP = 2**128 - 1
# Addresses near a few bases, so sets overlap, form runs and cross 64-bit and space edges.
BASES = (0, 2**64 - 40, int(IPv6("2001:db8::")), TOP - 60)
address = st.builds(lambda b, o: min(b + o, TOP), st.sampled_from(BASES), st.integers(0, 100))
address_lists = st.lists(address, max_size=60)
blocks = st.lists(st.tuples(address, st.integers(122, 128)), max_size=6)


def v6(values: list[int]) -> ipset6.Set6:
    return ipset6.from_addresses(*wide.from_ints(values))


def members(result: ipset6.Set6) -> set[IPv6]:
    """Every address of a small set, through Python ints (independent of the numpy paths)."""
    first_hi, first_lo, last_hi, last_lo = result.intervals()
    found: set[IPv6] = set()
    for first, last in zip(
        wide.to_ints(first_hi, first_lo), wide.to_ints(last_hi, last_lo), strict=True
    ):
        assert last - first < 10_000
        found |= {IPv6(a) for a in range(first, last + 1)}
    return found


def python(values: list[int]) -> set[IPv6]:
    return {IPv6(v) for v in values}


@settings(max_examples=100, deadline=None)
@given(st.lists(address_lists, min_size=1, max_size=4))
def test_verbs_match_python_sets(lists: list[list[int]]) -> None:
    sets = [v6(values) for values in lists]
    plain = [python(values) for values in lists]
    assert members(ipset6.union(*sets)) == set().union(*plain)
    assert members(ipset6.intersect(*sets)) == reduce(set.intersection, plain)
    assert members(ipset6.difference(*sets)) == plain[0] - set().union(*plain[1:])
    assert members(ipset6.symdiff(*sets)) == reduce(set.symmetric_difference, plain)
    assert sets[0].count == len(plain[0])
    assert ipset6.union(*sets) == ipset6.union(*reversed(sets))  # canonical: equal arrays
    listed = [a for hi, lo in ipset6.address_chunks(sets[0]) for a in wide.to_ints(hi, lo)]
    assert listed == sorted(int(a) for a in plain[0])


@settings(max_examples=100, deadline=None)
@given(address_lists, blocks)
def test_cidr_blocks_match_ipaddress(values: list[int], cidrs: list[tuple[int, int]]) -> None:
    networks = [ipaddress.IPv6Network((a, n), strict=False) for a, n in cidrs]
    hi, lo = wide.from_ints([a for a, _ in cidrs])
    lengths = np.array([n for _, n in cidrs], dtype=np.int64)
    built = ipset6.union(v6(values), ipset6.from_prefixes(hi, lo, lengths))
    expected = python(values) | {a for net in networks for a in net}
    assert members(built) == expected
    cover = ipset6.format_cidrs(*ipset6.cidr_cover(built))
    collapsed = ipaddress.collapse_addresses(ipaddress.IPv6Network(a) for a in expected)
    assert [ipaddress.IPv6Network(c) for c in cover] == list(collapsed)  # the minimal cover


@settings(max_examples=100, deadline=None)
@given(address_lists, st.integers(0, 128))
def test_mask_matches_python(values: list[int], prefix: int) -> None:
    netmask = (TOP << (128 - prefix)) & TOP
    expected = {IPv6(v & netmask) for v in values}
    assert members(ipset6.mask(v6(values), prefix)) == expected
    assert members(ipset.mask(IPSet(v6=v6(values)), prefix).v6) == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(0, 300), max_size=30), address_lists), min_size=1,
                max_size=3))  # fmt: skip
def test_mixed_sets_work_per_family(pairs: list[tuple[list[int], list[int]]]) -> None:
    sets = [IPSet(ipset4.from_addresses(np.array(a, np.uint32)), v6(b)) for a, b in pairs]
    plain = [{*map(ipaddress.IPv4Address, a), *python(b)} for a, b in pairs]

    def as_python(result: IPSet) -> set[Any]:
        return {*map(ipaddress.IPv4Address, result.v4), *members(result.v6)}

    assert as_python(ipset.union(*sets)) == set().union(*plain)
    assert as_python(ipset.intersect(*sets)) == reduce(set.intersection, plain)
    assert as_python(ipset.difference(*sets)) == plain[0] - set().union(*plain[1:])
    assert as_python(ipset.symdiff(*sets)) == reduce(set.symmetric_difference, plain)
    assert sets[0].count == len(plain[0])
    assert ipset.deserialize(ipset.serialize(sets[0]), "x") == sets[0]
    listed = [line for chunk in ipset.address_lines(sets[0]) for line in chunk]
    assert [ipaddress.ip_address(a) for a in listed] == sorted(
        plain[0], key=lambda a: (a.version, a)
    )


@settings(max_examples=60, deadline=None)
@given(address_lists, blocks)
def test_file_round_trip(values: list[int], cidrs: list[tuple[int, int]]) -> None:
    hi, lo = wide.from_ints([a for a, _ in cidrs])
    lengths = np.array([n for _, n in cidrs], dtype=np.int64)
    original = IPSet(v6=ipset6.union(v6(values), ipset6.from_prefixes(hi, lo, lengths)))
    data = ipset.serialize(original)
    assert data.startswith(ipset.MAGIC) or not original.v6
    assert ipset.deserialize(data, "x") == original


def test_huge_ranges_are_intervals_not_addresses() -> None:
    space = ipset6.from_intervals(*wide.from_ints([0]), *wide.from_ints([TOP]))
    assert space.count == 2**128 and len(space) == 1  # one bound: runs to the end of the space
    assert ipset6.format_cidrs(*ipset6.cidr_cover(space)) == ["::/0"]
    assert members(ipset6.mask(space, 2)) == {IPv6(i << 126) for i in range(4)}
    doc = ipset6.from_prefixes(*wide.from_ints([int(IPv6("2001:db8::"))]), np.array([32]))
    assert doc.count == 2**96
    assert ipset6.mask(doc, 48).count == 2**16
    with pytest.raises(InputError, match=r"mask 64: the IPv6 result would hold 4294967296"):
        ipset6.mask(doc, 64)
    with pytest.raises(InputError, match=r"use --cidr"):
        next(ipset6.address_chunks(doc))
    stored = IPSet(v6=ipset6.union(space, doc))
    assert ipset.deserialize(ipset.serialize(stored), "x") == stored
    hole = ipset6.difference(space, doc)
    assert hole.count == 2**128 - 2**96
    assert ipset6.union(hole, doc) == space
    assert ipset6.format_cidrs(*ipset6.cidr_cover(ipset6.intersect(hole, doc))) == []


def test_text_formats_and_fast_parser_agree_with_ipaddress() -> None:
    texts = ["::", "::1", "1::", "2001:DB8::1", "2001:db8:0:0:1:0:0:1", "::ffff:192.0.2.1",
             "fe80::1%eth0", "1:::2", "1:2:3:4:5:6:7:8:9", "12345::", "::g", ""]  # fmt: skip
    hi, lo, bad = ipset6.parse_texts(pa.array(texts))
    for i, text in enumerate(texts):
        try:
            expected = int(IPv6(text)) if "%" not in text else None
        except ValueError:
            expected = None
        assert (i in bad.tolist()) == (expected is None), text
        if expected is not None:
            assert (int(hi[i]) << 64) | int(lo[i]) == expected
    formatted = ipset6.format_addresses(*wide.from_ints([int(IPv6("2001:db8::1")), 1]))
    assert formatted == ["2001:db8::1", "::1"]


def test_from_text_mixes_families(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text(
        "# hitlist\n10.0.0.0/31\n2001:db8::/127  # a block\n\n2001:db8::1\n"
        "2001:DB8::5\r\n::ffff:1.2.3.4\n192.0.2.7\n2001:db8:1::7/64\n"
    )
    result = ipset.from_text(str(path))
    assert {str(ipaddress.IPv4Address(a)) for a in result.v4} == {
        "10.0.0.0",
        "10.0.0.1",
        "192.0.2.7",
    }
    assert result.count6 == 4 + 2**64
    cover = [c for chunk in ipset.cidr_lines(result) for c in chunk]
    assert cover == ["10.0.0.0/31", "192.0.2.7/32", "::ffff:1.2.3.4/128", "2001:db8::/127",
                     "2001:db8::5/128", "2001:db8:1::/64"]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("2001:db8::1\n2001:db8::/129\n", r"line 2: bad prefix length in '2001:db8::/129'"),
        ("10.0.0.1\n# x\n2001:db8::zz\n10.0.0.300\n", r"line 3: not an address or CIDR"),
        ("10.0.0.300\n2001:db8::zz\n", r"line 1: not an address or CIDR: '10.0.0.300'"),
        ("::1/12/3\n", r"line 1: not an address or CIDR"),
        ("1:2:3:4:5:6:7:8:9\n", r"line 1: not an address or CIDR"),
    ],
)
def test_from_text_errors_name_the_first_bad_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "list.txt"
    path.write_text(content)
    with pytest.raises(InputError, match=rf"list.txt: {message}"):
        ipset.from_text(str(path))


def test_old_roaring_files_still_load_and_ipv4_sets_stay_roaring(tmp_path: Path) -> None:
    old = BitMap([1, 2, 3, 3_000_000_000])
    path = tmp_path / "old.roar"
    path.write_bytes(old.serialize())
    assert ipset.load_set(str(path)) == IPSet(old)
    ipset.save_set(IPSet(old), str(path))
    assert BitMap.deserialize(path.read_bytes()) == old


def _container(*sections: tuple[bytes, bytes], version: int = 1) -> bytes:
    body = b"".join(struct.pack(">4sQ", tag, len(p)) + p for tag, p in sections)
    return ipset.MAGIC + struct.pack(">I", version) + body


def test_container_sections_as_documented() -> None:
    a, b = IPv6("2001:db8::1").packed, IPv6("2001:db8::10").packed
    last = IPv6("2001:db8::1f").packed
    data = _container((b"IPV4", BitMap([7]).serialize()), (b"IP6A", a), (b"IP6R", b + last))
    result = ipset.deserialize(data, "x")
    assert list(result.v4) == [7] and result.count6 == 1 + 16
    assert ipset.serialize(result) == data  # the writer's output, byte for byte
    # Not canonical (unsorted, overlapping, adjacent): still read, as the union.
    inner = IPv6("2001:db8::11").packed + IPv6("2001:db8::12").packed
    messy = _container((b"IP6A", b + a + a), (b"IP6R", b + last + inner))
    assert ipset.deserialize(messy, "x").v6 == result.v6


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_container((b"IP6A", b"\x00" * 16))[:-3], "truncated"),
        (_container((b"IP6A", b"\x00" * 16))[:20], "truncated"),
        (ipset.MAGIC[:5], "truncated"),
        (b"LVIPSEX\n" + b"\x00" * 20, "not an IP set file"),
        (_container(version=2), "format version 2"),
        (_container((b"IPV9", b"")), "unknown IP set section"),
        (_container((b"IP6A", b""), (b"IPV4", b"")), "repeated or out of order"),
        (_container((b"IP6A", b"\x00" * 15)), "not whole rows"),
        (_container((b"IP6R", b"\x01" * 16 + b"\x00" * 16)), "range 1 ends before it starts"),
        (_container((b"IPV4", b"junk")), "IPV4 section is not a roaring bitmap"),
    ],
)
def test_bad_files_are_one_error(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ipset.deserialize(data, "f.set")


def test_mask_on_mixed_sets_needs_the_ipv6_length() -> None:
    mixed = IPSet(BitMap([0x0A000001]), v6([int(IPv6("2001:db8::1"))]))
    with pytest.raises(InputError, match=r"give the IPv6 prefix length with --v6"):
        ipset.mask(mixed, 24)
    masked = ipset.mask(mixed, 24, 64)
    assert list(masked.v4) == [0x0A000000] and members(masked.v6) == {IPv6("2001:db8::")}
    with pytest.raises(InputError, match=r"IPv4 prefix length must be 0..32, got 64"):
        ipset.mask(mixed, 64, 64)


# Dual-stack reply files and the CLI.

ROWS = [  # (af, probe, target, responder, reply, icmp_type)
    (4, "tcp_syn:443", "198.18.1.1", "198.18.1.1", "synack", -1),
    (6, "tcp_syn:443", "2001:2::1", "2001:2::1", "synack", -1),
    (6, "tcp_syn:443", "2001:2::2", "2001:2::fe", "icmp_unreach", 1),
    (4, "icmp_echo", "198.18.1.2", "198.18.0.254", "icmp_unreach", 3),
    (6, "icmp_echo", "2001:2::3", "2001:2::3", "echo_reply", 129),
]


def write_dual_stack(path: Path) -> None:
    n = len(ROWS)
    ipv6 = [r[0] == 6 for r in ROWS]

    def four(text: str, six: bool) -> int | None:
        return None if six else int(ipaddress.IPv4Address(text))

    def packed(text: str, six: bool) -> bytes | None:
        return IPv6(text).packed if six else None

    columns: dict[str, list[Any]] = {
        "ts": [10**18 + i for i in range(n)],
        "probe": [r[1] for r in ROWS],
        "target": [four(r[2], s) for r, s in zip(ROWS, ipv6, strict=True)],
        "responder": [four(r[3], s) for r, s in zip(ROWS, ipv6, strict=True)],
        "reply": [r[4] for r in ROWS],
        "icmp_type": [r[5] for r in ROWS],
        "icmp_code": [0 if r[5] >= 0 else -1 for r in ROWS],
        "tcp_flags": [18 if r[4] == "synack" else 0 for r in ROWS],
        "ttl": [64] * n,
        "ipid": [0] * n,
        "sport": [443] * n,
        "dport": [40000] * n,
        "attempt": [0] * n,
        "repeat": [False] * n,
        "app_valid": [False] * n,
        "vp": ["vp0"] * n,
        "af": [r[0] for r in ROWS],
        "target6": [packed(r[2], s) for r, s in zip(ROWS, ipv6, strict=True)],
        "responder6": [packed(r[3], s) for r, s in zip(ROWS, ipv6, strict=True)],
        "app_active": [False] * n,
        "app_proto": [""] * n,
        "banner": [None] * n,
    }
    table = pa.Table.from_pydict(columns, schema=REPLY_SCHEMA)
    with open_writer(str(path)) as writer:
        writer.write(table)


def texts(result: IPSet) -> set[str]:
    return {a for chunk in ipset.address_lines(result) for a in chunk}


@pytest.mark.parametrize("suffix", ["parquet", "csv", "jsonl"])
def test_build_from_a_dual_stack_scan(tmp_path: Path, suffix: str) -> None:
    scan = tmp_path / f"scan.{suffix}"
    write_dual_stack(scan)
    paths = [str(scan)]
    assert texts(ipset.from_replies(paths)) == {"198.18.1.1", "198.18.1.2", "2001:2::1",
                                               "2001:2::2", "2001:2::3"}  # fmt: skip
    assert texts(ipset.from_replies(paths, column="responder")) == {
        "198.18.1.1", "198.18.0.254", "2001:2::1", "2001:2::fe", "2001:2::3"}  # fmt: skip
    assert texts(ipset.from_replies(paths, column="target6")) == {"2001:2::1", "2001:2::2",
                                                                 "2001:2::3"}  # fmt: skip
    synack = ipset.from_replies(paths, "reply = synack")
    assert texts(synack) == {"198.18.1.1", "2001:2::1"}
    assert texts(ipset.from_replies(paths, "af = 6 and reply = echo_reply")) == {"2001:2::3"}
    assert texts(ipset.from_replies(paths, "target = 2001:2::2")) == {"2001:2::2"}


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_cli_end_to_end_dual_stack(tmp_path: Path) -> None:
    scan = tmp_path / "scan.parquet"
    write_dual_stack(scan)
    alive, listed = str(tmp_path / "alive.set"), str(tmp_path / "listed.set")
    out = run("ipset", "build", str(scan), "--filter", "reply = synack", "-o", alive, "--json")
    assert json.loads(out) == {"output": alive, "count": 2, "count_ipv4": 1, "count_ipv6": 1}
    (tmp_path / "list.txt").write_text("198.18.1.0/31\n2001:2::/127\n")
    run("ipset", "from-text", str(tmp_path / "list.txt"), "-o", listed)
    for verb, expected in (
        ("union", {"198.18.1.0", "198.18.1.1", "2001:2::", "2001:2::1"}),
        ("intersect", {"198.18.1.1", "2001:2::1"}),
        ("difference", {"198.18.1.0", "2001:2::"}),
        ("symdiff", {"198.18.1.0", "2001:2::"}),
    ):
        target = str(tmp_path / f"{verb}.set")
        run("ipset", verb, listed, alive, "-o", target)
        assert set(run("ipset", "list", target).split()) == expected
        counts = json.loads(run("ipset", "count", target, "--json"))
        assert counts["count"] == len(expected) == counts["count_ipv4"] + counts["count_ipv6"]
    assert run("ipset", "count", listed).split("\n")[:3] == ["4", "ipv4 2", "ipv6 2"]
    assert run("ipset", "list", listed, "--cidr").split() == ["198.18.1.0/31", "2001:2::/127"]
    masked = str(tmp_path / "masked.set")
    run("ipset", "mask", "24", "--v6", "64", alive, "-o", masked)
    assert json.loads(run("ipset", "list", masked, "--json"))["addresses"] == [
        "198.18.1.0",
        "2001:2::",
    ]
    six = str(tmp_path / "six.set")
    run("ipset", "build", str(scan), "--column", "target6", "-o", six)
    run("ipset", "mask", "120", six, "-o", masked)
    assert run("ipset", "list", masked).split() == ["2001:2::"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mask", "24", "{mixed}", "-o", "{out}"], "give the IPv6 prefix length with --v6"),
        (["mask", "24", "--v6", "200", "{mixed}", "-o", "{out}"], "200 is not in the range"),
        (["mask", "129", "{mixed}", "-o", "{out}"], "129 is not in the range"),
        (["list", "{big}"], "use --cidr"),
        (["build", "{mixed}", "--column", "ttl", "-o", "{out}"], "not an address field"),
    ],
)
def test_cli_errors_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    mixed, big = tmp_path / "mixed.set", tmp_path / "big.set"
    ipset.save_set(IPSet(BitMap([1]), v6([1])), str(mixed))
    (tmp_path / "big.txt").write_text("2001:db8::/32\n")
    ipset.save_set(ipset.from_text(str(tmp_path / "big.txt")), str(big))
    names = {"{mixed}": str(mixed), "{big}": str(big), "{out}": str(tmp_path / "out.set")}
    argv = ["ipset", *(names.get(a, a) for a in args)]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error and "Traceback" not in error
