"""Round trips: frames built for targets -> replies made by scapy -> validated reply records."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from liveness.output.schema import REPLY_SCHEMA
from liveness.probes import DEFAULT_PROBES, Probe, ReplyClassifier, parse_probes
from liveness.probes.context import ScanContext

US = "198.18.0.1"
ROUTER = "198.18.200.1"
TARGETS = ["198.18.1.7", "198.18.3.200", "198.19.0.9"]


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


CTX = ScanContext.from_seed(99, src_ip=ip(US), src_mac=b"\x02" * 6, gw_mac=b"\x04" * 6)
PROBES = parse_probes(DEFAULT_PROBES)
BY_NAME = {p.name: p for p in PROBES}


def probe_packets(probe: Probe, attempt: int) -> list[Ether]:
    frames = probe.build(CTX, np.array([ip(t) for t in TARGETS], dtype=np.uint32), attempt)
    return [Ether(row.tobytes()) for row in frames]


def outer(src: str, options: bool = False) -> Packet:
    ether = Ether(src="02:00:00:00:00:04", dst="02:00:00:00:00:02")
    if options:
        return ether / IP(src=src, dst=US, ttl=51, id=777, options=[IPOption(b"\x01\x01\x01\x00")])
    return ether / IP(src=src, dst=US, ttl=51, id=777)


def reply(
    kind: str, request: Ether, *, options: bool = False, quote_options: bool = False
) -> bytes:
    """The reply a host (or router) sends to ``request``, made by scapy."""
    req_ip = request[IP]
    target = req_ip.dst
    if kind == "echo_reply":
        icmp = request[ICMP]
        packet = outer(target, options) / ICMP(type=0, id=icmp.id, seq=icmp.seq) / Raw(b"x" * 8)
    elif kind in ("synack", "rst", "rst_ack"):
        tcp = request[TCP]
        flags = {"synack": "SA", "rst": "R", "rst_ack": "RA"}[kind]
        ack = 0 if kind == "rst" else tcp.seq + 1
        seq = 555 if kind == "synack" else 0
        packet = outer(target, options) / TCP(
            sport=tcp.dport, dport=tcp.sport, flags=flags, seq=seq, ack=ack
        )
    elif kind == "dns":
        dns = request[DNS]
        answer = DNSRR(rrname=dns.qd[0].qname, type="A", rdata="198.18.9.9")
        packet = (
            outer(target, options)
            / UDP(sport=53, dport=request[UDP].sport)
            / DNS(id=dns.id, qr=1, rd=1, ra=1, qd=dns.qd, an=answer)
        )
    elif kind == "ntp":
        sent = bytes(request[UDP].payload)[40:48]
        body = bytes([0x24, 2, 6, 0xE9]) + bytes(20) + sent + bytes(8) + b"\x11" * 8
        packet = outer(target, options) / UDP(sport=123, dport=request[UDP].sport) / Raw(body)
    else:
        raise AssertionError(kind)
    return bytes(packet)


def icmp_error(request: Ether, icmp_type: int, code: int, source: str, **kw: bool) -> bytes:
    quoted = request[IP].copy()
    if kw.get("quote_options"):
        quoted.options = [IPOption(b"\x01\x01\x01\x00")]
        del quoted.ihl, quoted.len, quoted.chksum
    return bytes(outer(source, kw.get("options", False)) / ICMP(type=icmp_type, code=code) / quoted)


def classify(
    frames: list[bytes], ctx: ScanContext = CTX
) -> tuple[list[dict[str, object]], dict[str, int]]:
    width = max(len(f) for f in frames) + 7
    array = np.zeros((len(frames), width), dtype=np.uint8)
    for row, frame in enumerate(frames):
        array[row, : len(frame)] = np.frombuffer(frame, dtype=np.uint8)
    lengths = np.array([len(f) for f in frames])
    classifier = ReplyClassifier(ctx, PROBES)
    batch = classifier.classify(array, lengths, np.arange(len(frames), dtype=np.int64) * 10)
    assert batch.schema == REPLY_SCHEMA
    return batch.to_pylist(), classifier.counters


DIRECT = [
    ("icmp_echo", "echo_reply", "echo_reply", 0x00),
    ("tcp_syn:22", "synack", "synack", 0x12),
    ("tcp_syn:443", "rst", "rst", 0x04),
    ("tcp_syn:7547", "rst_ack", "rst", 0x14),
    ("tcp_syn:random", "synack", "synack", 0x12),
    ("tcp_syn:random", "rst", "rst", 0x04),
    ("udp_dns", "dns", "udp", 0),
    ("udp_ntp", "ntp", "udp", 0),
]


@pytest.mark.parametrize("attempt", [0, 1])
@pytest.mark.parametrize("options", [False, True], ids=["plain", "ip-options"])
@pytest.mark.parametrize(("probe_name", "kind", "category", "flags"), DIRECT)
def test_direct_replies(
    probe_name: str, kind: str, category: str, flags: int, attempt: int, options: bool
) -> None:
    requests = probe_packets(BY_NAME[probe_name], attempt)
    records, counters = classify([reply(kind, r, options=options) for r in requests])
    assert counters["valid"] == len(TARGETS) and counters["frames"] == len(TARGETS)
    assert [r["target"] for r in records] == [ip(t) for t in TARGETS]
    for record, request in zip(records, requests, strict=True):
        assert record["responder"] == record["target"]
        assert record["probe"] == probe_name and record["reply"] == category
        assert record["attempt"] == attempt and record["tcp_flags"] == flags
        assert record["ttl"] == 51 and record["ipid"] == 777 and record["repeat"] is False
        assert record["app_valid"] is (kind in ("dns", "ntp"))
        if probe_name == "icmp_echo":
            assert (record["icmp_type"], record["sport"], record["dport"]) == (0, 0, 0)
        else:
            assert record["icmp_type"] == -1
            l4 = request[IP].payload
            assert (record["sport"], record["dport"]) == (l4.dport, l4.sport)
    assert [r["ts"] for r in records] == [0, 10, 20]


ERRORS = [
    (3, 3, "target", "icmp_unreach"),  # port unreachable from the target
    (3, 1, "router", "icmp_unreach"),  # host unreachable from a router
    (3, 13, "router", "icmp_unreach"),  # administratively prohibited
    (11, 0, "router", "icmp_time_exceeded"),
    (5, 1, "router", "icmp_redirect"),
    (4, 0, "router", "icmp_source_quench"),
    (12, 0, "router", "icmp_param_problem"),
    (42, 0, "router", "icmp_other"),
]


@pytest.mark.parametrize("attempt", [0, 1])
@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
@pytest.mark.parametrize(("icmp_type", "code", "source", "category"), ERRORS)
def test_icmp_errors_link_back_to_the_probe(
    probe: Probe, icmp_type: int, code: int, source: str, category: str, attempt: int
) -> None:
    requests = probe_packets(probe, attempt)
    frames = [
        icmp_error(r, icmp_type, code, r[IP].dst if source == "target" else ROUTER)
        for r in requests
    ]
    records, counters = classify(frames)
    assert counters["valid"] == len(TARGETS)
    for record, request in zip(records, requests, strict=True):
        assert record["target"] == ip(request[IP].dst)
        expected_responder = record["target"] if source == "target" else ip(ROUTER)
        assert record["responder"] == expected_responder
        assert record["probe"] == probe.name and record["reply"] == category
        assert (record["icmp_type"], record["icmp_code"]) == (icmp_type, code)
        assert record["attempt"] == attempt and record["app_valid"] is False
        if probe.name != "icmp_echo":
            l4 = request[IP].payload
            assert (record["sport"], record["dport"]) == (l4.dport, l4.sport)


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
def test_icmp_errors_with_ip_options_outside_and_quoted(probe: Probe) -> None:
    requests = probe_packets(probe, 1)
    frames = [icmp_error(r, 3, 10, ROUTER, options=True, quote_options=True) for r in requests]
    records, counters = classify(frames)
    assert counters["valid"] == len(TARGETS), counters
    assert [r["target"] for r in records] == [ip(t) for t in TARGETS]
    assert {r["attempt"] for r in records} == {1}
    assert {r["responder"] for r in records} == {ip(ROUTER)}


def test_mixed_batch_keeps_input_order() -> None:
    frames: list[bytes] = []
    expected: list[tuple[str, str]] = []
    for probe_name, kind, category, _ in DIRECT:
        for request in probe_packets(BY_NAME[probe_name], 0):
            frames.append(reply(kind, request))
            expected.append((probe_name, category))
            frames.append(bytes(request))  # our own outgoing probe, seen by the capture
            frames.append(icmp_error(request, 11, 0, ROUTER))
            expected.append((probe_name, "icmp_time_exceeded"))
    records, counters = classify(frames)
    assert [(r["probe"], r["reply"]) for r in records] == expected
    assert counters["not_for_us"] == len(frames) // 3
    drops = sum(v for k, v in counters.items() if k not in ("frames", "valid"))
    assert counters["valid"] + drops == counters["frames"]


REPLY_OF = {1: ["echo_reply"], 6: ["synack", "rst", "rst_ack"], 17: ["udp"]}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.integers(0, 2**32 - 1) | st.just(int(CTX.src_ip)), min_size=1, max_size=20, unique=True
    ),
    st.sampled_from(PROBES),
    st.integers(0, 1),
    st.integers(0, 3),
    st.booleans(),
)
def test_any_targets_round_trip(
    targets: list[int], probe: Probe, attempt: int, kind_index: int, from_router: bool
) -> None:
    """Property: for any targets, probe and attempt, a reply maps back to its target."""
    from liveness.probes.synth import synthesize

    addresses = np.array(targets, dtype=np.uint32)
    sent = probe.build(CTX, addresses, attempt)
    kinds = [*REPLY_OF[probe.protocol], "icmp_error"]
    kind = kinds[kind_index % len(kinds)]
    router = ip(ROUTER) if from_router else None
    frames = synthesize(sent, kind, responder=router, icmp_type=11, icmp_code=1)
    classifier = ReplyClassifier(CTX, PROBES)
    lengths = np.full(len(frames), frames.shape[1])
    records = classifier.classify(frames, lengths, np.zeros(len(frames), np.int64)).to_pylist()
    assert [r["target"] for r in records] == targets
    assert all(r["probe"] == probe.name and r["attempt"] == attempt for r in records)
    if kind == "icmp_error":
        assert all(r["responder"] == (router if from_router else r["target"]) for r in records)


def test_build_refuses_attempts_the_context_cannot_encode() -> None:
    with pytest.raises(ValueError, match="attempt"):
        BY_NAME["icmp_echo"].build(CTX, np.array([1], dtype=np.uint32), CTX.max_attempts)
