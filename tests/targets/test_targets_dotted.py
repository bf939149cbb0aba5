"""The bulk dotted-quad parser agrees with ipaddress, and leaves everything else to it."""

from __future__ import annotations

import ipaddress

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from liveness.targets.dotted import parse_dotted

canonical = st.builds(
    lambda address, prefix, bare: (
        str(ipaddress.IPv4Address(address))
        if bare
        else str(ipaddress.IPv4Network((address, prefix), strict=False))
    ),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
    st.booleans(),
)
noise = st.text(alphabet="0123456789./ x", max_size=22)


def reference(text: str) -> tuple[int, int] | None:
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        return None
    start = int(net.network_address)
    return start, start + net.num_addresses


@settings(max_examples=300, deadline=None)
@given(st.lists(canonical | noise, max_size=40))
def test_parsed_rows_match_ipaddress(entries: list[str]) -> None:
    rows, parsed = parse_dotted(entries)
    assert rows.shape == (len(entries), 2)
    for text, row, ok in zip(entries, rows.tolist(), parsed.tolist(), strict=True):
        expected = reference(text)
        if ok:
            assert expected == tuple(row), text
        elif expected is not None:
            # Only non-canonical spellings may be left to the slow path.
            assert str(ipaddress.IPv4Network(text)) not in (text, f"{text}/32"), text


@given(st.lists(canonical, max_size=40))
def test_every_canonical_entry_parses(entries: list[str]) -> None:
    _, parsed = parse_dotted(entries)
    assert parsed.all()


def test_edge_cases() -> None:
    entries = ["0.0.0.0/0", "255.255.255.255", "1.2.3.4/32", "01.2.3.4", "1.2.3.4/08", "1.2.3.256"]
    entries += ["1.2.3.4/24", "1.2.3", "1.2.3.4.5", "", "10.0.0.0/8/8", "1.2.3.4/33"]
    _, parsed = parse_dotted(entries)
    assert parsed.tolist() == [True, True, True] + [False] * 9
    # Non-ASCII anywhere sends the whole batch to the slow path.
    _, parsed = parse_dotted(["1.1.1.1", "é.1.1.1"])
    assert not parsed.any()
    assert parse_dotted([])[0].shape == (0, 2)
    assert np.array_equal(parse_dotted(["8.8.8.0/24"])[0], [[0x08080800, 0x08080900]])
