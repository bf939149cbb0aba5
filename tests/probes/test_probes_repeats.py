"""The repeat tracker against a set of (probe, family, target) seen so far, batch by batch."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from liveness.probes.pipeline import RepeatTracker

# A small pool, so that repeats within and across batches are common; IPv6 targets that share
# their high or low 64 bits, so that a key built from half the address would collide.
POOL6 = [
    bytes.fromhex("20010002" + "0000" + f"{k:04x}" + "0000" * 3 + "0001") for k in range(1, 7)
] + [bytes.fromhex("20010002" + "0000" * 4 + f"{k:04x}" + "0001") for k in range(1, 7)]

row = st.tuples(st.integers(0, 3), st.booleans(), st.integers(0, 11))
batches = st.lists(st.lists(row, max_size=40), max_size=8)


@settings(max_examples=200, deadline=None)
@given(batches)
def test_a_reply_is_a_repeat_exactly_when_its_probe_and_target_answered_before(
    batches: list[list[tuple[int, bool, int]]],
) -> None:
    tracker = RepeatTracker()
    seen: set[tuple[int, bool, int]] = set()
    for batch in batches:
        probes = np.array([p for p, _, _ in batch], dtype=np.int64)
        six = np.array([v6 for _, v6, _ in batch], dtype=bool)
        target = np.array([0 if v6 else 0xC6120000 + t for _, v6, t in batch], dtype=np.uint32)
        target6 = np.zeros((len(batch), 16), dtype=np.uint8)
        for k, (_, v6, t) in enumerate(batch):
            if v6:
                target6[k] = np.frombuffer(POOL6[t], dtype=np.uint8)
        af = np.where(six, 6, 4).astype(np.uint8)
        expected = []
        for item in batch:
            expected.append(item in seen)
            seen.add(item)
        assert tracker.mark(probes, target, target6, af).tolist() == expected
    for probe in range(4):
        assert tracker.distinct(probe) == sum(1 for p, _, _ in seen if p == probe)
    assert tracker.answered() == len({(v6, t) for _, v6, t in seen})


def test_ipv4_only_batches_need_no_ipv6_columns() -> None:
    tracker = RepeatTracker()
    flags = tracker.mark(np.array([0, 0, 1], dtype=np.int64), np.array([7, 7, 7], dtype=np.uint32))
    assert flags.tolist() == [False, True, False]
    assert (tracker.distinct(0), tracker.distinct(1), tracker.answered()) == (1, 1, 1)
