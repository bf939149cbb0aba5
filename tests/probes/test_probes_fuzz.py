"""Truncated, malformed and random frames never raise, and every frame is accounted for."""

from __future__ import annotations

import ipaddress

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from liveness.probes import DEFAULT_PROBES, ReplyClassifier, parse_probes
from liveness.probes.context import ScanContext
from liveness.probes.synth import synthesize

US = int(ipaddress.IPv4Address("198.18.0.1"))
CTX = ScanContext.from_seed(3, src_ip=US, src_mac=b"\x02" * 6, gw_mac=b"\x04" * 6)
PROBES = parse_probes(DEFAULT_PROBES)
TARGETS = np.arange(US + 256, US + 256 + 40, dtype=np.uint32)
WIDTH = 128


def _valid_replies() -> np.ndarray:
    """Genuine replies of every kind, each zero-padded to WIDTH (with their lengths)."""
    rows: list[np.ndarray] = []
    for probe in PROBES:
        frames = probe.build(CTX, TARGETS, 1)
        kinds = {1: ["echo_reply"], 6: ["synack", "rst", "rst_ack"], 17: ["udp"]}[probe.protocol]
        for kind in [*kinds, "icmp_error"]:
            rows.extend(synthesize(frames, kind, responder=US + 9999))
    return np.array([np.pad(r, (0, WIDTH - len(r))) for r in rows]), np.array(
        [len(r) for r in rows]
    )


VALID, VALID_LEN = _valid_replies()


def check(frames: np.ndarray, lengths: np.ndarray) -> int:
    """Classify; assert the accounting invariant and the sanity of every record."""
    before = frames.copy()
    classifier = ReplyClassifier(CTX, PROBES)
    batch = classifier.classify(frames, lengths, np.zeros(len(frames), np.int64))
    counters = classifier.counters
    drops = sum(v for k, v in counters.items() if k not in ("frames", "valid"))
    assert counters["frames"] == len(frames) == counters["valid"] + drops
    assert counters["valid"] == batch.num_rows
    assert np.array_equal(frames, before)  # the input is never modified
    if batch.num_rows:
        assert max(batch.column("attempt").to_pylist()) < CTX.max_attempts
    return batch.num_rows


def test_all_valid_replies_pass() -> None:
    assert check(VALID, VALID_LEN) == len(VALID)


def test_every_truncation_of_every_reply() -> None:
    kinds = VALID[:: len(TARGETS)]  # one reply of each kind
    kind_len = VALID_LEN[:: len(TARGETS)]
    for frame, length in zip(kinds, kind_len, strict=True):
        # the headers a reply must hold: TCP 20 bytes, UDP 8, echo 8, ICMP error 8 + 28 quoted
        protocol, icmp_type = int(frame[23]), int(frame[34])
        need = {6: 54, 17: 42}.get(protocol, 42 if icmp_type == 0 else 70)
        cuts = np.arange(length + 1)
        frames = np.repeat(frame[None, :], len(cuts), axis=0)
        assert check(frames[:need], cuts[:need]) == 0
        assert check(frames[need:], cuts[need:]) == length + 1 - need


def test_bulk_random_frames() -> None:
    rng = np.random.default_rng(2024)
    n = 100_000
    frames = rng.integers(0, 256, (n, WIDTH), dtype=np.uint8)
    # make most of them plausible IPv4 to us, so the deeper paths run too
    plausible = rng.random(n) < 0.7
    frames[plausible, 12:14] = (8, 0)
    frames[plausible, 14] = rng.choice([0x45, 0x46, 0x4F, 0x44, 0x55], plausible.sum())
    frames[plausible, 23] = rng.choice([1, 6, 17, 50], plausible.sum())
    frames[plausible, 30:34] = np.frombuffer(US.to_bytes(4, "big"), np.uint8)
    icmp = plausible & (frames[:, 23] == 1)
    frames[icmp, 42] = rng.choice([0x45, 0x47, 0x4F, 0x00], icmp.sum())
    frames[icmp, 54:58] = np.frombuffer(US.to_bytes(4, "big"), np.uint8)
    lengths = rng.integers(-5, WIDTH + 50, n)
    check(frames, lengths)


def test_bulk_mutated_valid_replies() -> None:
    rng = np.random.default_rng(7)
    n = 100_000
    pick = rng.integers(0, len(VALID), n)
    frames = VALID[pick].copy()
    lengths = VALID_LEN[pick].copy()
    for _ in range(3):  # up to three random byte changes per frame
        where = rng.integers(0, WIDTH, n)
        frames[np.arange(n), where] = rng.integers(0, 256, n, dtype=np.uint8)
    cut = rng.random(n) < 0.2
    lengths[cut] = rng.integers(0, WIDTH, cut.sum())
    kept = check(frames, lengths)
    assert 0 < kept < n  # many survive (bytes the validation ignores), many do not


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=160), min_size=1, max_size=8))
def test_hypothesis_random_bytes(payloads: list[bytes]) -> None:
    width = max(1, max(len(p) for p in payloads))
    frames = np.zeros((len(payloads), width), dtype=np.uint8)
    for row, payload in enumerate(payloads):
        frames[row, : len(payload)] = np.frombuffer(payload, np.uint8)
    check(frames, np.array([len(p) for p in payloads]))


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, len(VALID) - 1),
    st.lists(st.tuples(st.integers(0, WIDTH - 1), st.integers(0, 255)), max_size=6),
    st.integers(0, WIDTH),
)
def test_hypothesis_mutated_reply(index: int, changes: list[tuple[int, int]], length: int) -> None:
    frame = VALID[index].copy()
    for offset, value in changes:
        frame[offset] = value
    check(frame[None, :], np.array([length]))
    check(frame[None, :], VALID_LEN[index : index + 1])
