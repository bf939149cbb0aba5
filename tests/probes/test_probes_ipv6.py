"""IPv6 probes: golden frames checked by scapy, round trips of every reply kind made by scapy
(from the target and from a router, every ICMPv6 error), forged replies, and fuzzing."""

from __future__ import annotations

import ipaddress
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSRR
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6PacketTooBig,
    ICMPv6ParamProblem,
    ICMPv6TimeExceeded,
    IPv6,
)
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from liveness.output.schema import REPLY_SCHEMA
from liveness.probes import DEFAULT_PROBES, Probe, ReplyClassifier, parse_probes
from liveness.probes.context import ScanContext
from liveness.validate import Validator

US4 = "198.18.0.1"
US = "2001:2::1"
ROUTER = "2001:2:ff::1"
TARGETS = ["2001:2:0:1::1", "2001:2:0:2::7", "2001:2:abcd::ffff"]


def packed(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed


def targets6(texts: list[str]) -> np.ndarray:
    return np.frombuffer(b"".join(packed(t) for t in texts), np.uint8).reshape(-1, 16)


CTX = ScanContext.from_seed(
    99,
    src_ip=int(ipaddress.IPv4Address(US4)),
    src_mac=b"\x02" * 6,
    gw_mac=b"\x04" * 6,
    src_ip6=packed(US),
)
PROBES = parse_probes(DEFAULT_PROBES)
BY_NAME = {p.name: p for p in PROBES}


def probe_packets(probe: Probe, attempt: int, texts: list[str] = TARGETS) -> list[Ether]:
    return [Ether(row.tobytes()) for row in probe.build6(CTX, targets6(texts), attempt)]


def test_ipv6_tokens_are_the_cbc_mac_of_source_target_and_probe() -> None:
    """An independent oracle: AES-CBC with a zero IV over the three blocks."""
    key = bytes(range(16))
    dst = targets6(TARGETS)
    tokens = Validator(key).tokens6(packed(US), dst, 7)
    for row, target in enumerate(dst):
        encryptor = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).encryptor()
        data = packed(US) + target.tobytes() + struct.pack(">IIII", 7, 0, 0, 6)
        mac = (encryptor.update(data) + encryptor.finalize())[-16:]
        assert tokens[row].astype("<u4").tobytes() == mac


def test_ipv6_frames_are_what_scapy_reads() -> None:
    """Every probe's IPv6 frame: addresses, next header, lengths and checksums as scapy
    recomputes them, for several targets and attempts."""
    for probe in PROBES:
        if not probe.ipv6:
            continue
        for attempt in (0, 1):
            for packet, target in zip(probe_packets(probe, attempt), TARGETS, strict=True):
                ip6 = packet[IPv6]
                assert packet.type == 0x86DD
                assert (ip6.src, ip6.dst, ip6.hlim) == (US, target, CTX.ttl)
                assert ip6.nh == probe.protocol6
                assert ip6.plen == len(bytes(ip6.payload)) == probe.frame_len - 34
                l4 = ip6.payload
                name = "cksum" if "cksum" in l4.fields else "chksum"
                sent = getattr(l4, name)
                setattr(l4, name, None)
                assert getattr(Ether(bytes(packet))[IPv6].payload, name) == sent, probe.name


def test_ipv6_probe_kinds_match_their_ipv4_selves() -> None:
    """The same names, the ICMPv6 echo types, and ports equal to the IPv4 probe's."""
    echo = probe_packets(BY_NAME["icmp_echo"], 0)[0]
    assert echo.haslayer(ICMPv6EchoRequest)
    for probe in PROBES:
        if probe.protocol == 6 and probe.target_port:
            assert probe_packets(probe, 0)[0][TCP].dport == probe.target_port
            assert probe_packets(probe, 0)[0][TCP].flags == "S"
    dns = probe_packets(BY_NAME["udp_dns"], 0)[0]
    assert dns[UDP].dport == 53 and dns.haslayer(DNS)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_the_ipv6_frames_with_good_checksums(tmp_path: Path) -> None:
    packets = [p for probe in PROBES if probe.ipv6 for p in probe_packets(probe, 1)]
    capture = tmp_path / "probes6.pcap"
    wrpcap(str(capture), packets)
    fields = ["ipv6.dst", "ipv6.nxt", "tcp.checksum.status", "udp.checksum.status"]
    fields.append("icmpv6.checksum.status")
    argv = ["tshark", "-r", str(capture), "-o", "tcp.check_checksum:TRUE"]
    argv += ["-o", "udp.check_checksum:TRUE", "-T", "fields"]
    for name in fields:
        argv += ["-e", name]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    lines = [line.split("\t") for line in out.splitlines() if line]
    assert len(lines) == len(packets)
    for dst, nxt, tcp_ok, udp_ok, icmp_ok in lines:
        assert dst in TARGETS
        status = {"6": tcp_ok, "17": udp_ok, "58": icmp_ok}[nxt]
        assert status == "1", (dst, nxt, status)  # 1: "Good"


