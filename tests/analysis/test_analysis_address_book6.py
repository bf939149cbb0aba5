"""The IPv6 address book against Python sets of addresses, with real and colliding keys.

The oracle: a book holds each distinct input address once, ``ids`` give every input back, two
books merge into one holding both with increasing tables, and the order is the same whichever
way the book was built. ``_mix`` is replaced by a key that collides for most addresses, which
forces the exact 128-bit sort, so that path answers the same.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveness.analysis import address_book6
from liveness.analysis.address_book6 import AddressBook6, merge_books, unique128

# few distinct halves, so that inputs repeat addresses and share high or low halves
HALVES = st.sampled_from([0, 1, 2, 0x2001000200000000, 0xFFFFFFFFFFFFFFFF, 1 << 63])
ADDRESSES = st.lists(st.tuples(HALVES, HALVES), max_size=60)


def arrays(addresses: list[tuple[int, int]]) -> np.ndarray:
    """(hi, lo) pairs as the ``(n, 2)`` words the book takes."""
    return np.array(addresses, dtype=np.uint64).reshape(-1, 2)


def members(book: AddressBook6) -> list[tuple[int, int]]:
    return [(h, low) for h, low in book.words.tolist()]


@pytest.fixture(scope="module", params=["mixed", "colliding"])
def keys(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run with the real key, and with a key shared by most addresses."""
    if request.param == "colliding":
        original = address_book6._mix
        address_book6._mix = lambda words: words[:, 0] & np.uint64(1)
        yield request.param
        address_book6._mix = original
    else:
        yield request.param


@settings(max_examples=150, deadline=None)
@given(addresses=ADDRESSES)
def test_unique_holds_each_address_once_and_ids_give_the_inputs(
    keys: str, addresses: list[tuple[int, int]]
) -> None:
    book, ids = unique128(arrays(addresses))
    assert sorted(members(book)) == sorted(set(addresses))
    assert len(set(members(book))) == len(book)
    assert members(AddressBook6(book.key[ids], book.words[ids])) == addresses


@settings(max_examples=150, deadline=None)
@given(first=ADDRESSES, second=ADDRESSES, third=ADDRESSES)
def test_merged_books_hold_every_address_with_increasing_tables(
    keys: str,
    first: list[tuple[int, int]],
    second: list[tuple[int, int]],
    third: list[tuple[int, int]],
) -> None:
    books = [unique128(arrays(part))[0] for part in (first, second, third)]
    merged, tables = merge_books(books)
    assert sorted(members(merged)) == sorted(set(first) | set(second) | set(third))
    assert len(set(members(merged))) == len(merged)
    for book, table in zip(books, tables, strict=True):
        assert np.all(np.diff(table) > 0)
        assert members(AddressBook6(merged.key[table], merged.words[table])) == members(book)
    # one order: merging the parts equals numbering everything at once
    whole, _ = unique128(arrays(first + second + third))
    assert members(merged) == members(whole)


def test_prefixes_number_the_prefixes_in_address_order() -> None:
    book, ids = unique128(
        arrays(
            [(0x2001000200000001, 5), (0x2001000200000000, 1), (0x2001000200000001, 7), (0x20, 0)]
        )
    )
    values, index = book.prefixes(48)
    assert values.tolist() == [0, 0x200100020000]
    prefix_of_input = index[ids].tolist()
    assert prefix_of_input == [1, 1, 1, 0]
    _, index64 = book.prefixes(64)
    assert index64[ids].tolist() == [2, 1, 2, 0]
    with pytest.raises(ValueError, match="between 1 and 64"):
        book.prefixes(65)


def test_addresses_are_rfc5952_text() -> None:
    book, ids = unique128(arrays([(0x2001000200000000, 1)]))
    assert book.addresses(ids) == ["2001:2::1"]
