"""The output-filter language: results against a per-row Python evaluation; error positions."""

from __future__ import annotations

import ipaddress
import operator
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from output_fixtures import random_replies, row_address

from liveness.errors import InputError
from liveness.output import compile_filter
from liveness.output.fields import FieldContext, derive

BATCH = random_replies(3000, seed=11)
FIELDS = ["success", "repeat", "ttl", "icmp_type", "probe", "classification", "attempt", "af"]
ROWS = derive(BATCH, FIELDS, FieldContext()).to_pylist()
for _row, _reply in zip(ROWS, BATCH.to_pylist(), strict=True):  # addresses as ipaddress objects
    _row["saddr"] = ipaddress.ip_address(row_address(_reply, "target"))
    _row["responder"] = ipaddress.ip_address(row_address(_reply, "responder"))
    _row["icmp_responder"] = _row["responder"] if _reply["icmp_type"] >= 0 else None

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}


def matching_targets(text: str) -> list[Any]:
    return compile_filter(text).apply(BATCH, ["ts"]).column(0).to_pylist()


def expected_targets(predicate: Callable[[dict[str, Any]], bool]) -> list[Any]:
    stamps = BATCH.column("ts").to_pylist()
    return [t for t, row in zip(stamps, ROWS, strict=True) if predicate(row)]


def test_zmap_example() -> None:
    got = matching_targets("success = 1 && repeat = 0")
    assert got == expected_targets(lambda r: r["success"] and not r["repeat"])
    assert 0 < len(got) < len(ROWS)


def test_precedence_parentheses_and_word_operators() -> None:
    text = "probe = tcp_syn:443 and classification = synack or (ttl > 200 && icmp_type != -1)"
    got = matching_targets(text)
    assert got == expected_targets(
        lambda r: (
            (r["probe"] == "tcp_syn:443" and r["classification"] == "synack")
            or (r["ttl"] > 200 and r["icmp_type"] != -1)
        )
    )
    grouped = matching_targets("(success = 1 || repeat = 1) && attempt = 1")
    assert grouped == expected_targets(
        lambda r: (r["success"] or r["repeat"]) and r["attempt"] == 1
    )


def test_address_and_quoted_literals() -> None:
    first4 = next(r["saddr"] for r in ROWS if r["saddr"].version == 4)
    dotted = str(first4)
    assert matching_targets(f"saddr = {dotted}") == expected_targets(lambda r: r["saddr"] == first4)
    assert matching_targets(f"saddr = {int(first4)}") == matching_targets(f"saddr = {dotted}")
    assert matching_targets('classification = "rst"') == matching_targets("classification = rst")
    assert matching_targets("repeat = true") == matching_targets("repeat = 1")


def family_compare(op: str, left: Any, right: Any) -> bool:
    """An address comparison as the filter defines it: never true across families (or null)."""
    return left is not None and left.version == right.version and OPS[op](left, right)


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("field", ["saddr", "target", "responder", "icmp_responder"])
def test_address_comparisons_of_both_families_match_ipaddress(op: str, field: str) -> None:
    source = "saddr" if field == "target" else field
    present = [r[source] for r in ROWS if r[source] is not None]
    for literal in (
        next(a for a in present if a.version == 6),
        next(a for a in present if a.version == 4),
        ipaddress.ip_address("2001:db8::5"),  # a repeated one (the fixture's 2001:db8::n)
        ipaddress.ip_address("::"),
        ipaddress.ip_address("255.255.255.255"),
    ):
        got = matching_targets(f"{field} {op} {literal}")
        expected = [
            ts
            for ts, row in zip(BATCH.column("ts").to_pylist(), ROWS, strict=True)
            if family_compare(op, row[source], literal)
        ]
        assert got == expected


def test_ipv6_literal_forms_and_the_ipv6_columns() -> None:
    address = next(r["saddr"] for r in ROWS if r["saddr"].version == 6)
    expected = expected_targets(lambda r: r["saddr"] == address)
    assert expected
    assert matching_targets(f"saddr = {address}") == expected
    assert matching_targets(f"saddr == '{address.exploded.upper()}'") == expected
    assert matching_targets(f"target6 = {address}") == expected
    responder = next(r["responder"] for r in ROWS if r["responder"].version == 6)
    assert matching_targets(f"responder6 != {responder}") == expected_targets(
        lambda r: r["responder"].version == 6 and r["responder"] != responder
    )


def test_family_selection() -> None:
    six = matching_targets("af = 6")
    assert six == expected_targets(lambda r: r["saddr"].version == 6)
    assert 0 < len(six) < len(ROWS)
    assert matching_targets("af = 4 || af = 6") == expected_targets(lambda r: True)
    assert matching_targets("af = 6 && success = 1") == expected_targets(
        lambda r: r["saddr"].version == 6 and r["success"]
    )
    assert matching_targets("icmp_responder != 2001:2::ff") == expected_targets(
        lambda r: r["icmp_responder"] is not None and r["icmp_responder"].version == 6
    )
    assert matching_targets("saddr != 0.0.0.0") == expected_targets(
        lambda r: r["saddr"].version == 4 and int(r["saddr"]) != 0
    )


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from(["ttl", "icmp_type", "attempt", "success", "repeat"]),
    op=st.sampled_from(list(OPS)),
    value=st.integers(-2, 256),
)
def test_integer_comparisons_match_python(field: str, op: str, value: int) -> None:
    got = matching_targets(f"{field} {op} {value}")
    assert got == expected_targets(lambda r: OPS[op](int(r[field]), value))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("success = ", r"expected a value, found the end at position 11"),
        ("succes = 1", r"unknown field 'succes' at position 1"),
        ("success = 1 &&& repeat = 0", r"unexpected '&' at position 15"),
        ("(success = 1", r"expected '\)', found the end at position 13"),
        ("success = 1 )", r"found '\)' at position 13"),
        (
            "saddr = host",
            r"field 'saddr' needs an IPv4 or IPv6 address, found 'host' at position 9",
        ),
        ("saddr = 1.2.3.4.5", r"field 'saddr' needs an IPv4 or IPv6 address"),
        ("saddr = 2001::2::1", r"field 'saddr' needs an IPv6 address, found '2001::2::1'"),
        ("icmp_responder != 2001:2::fffff", r"'icmp_responder' needs an IPv6 address"),
        ("target6 = 1.2.3.4", r"field 'target6' needs an IPv6 address, found '1.2.3.4'"),
        ("target6 = 7", r"field 'target6' needs an IPv6 address"),
        ("saddr = fe80::1%eth0", r"unexpected '%' at position 16"),
        ("saddr = 'fe80::1%eth0'", r"field 'saddr' needs an IPv6 address"),
        ("af = six", r"field 'af' needs an integer"),
        ("ttl = x", r"field 'ttl' needs an integer"),
        ("success 1", r"expected a comparison"),
        ("", r"empty filter"),
        ("1 = ttl", r"expected a field name or '\(', found '1' at position 1"),
        ("banner = SSH", r"field 'banner' holds bytes: filter on app_proto"),
    ],
)
def test_syntax_errors_name_the_position(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        compile_filter(text)