def outer(src: str) -> Packet:
    return Ether(src="02:00:00:00:00:04", dst="02:00:00:00:00:02") / IPv6(src=src, dst=US, hlim=51)


def reply(kind: str, request: Ether) -> bytes:
    """The reply a host sends to ``request``, made by scapy."""
    target = request[IPv6].dst
    if kind == "echo_reply":
        echo = request[ICMPv6EchoRequest]
        packet = outer(target) / ICMPv6EchoReply(id=echo.id, seq=echo.seq, data=b"x" * 8)
    elif kind in ("synack", "rst", "rst_ack"):
        tcp = request[TCP]
        flags = {"synack": "SA", "rst": "R", "rst_ack": "RA"}[kind]
        ack = 0 if kind == "rst" else tcp.seq + 1
        packet = outer(target) / TCP(sport=tcp.dport, dport=tcp.sport, flags=flags, ack=ack)
    elif kind == "dns":
        dns = request[DNS]
        answer = DNSRR(rrname=dns.qd[0].qname, type="AAAA", rdata="2001:2::53")
        packet = (
            outer(target)
            / UDP(sport=53, dport=request[UDP].sport)
            / DNS(id=dns.id, qr=1, rd=1, ra=1, qd=dns.qd, an=answer)
        )
    elif kind == "ntp":
        sent = bytes(request[UDP].payload)[40:48]
        body = bytes([0x24, 2, 6, 0xE9]) + bytes(20) + sent + bytes(8) + b"\x11" * 8
        packet = outer(target) / UDP(sport=123, dport=request[UDP].sport) / Raw(body)
    else:
        raise AssertionError(kind)
    return bytes(packet)


ERRORS = {
    # ICMPv6 type -> (scapy layer, codes, reply category)
    1: (ICMPv6DestUnreach, range(7), "icmp_unreach"),
    2: (ICMPv6PacketTooBig, [0], "icmp_other"),
    3: (ICMPv6TimeExceeded, [0, 1], "icmp_time_exceeded"),
    4: (ICMPv6ParamProblem, [0, 1, 2], "icmp_param_problem"),
}


def icmp_error(request: Ether, icmp_type: int, code: int, source: str) -> bytes:
    layer = ERRORS[icmp_type][0]
    message = layer(code=code) if icmp_type != 2 else layer(mtu=1280)
    return bytes(outer(source) / message / bytes(request[IPv6])[:1232])


def classify(frames: list[bytes], ctx: ScanContext = CTX) -> dict[str, list[object]]:
    width = max(len(f) for f in frames)
    rows = np.zeros((len(frames), max(width, 192)), dtype=np.uint8)
    for i, frame in enumerate(frames):
        rows[i, : len(frame)] = np.frombuffer(frame, np.uint8)
    classifier = ReplyClassifier(ctx, PROBES)
    lengths = np.array([len(f) for f in frames])
    batch = classifier.classify(rows, lengths, np.arange(len(frames)))
    assert batch.schema == REPLY_SCHEMA
    counters = classifier.counters
    drops = sum(v for k, v in counters.items() if k not in ("frames", "valid"))
    assert counters["frames"] == len(frames) == counters["valid"] + drops
    return batch.to_pydict()


def text6(value: bytes | None) -> str | None:
    return None if value is None else str(ipaddress.IPv6Address(value))


DIRECT = {
    "icmp_echo": [("echo_reply", "echo_reply")],
    "udp_dns": [("dns", "udp")],
    "udp_ntp": [("ntp", "udp")],
}


@pytest.mark.parametrize("probe", [p for p in PROBES if p.ipv6], ids=lambda p: p.name)
@pytest.mark.parametrize("attempt", [0, 1])
def test_direct_replies_round_trip(probe: Probe, attempt: int) -> None:
    kinds = DIRECT.get(probe.name, [("synack", "synack"), ("rst", "rst"), ("rst_ack", "rst")])
    requests = probe_packets(probe, attempt)
    for kind, category in kinds:
        got = classify([reply(kind, r) for r in requests])
        assert got["probe"] == [probe.name] * len(TARGETS)
        assert got["reply"] == [category] * len(TARGETS)
        assert [text6(t) for t in got["target6"]] == TARGETS
        assert [text6(t) for t in got["responder6"]] == TARGETS
        assert got["af"] == [6] * len(TARGETS)
        assert got["target"] == [0] * len(TARGETS)
        assert got["attempt"] == [attempt] * len(TARGETS)
        assert got["ttl"] == [51] * len(TARGETS)
        if probe.name.startswith("udp_"):
            assert got["app_valid"] == [True] * len(TARGETS)
        if probe.name == "icmp_echo":
            assert got["icmp_type"] == [129] * len(TARGETS)


