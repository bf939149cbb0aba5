"""The output-filter language: results against a per-row Python evaluation; error positions."""

from __future__ import annotations

import ipaddress
import operator
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from output_fixtures import random_replies

from liveness.errors import InputError
from liveness.output import compile_filter
from liveness.output.fields import FieldContext, derive

BATCH = random_replies(3000, seed=11)
ROWS = derive(
    BATCH,
    ["success", "repeat", "ttl", "icmp_type", "saddr", "probe", "classification", "attempt"],
    FieldContext(),
).to_pylist()

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}


def matching_targets(text: str) -> list[Any]:
    return compile_filter(text).apply(BATCH, ["target"]).column(0).to_pylist()


def expected_targets(predicate: Callable[[dict[str, Any]], bool]) -> list[Any]:
    targets = BATCH.column("target").to_pylist()
    return [t for t, row in zip(targets, ROWS, strict=True) if predicate(row)]


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
    target = BATCH.column("target")[7].as_py()

    dotted = str(ipaddress.IPv4Address(target))
    assert target in matching_targets(f"saddr = {dotted}")
    assert matching_targets(f"saddr = {target}") == matching_targets(f"saddr = {dotted}")
    assert matching_targets('classification = "rst"') == matching_targets("classification = rst")
    assert matching_targets("repeat = true") == matching_targets("repeat = 1")


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
        ("saddr = host", r"field 'saddr' needs an IPv4 address, found 'host' at position 9"),
        ("ttl = x", r"field 'ttl' needs an integer"),
        ("success 1", r"expected a comparison"),
        ("", r"empty filter"),
        ("1 = ttl", r"expected a field name or '\(', found '1' at position 1"),
    ],
)
def test_syntax_errors_name_the_position(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        compile_filter(text)
