"""Forged and foreign replies are rejected and counted, never emitted."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest

from liveness.probes import DEFAULT_PROBES, ReplyClassifier, parse_probes
from liveness.probes.context import ScanContext
from liveness.probes.synth import synthesize


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


US = ip("198.18.0.1")
CTX = ScanContext.from_seed(7, src_ip=US, src_mac=b"\x02" * 6, gw_mac=b"\x04" * 6)
PROBES = parse_probes(DEFAULT_PROBES)
BY_NAME = {p.name: p for p in PROBES}
TARGETS = np.arange(ip("198.18.4.0"), ip("198.18.4.0") + 50, dtype=np.uint32)


def run(frames: np.ndarray, ctx: ScanContext = CTX) -> tuple[int, dict[str, int]]:
    classifier = ReplyClassifier(ctx, PROBES)
    batch = classifier.classify(
        frames, np.full(len(frames), frames.shape[1]), np.zeros(len(frames), np.int64)
    )
    counters = classifier.counters
    assert counters["valid"] == batch.num_rows
    assert sum(
        v for k, v in counters.items() if k not in ("frames", "valid")
    ) + batch.num_rows == len(frames)
    return batch.num_rows, counters


def replies(name: str, kind: str, attempt: int = 0, **kw: int) -> np.ndarray:
    return synthesize(BY_NAME[name].build(CTX, TARGETS, attempt), kind, **kw)


def put32(frames: np.ndarray, off: int, values: np.ndarray) -> None:
    frames[:, off : off + 4] = values.astype(">u4").view(np.uint8).reshape(-1, 4)


def get32(frames: np.ndarray, off: int) -> np.ndarray:
    return frames[:, off : off + 4].copy().view(">u4")[:, 0].astype(np.uint32)


def test_genuine_replies_pass() -> None:
    assert run(replies("tcp_syn:80", "synack"))[0] == len(TARGETS)


def test_wrong_ack_number_is_rejected() -> None:
    frames = replies("tcp_syn:80", "synack")
    put32(frames, 42, get32(frames, 42) + np.uint32(1))
    kept, counters = run(frames)
    assert kept == 0 and counters["validation_failed"] == len(TARGETS)


@pytest.mark.parametrize("kind", ["synack", "rst", "rst_ack"])
def test_wrong_destination_port_is_rejected(kind: str) -> None:
    frames = replies("tcp_syn:443", kind)
    port = frames[:, 36].astype(np.int64) * 256 + frames[:, 37]
    wrong = (port - CTX.sport_base + 2) % CTX.sport_count + CTX.sport_base  # attempt 2: never sent
    frames[:, 36], frames[:, 37] = wrong >> 8, wrong & 0xFF
    kept, counters = run(frames)
    assert kept == 0 and counters["validation_failed"] == len(TARGETS)


def test_port_outside_our_range_is_rejected() -> None:
    frames = replies("udp_dns", "udp")
    frames[:, 36], frames[:, 37] = 0, 80
    kept, counters = run(frames)
    assert kept == 0 and counters["validation_failed"] == len(TARGETS)


def test_reply_from_unprobed_port_is_unknown() -> None:
    frames = replies("tcp_syn:22", "synack")
    frames[:, 34], frames[:, 35] = 0, 25  # port 25 was not probed (nor is it the random port)
    kept, counters = run(frames)
    assert kept == 0 and counters["unknown_probe"] == len(TARGETS)


def test_wrong_icmp_id_is_rejected() -> None:
    frames = replies("icmp_echo", "echo_reply")
    frames[:, 38] ^= 0x40
    kept, counters = run(frames)
    assert kept == 0 and counters["validation_failed"] == len(TARGETS)


def test_wrong_dns_id_is_udp_but_not_app_valid() -> None:
    frames = replies("udp_dns", "udp")
    frames[:, 42] ^= 0x01
    classifier = ReplyClassifier(CTX, PROBES)
    batch = classifier.classify(
        frames, np.full(len(frames), frames.shape[1]), np.zeros(len(frames), np.int64)
    )
    assert batch.num_rows == len(TARGETS)
    assert not any(batch.column("app_valid").to_pylist())


def test_ntp_reply_not_echoing_our_timestamp_is_not_app_valid() -> None:
    frames = replies("udp_ntp", "udp")
    frames[:, 42 + 24] ^= 0xFF  # origin timestamp (UDP payload at 42)
    classifier = ReplyClassifier(CTX, PROBES)
    batch = classifier.classify(
        frames, np.full(len(frames), frames.shape[1]), np.zeros(len(frames), np.int64)
    )
    assert batch.num_rows == len(TARGETS) and not any(batch.column("app_valid").to_pylist())


def test_source_address_we_did_not_probe_is_rejected() -> None:
    frames = replies("tcp_syn:80", "rst")  # bare RST: validated only through the ports
    put32(frames, 26, get32(frames, 26) + np.uint32(1000))
    kept, counters = run(frames)
    assert kept <= 1  # 1 in ~14000 forged bare RSTs may match by chance
    assert counters["validation_failed"] >= len(TARGETS) - 1


@pytest.mark.parametrize("name", [p.name for p in PROBES])
def test_quoted_header_for_an_address_we_did_not_probe(name: str) -> None:
    frames = replies(name, "icmp_error", icmp_type=3, icmp_code=1, responder=ip("198.18.9.1"))
    put32(frames, 58, get32(frames, 58) ^ np.uint32(0x100))  # quoted destination changed
    kept, counters = run(frames)
    assert kept <= 1
    assert counters["validation_failed"] + counters["unknown_probe"] >= len(TARGETS) - 1


def test_quoted_header_of_someone_else() -> None:
    frames = replies("tcp_syn:80", "icmp_error", responder=ip("198.18.9.1"))
    put32(frames, 54, np.full(len(frames), ip("198.18.0.2"), np.uint32))  # quoted source
    kept, counters = run(frames)
    assert kept == 0 and counters["quote_not_ours"] == len(TARGETS)


def test_replies_under_another_key_are_rejected() -> None:
    other = ScanContext.from_seed(8, src_ip=US, src_mac=b"\x02" * 6, gw_mac=b"\x04" * 6)
    for name, kind in [("tcp_syn:80", "synack"), ("icmp_echo", "echo_reply"), ("udp_ntp", "udp")]:
        kept, _ = run(replies(name, kind), other)
        assert kept == 0


def test_retransmission_beyond_max_attempts_is_rejected() -> None:
    ctx3 = ScanContext.from_seed(
        7, src_ip=US, src_mac=b"\x02" * 6, gw_mac=b"\x04" * 6, max_attempts=3
    )
    frames = synthesize(BY_NAME["icmp_echo"].build(ctx3, TARGETS, 2), "echo_reply")
    assert run(frames, ctx3)[0] == len(TARGETS)
    assert run(frames, CTX)[0] == 0  # CTX allows attempts 0 and 1 only


def test_not_for_us_and_echo_requests_are_counted() -> None:
    probes = BY_NAME["icmp_echo"].build(CTX, TARGETS, 0)
    kept, counters = run(probes)  # our own requests: destined to the targets
    assert kept == 0 and counters["not_for_us"] == len(TARGETS)
    mirrored = replies("icmp_echo", "echo_reply")
    mirrored[:, 34] = 8  # an echo request to us
    kept, counters = run(mirrored)
    assert kept == 0 and counters["not_a_reply"] == len(TARGETS)


def test_non_first_fragments_are_dropped() -> None:
    frames = replies("tcp_syn:80", "synack")
    frames[:, 20], frames[:, 21] = 0x00, 0x10  # fragment offset 16 (x 8 bytes)
    kept, counters = run(frames)
    assert kept == 0 and counters["fragment"] == len(TARGETS)
    frames[:, 20], frames[:, 21] = 0x20, 0x00  # more-fragments set, offset 0: a first fragment
    assert run(frames)[0] == len(TARGETS)
