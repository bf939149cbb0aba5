"""The IPv6 address book against Python dicts of addresses, with real and colliding hashes.

The oracle: numbering batch after batch, a book gives each distinct address one id, the same id
every time it comes back; a batch's new addresses take the next ids (0, 1, 2, ... over the
book's life, in no promised order within the batch), and ``book.words[ids]`` gives the inputs
back. A book that grows (its table rebuilt) and a book
pickled and loaded (the table rebuilt from the addresses) answer the same. ``_mix`` is replaced
by a hash that sends most addresses to one slot, which forces long probe runs and the same
answers.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveness.output import address_book6
from liveness.output.address_book6 import AddressBook6

# few distinct halves, so that inputs repeat addresses and share high or low halves
HALVES = st.sampled_from([0, 1, 2, 0x2001000200000000, 0xFFFFFFFFFFFFFFFF, 1 << 63])
ADDRESSES = st.lists(st.tuples(HALVES, HALVES), max_size=60)
BATCHES = st.lists(ADDRESSES, max_size=6)


def arrays(addresses: list[tuple[int, int]]) -> np.ndarray:
    """(hi, lo) pairs as the ``(n, 2)`` words the book takes."""
    return np.array(addresses, dtype=np.uint64).reshape(-1, 2)


def members(book: AddressBook6) -> list[tuple[int, int]]:
    return [(h, low) for h, low in book.words.tolist()]


@pytest.fixture(scope="module", params=["mixed", "colliding"])
def hashes(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run with the real hash, and with one that sends most addresses to the same slot."""
    if request.param == "colliding":
        original = address_book6._mix
        address_book6._mix = lambda words: (words[:, 0] & np.uint64(1)) << np.uint64(63)
        yield request.param
        address_book6._mix = original
    else:
        yield request.param


@settings(max_examples=150, deadline=None)
@given(batches=BATCHES)
def test_each_address_keeps_one_id_and_new_ones_take_the_next_ids(
    hashes: str, batches: list[list[tuple[int, int]]]
) -> None:
    book = AddressBook6()
    seen: dict[tuple[int, int], int] = {}
    for batch in batches:
        before = len(book)
        ids = book.number(arrays(batch)).tolist()
        assert [tuple(w) for w in book.words[ids].tolist()] == batch
        new = {address for address in batch if address not in seen}
        assert len(book) == before + len(new)
        for address, id_ in zip(batch, ids, strict=True):
            assert seen.setdefault(address, id_) == id_  # the same id every time
        assert sorted({seen[a] for a in new}) == list(range(before, len(book)))
    assert sorted(members(book)) == sorted(seen)
    assert len(set(seen.values())) == len(seen)


@settings(max_examples=60, deadline=None)
@given(batches=BATCHES)
def test_a_pickled_book_numbers_as_the_original(
    hashes: str, batches: list[list[tuple[int, int]]]
) -> None:
    """Dask ships books between processes; the loaded one rebuilds its table."""
    book = AddressBook6()
    for batch in batches[:-1]:
        book.number(arrays(batch))
    loaded = pickle.loads(pickle.dumps(book))
    assert members(loaded) == members(book)
    last = arrays(batches[-1] if batches else [])
    assert loaded.number(last).tolist() == book.number(last).tolist()
    assert members(loaded) == members(book)


def test_a_growing_book_keeps_every_id() -> None:
    """Many more addresses than the first table holds: the table is rebuilt several times
    and every address keeps the id it was given."""
    rng = np.random.default_rng(7)
    distinct = np.stack(
        [
            np.full(50_000, 0x2001000200000000, dtype=np.uint64)
            | rng.integers(0, 1 << 16, 50_000).astype(np.uint64),
            rng.integers(0, 1 << 62, 50_000).astype(np.uint64),
        ],
        axis=1,
    )
    distinct = np.unique(distinct, axis=0)
    book = AddressBook6()
    first = np.concatenate([book.number(part) for part in np.array_split(distinct, 40)])
    assert sorted(first.tolist()) == list(range(distinct.shape[0]))
    assert np.array_equal(book.words[first], distinct)
    again = book.number(distinct[::-1].copy())
    assert again.tolist() == first[::-1].tolist()
    assert len(book) == distinct.shape[0]


def test_two_books_merge_by_numbering_one_in_the_other() -> None:
    """The table from a book's ids to another's is that book's addresses numbered there."""
    ours, theirs = AddressBook6(), AddressBook6()
    before = ours.number(arrays([(1, 1), (2, 2)])).tolist()
    theirs.number(arrays([(3, 3), (1, 1)]))
    table = ours.number(theirs.words)
    assert np.array_equal(ours.words[table], theirs.words)
    assert sorted(members(ours)) == [(1, 1), (2, 2), (3, 3)]
    assert ours.number(arrays([(1, 1), (2, 2)])).tolist() == before  # ours kept its ids
    assert sorted(table.tolist()) == [before[0], 2]


def test_prefixes_number_the_prefixes_in_address_order() -> None:
    book = AddressBook6()
    ids = book.number(
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
    book = AddressBook6()
    ids = book.number(arrays([(0x2001000200000000, 1)]))
    assert book.addresses(ids) == ["2001:2::1"]


def test_an_empty_batch_numbers_nothing() -> None:
    book = AddressBook6()
    assert book.number(np.zeros((0, 2), dtype=np.uint64)).tolist() == []
    assert len(book) == 0