@pytest.mark.parametrize("probe", [p for p in PROBES if p.ipv6], ids=lambda p: p.name)
@pytest.mark.parametrize("source", ["target", "router"])
def test_every_icmpv6_error_is_linked_to_its_probe(probe: Probe, source: str) -> None:
    requests = probe_packets(probe, 1)
    for icmp_type, (_layer, codes, category) in ERRORS.items():
        for code in codes:
            frames = [
                icmp_error(r, icmp_type, code, r[IPv6].dst if source == "target" else ROUTER)
                for r in requests
            ]
            got = classify(frames)
            assert got["probe"] == [probe.name] * len(TARGETS), (icmp_type, code)
            assert got["reply"] == [category] * len(TARGETS)
            assert (got["icmp_type"], got["icmp_code"]) == (
                [icmp_type] * len(TARGETS),
                [code] * len(TARGETS),
            )
            assert [text6(t) for t in got["target6"]] == TARGETS
            responders = TARGETS if source == "target" else [ROUTER] * len(TARGETS)
            assert [text6(t) for t in got["responder6"]] == responders
            assert got["attempt"] == [1] * len(TARGETS)
            if probe.target_port:
                assert got["sport"] == [probe.target_port] * len(TARGETS)


def test_both_families_in_one_batch_keep_their_order() -> None:
    probe = BY_NAME["tcp_syn:80"]
    v4 = [Ether(row.tobytes()) for row in probe.build(CTX, np.array([0xC6120107], np.uint32))]
    from scapy.layers.inet import IP

    request4 = v4[0]
    reply4 = bytes(
        Ether(src="02:00:00:00:00:04", dst="02:00:00:00:00:02")
        / IP(src=request4[IP].dst, dst=US4, ttl=60)
        / TCP(sport=80, dport=request4[TCP].sport, flags="SA", ack=request4[TCP].seq + 1)
    )
    six = [reply("synack", r) for r in probe_packets(probe, 0)]
    got = classify([six[0], reply4, six[1], six[2]])
    assert got["af"] == [6, 4, 6, 6]
    assert got["target"][1] == 0xC6120107 and got["target6"][1] is None
    assert [text6(t) for i, t in enumerate(got["target6"]) if i != 1] == TARGETS
    assert got["ts"] == [0, 1, 2, 3]


def test_forged_and_foreign_ipv6_replies_are_dropped_and_counted() -> None:
    probe = BY_NAME["tcp_syn:443"]
    requests = probe_packets(probe, 0)
    good = reply("synack", requests[0])
    forged_ack = bytearray(good)
    forged_ack[54 + 8] ^= 0xFF  # the acknowledgement number
    other_ctx = ScanContext.from_seed(
        100, src_ip=CTX.src_ip, src_mac=CTX.src_mac, gw_mac=CTX.gw_mac, src_ip6=CTX.src_ip6
    )
    not_us = bytes(
        Ether() / IPv6(src=TARGETS[0], dst="2001:2::2") / TCP(sport=443, dport=40000, flags="SA")
    )
    quote_not_ours = bytes(
        outer(ROUTER)
        / ICMPv6DestUnreach(code=3)
        / IPv6(src="2001:2::9", dst=TARGETS[0])
        / TCP(dport=443)
    )
    classifier = ReplyClassifier(CTX, PROBES)
    frames = [bytes(forged_ack), not_us, quote_not_ours, good[:60]]
    rows = np.zeros((len(frames), 192), np.uint8)
    for i, f in enumerate(frames):
        rows[i, : len(f)] = np.frombuffer(f, np.uint8)
    batch = classifier.classify(rows, np.array([len(f) for f in frames]), np.zeros(4, np.int64))
    assert batch.num_rows == 0
    c = classifier.counters
    assert (c["validation_failed"], c["not_for_us"], c["quote_not_ours"], c["truncated"]) == (
        1,
        1,
        1,
        1,
    )
    # The genuine reply fails under another scan's key.
    assert classify([good], other_ctx)["probe"] == []


