"""Reading CIDR strings and ZMap-format list files: entries kept, bad lines named by FILE:LINE."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveness.errors import InputError
from liveness.targets import parse_cidr, parse_cidrs, read_cidr_file, read_cidr_list


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "list.txt"
    path.write_text(text)
    return path


def test_read_cidr_file_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# header comment\n\n10.0.0.0/8   # trailing comment\n  192.0.2.7  \n\t\n1.2.3.0/24\n",
    )
    assert read_cidr_file(path) == ["10.0.0.0/8", "192.0.2.7", "1.2.3.0/24"]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("1.2.3.0/33", "not an IPv4 address or CIDR block"),
        ("300.1.1.1", "not an IPv4 address or CIDR block"),
        ("example.com", "not an IPv4 address or CIDR block"),
        ("1.2.3.4/24", "did you mean 1.2.3.0/24"),
        ("1.2.3.0/24 5.6.7.0/24", "one address or CIDR block per line"),
        ("2001:db8::/129", "not an IPv6 address or CIDR block"),
        ("2001:db8::1/32", "has host bits set; did you mean 2001:db8::/32?"),
        ("2001:db8::/32-64", "a prefix walk (P/L-b) is a target for the command line"),
        ("198.18.0.0/16-24", "prefix walking (P/L-b) is for IPv6 targets only"),
    ],
)
def test_read_cidr_file_names_file_and_line(tmp_path: Path, line: str, needle: str) -> None:
    path = write(tmp_path, f"# ok\n10.0.0.0/8\n\n{line}\n8.8.8.8\n")
    with pytest.raises(InputError) as err:
        read_cidr_file(path)
    message = str(err.value)
    assert message.startswith(f"{path}:4: ")
    assert needle in message
    assert "\n" not in message


def test_read_cidr_file_missing_and_binary(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_cidr_file(tmp_path / "absent.txt")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(InputError, match=r"blob\.bin: not a UTF-8 text file"):
        read_cidr_file(binary)


def test_parse_cidr_ranges_match_ipaddress() -> None:
    for text in ["0.0.0.0/0", "10.0.0.0/8", "198.18.0.0/15", "1.2.3.4", "255.255.255.255/32"]:
        net = ipaddress.IPv4Network(text)
        assert parse_cidr(text, "flag") == (
            int(net.network_address),
            int(net.broadcast_address) + 1,
        )


def test_parse_cidr_error_names_the_flag() -> None:
    with pytest.raises(InputError, match=r"^-b/--blocklist-file: 'nope' is not"):
        parse_cidr("nope", "-b/--blocklist-file")


def test_parse_cidrs_merges_into_disjoint_sorted_intervals() -> None:
    merged = parse_cidrs(["10.0.1.0/24", "10.0.0.0/24", "10.0.0.128/25", "8.0.0.0/8"], "x")
    assert merged.tolist() == [
        [int(ipaddress.IPv4Address("8.0.0.0")), int(ipaddress.IPv4Address("9.0.0.0"))],
        [int(ipaddress.IPv4Address("10.0.0.0")), int(ipaddress.IPv4Address("10.0.2.0"))],
    ]


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 32), st.booleans())
def test_fast_path_agrees_with_ipaddress(address: int, prefix: int, bare: bool) -> None:
    text = (
        str(ipaddress.IPv4Address(address))
        if bare
        else f"{ipaddress.IPv4Address(address)}/{prefix}"
    )
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        with pytest.raises(InputError, match="host bits set"):
            parse_cidr(text, "flag")
        return
    start = int(net.network_address)
    assert parse_cidr(text, "flag") == (start, start + net.num_addresses)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.0/255.0.0.0", "10.0.0.0/8"),
        (" 192.0.2.1 ", "192.0.2.1/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
    ],
)
def test_other_notations(text: str, expected: str) -> None:
    net = ipaddress.IPv4Network(expected)
    assert parse_cidr(text, "flag") == (
        int(net.network_address),
        int(net.network_address) + net.num_addresses,
    )


@pytest.mark.parametrize(
    "text", ["010.1.1.1", "1.2.3.4/033", "1.2.3", "1.2.3.4.5", "256.0.0.0", "", "1.2.3.4/"]
)
def test_non_canonical_or_malformed_is_refused(text: str) -> None:
    with pytest.raises(InputError, match=r"^flag: "):
        parse_cidr(text, "flag")


def test_read_cidr_list_keeps_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "# c\n1.1.1.1\n\n8.8.8.0/24 # dns\n")
    parsed = read_cidr_list(path)
    assert parsed.rows.tolist() == [
        list(parse_cidr("1.1.1.1", "x")),
        list(parse_cidr("8.8.8.0/24", "x")),
    ]
    assert parsed.origin(1) == f"{path}:4"
    assert parsed.block(0) == "1.1.1.1"
    assert parsed.block(1) == "8.8.8.0/24"