def test_ipv6_frames_are_not_ours_without_an_ipv6_source() -> None:
    v4_only = ScanContext.from_seed(99, src_ip=CTX.src_ip, src_mac=CTX.src_mac, gw_mac=CTX.gw_mac)
    good = reply("echo_reply", probe_packets(BY_NAME["icmp_echo"], 0)[0])
    classifier = ReplyClassifier(v4_only, PROBES)
    rows = np.zeros((1, 192), np.uint8)
    rows[0, : len(good)] = np.frombuffer(good, np.uint8)
    assert classifier.classify(rows, np.array([len(good)]), np.zeros(1, np.int64)).num_rows == 0
    assert classifier.counters["not_ip"] == 1


def test_icmp_timestamp_has_no_ipv6_form() -> None:
    (timestamp,) = parse_probes("icmp_timestamp")
    assert not timestamp.ipv6
    with pytest.raises(ValueError, match="no IPv6 form"):
        timestamp.build6(CTX, targets6(TARGETS))


def _valid6() -> tuple[np.ndarray, np.ndarray]:
    frames: list[bytes] = []
    for probe in PROBES:
        requests = probe_packets(probe, 1)
        kinds = DIRECT.get(probe.name, [("synack", ""), ("rst_ack", "")])
        frames += [reply(kind, r) for kind, _ in kinds for r in requests]
        frames += [icmp_error(r, 1, 4, ROUTER) for r in requests]
    rows = np.zeros((len(frames), 192), np.uint8)
    for i, f in enumerate(frames):
        rows[i, : len(f)] = np.frombuffer(f, np.uint8)
    return rows, np.array([len(f) for f in frames])


VALID6, VALID6_LEN = _valid6()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID6) - 1), st.integers(0, 191), st.integers(0, 255)),
        min_size=1,
        max_size=40,
    ),
    st.lists(st.integers(0, 192), min_size=1, max_size=40),
)
def test_fuzzed_ipv6_frames_never_raise_and_are_all_accounted(
    flips: list[tuple[int, int, int]], cuts: list[int]
) -> None:
    """Genuine IPv6 replies with bytes flipped and lengths cut: every frame is one outcome,
    nothing raises, and no record has an attempt outside the scan's or a foreign family."""
    rows = VALID6.copy()
    lengths = VALID6_LEN.copy()
    for row, col, value in flips:
        rows[row, col] = value
    for i, cut in enumerate(cuts):
        lengths[i % len(lengths)] = min(lengths[i % len(lengths)], cut)
    classifier = ReplyClassifier(CTX, PROBES)
    before = rows.copy()
    batch = classifier.classify(rows, lengths, np.zeros(len(rows), np.int64))
    counters = classifier.counters
    drops = sum(v for k, v in counters.items() if k not in ("frames", "valid"))
    assert counters["frames"] == len(rows) == counters["valid"] + drops == len(VALID6)
    assert counters["valid"] == batch.num_rows
    assert np.array_equal(rows, before)
    got = batch.to_pydict()
    assert all(a < CTX.max_attempts for a in got["attempt"])
    assert all(af in (4, 6) for af in got["af"])


def test_unflipped_ipv6_replies_all_validate() -> None:
    classifier = ReplyClassifier(CTX, PROBES)
    batch = classifier.classify(VALID6, VALID6_LEN, np.zeros(len(VALID6), np.int64))
    assert batch.num_rows == len(VALID6)


@pytest.mark.parametrize("probe", [p for p in PROBES if p.ipv6], ids=lambda p: p.name)
def test_synthesized_ipv6_replies_validate_and_scapy_agrees(probe: Probe) -> None:
    """The numpy reply maker (used by benchmarks and the in-memory transport) makes replies
    that validate and whose checksums scapy recomputes the same."""
    from liveness.probes.synth import synthesize

    sent = probe.build6(CTX, targets6(TARGETS), 1)
    kinds = {"icmp_echo": ["echo_reply"], "udp_dns": ["udp"], "udp_ntp": ["udp"]}
    router = int.from_bytes(packed(ROUTER), "big")
    for kind in [*kinds.get(probe.name, ["synack", "rst", "rst_ack"]), "icmp_error"]:
        frames = synthesize(sent, kind, icmp_type=1, icmp_code=4, responder=router)
        for row in frames:
            packet = Ether(row.tobytes())
            l4 = packet[IPv6].payload
            name = "cksum" if "cksum" in l4.fields else "chksum"
            sent_sum = getattr(l4, name)
            setattr(l4, name, None)
            assert getattr(Ether(bytes(packet))[IPv6].payload, name) == sent_sum, kind
        got = classify([row.tobytes() for row in frames])
        assert got["probe"] == [probe.name] * len(TARGETS), kind
        assert got["attempt"] == [1] * len(TARGETS)
