"""``--app-layer`` without a network: payloads, the follow-up frames, the answers' classification
and the follow-up engine, each checked against scapy (an independent decoder) or worked out.

The replies are built with scapy as a host would send them (our ports swapped, the sequence
numbers the handshake implies), so what is checked is the stateless contract: everything the
scan needs comes from the SYN-ACK and the key.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from liveness.errors import InputError
from liveness.output.schema import REPLY_CATEGORIES
from liveness.probes import parse_probes
from liveness.probes.app_profiles import (
    APP_PROTOS,
    PROFILES,
    TLS_HELLO,
    AppLayer,
    parse_app_profiles,
    payload_length,
    recognise,
    speaks_profile,
)
from liveness.probes.context import ScanContext
from liveness.probes.pipeline import ReplyPipeline
from liveness.probes.tcp_followup import PSH_ACK, RST, Segments, profile_payloads, tcp_frames
from liveness.scan.followups import FollowUps

US = "198.18.0.1"
US6 = "2001:2::1"
SNAP = 600
APP = AppLayer(parse_app_profiles("8080:tls"), timeout_s=2.0, banner_bytes=64)
CTX = ScanContext.from_seed(
    5,
    src_ip=int(ipaddress.IPv4Address(US)),
    src_mac=bytes.fromhex("020000000001"),
    gw_mac=bytes.fromhex("020000000002"),
    src_ip6=ipaddress.IPv6Address(US6).packed,
    app_layer=APP,
)
PROBES = parse_probes("tcp_syn:22,tcp_syn:80,tcp_syn:443,tcp_syn:8080,tcp_syn:random")
NAMES = [p.name for p in PROBES]


def _synack_of(probe_name: str, target: str, their_isn: int = 1000) -> Any:
    """The SYN-ACK a host sends to our probe (built from the probe's own frame)."""
    probe = PROBES[NAMES.index(probe_name)]
    six = ":" in target
    if six:
        frame = probe.build6(
            CTX, np.frombuffer(ipaddress.IPv6Address(target).packed, np.uint8).reshape(1, 16), 0
        )[0]
    else:
        frame = probe.build(CTX, np.array([int(ipaddress.IPv4Address(target))], np.uint32), 0)[0]
    sent = Ether(bytes(frame))
    syn = sent[TCP]
    net = IPv6(src=target, dst=US6) if six else IP(src=target, dst=US)
    return sent, net / TCP(sport=syn.dport, dport=syn.sport, flags="SA", seq=their_isn,
                           ack=syn.seq + 1)  # fmt: skip


def _frames(packets: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    raw = [bytes(Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01") / p) for p in packets]
    frames = np.zeros((len(raw), SNAP), np.uint8)
    for i, data in enumerate(raw):
        frames[i, : len(data)] = np.frombuffer(data, np.uint8)
    return frames, np.array([len(d) for d in raw], np.uint32)


def _classify(packets: list[Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    pipeline = ReplyPipeline(CTX, PROBES)
    frames, lengths = _frames(packets)
    records = pipeline.run(frames, lengths, np.zeros(len(packets), np.int64))
    return pipeline.counters, records.to_pylist()


def _after(
    synack: Any, flags: str, load: bytes = b"", acked: int = 0, seq: int | None = None
) -> Any:
    """The host's next segment: ``acked`` bytes of ours acknowledged."""
    tcp = synack[TCP]
    net = synack.copy()
    net[TCP].remove_payload()
    segment = TCP(sport=tcp.sport, dport=tcp.dport, flags=flags,
                  seq=(tcp.seq + 1) % 2**32 if seq is None else seq,
                  ack=(tcp.ack + acked) % 2**32)  # fmt: skip
    out = net.copy()
    out[TCP] = segment
    return out / Raw(load) if load else out


# -- profiles ------------------------------------------------------------------------------


def test_client_hello_parses_as_tls_with_scapy() -> None:
    # In a process of its own: scapy's TLS layers bind more dissectors (CLDAP on 389, ...),
    # which would change how later tests in this process dissect their packets.
    script = (
        "import sys\n"
        "from scapy.layers.tls.handshake import TLSClientHello\n"
        "from scapy.layers.tls.record import TLS\n"
        "hello = TLS(sys.stdin.buffer.read()).msg[0]\n"
        "assert isinstance(hello, TLSClientHello), hello\n"
        "print(hello.version, *hello.ciphers)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], input=TLS_HELLO, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    version, *ciphers = (int(v) for v in done.stdout.split())
    assert version == 0x0303 and 0xC02F in ciphers and 0x1301 in ciphers
    assert len(TLS_HELLO) == payload_length("tls", 4) == payload_length("tls", 6)


@pytest.mark.parametrize(
    "target", ["198.18.0.7", "198.19.255.254", "2001:2::9", "2001:2:0:ff:1:2:3:4"]
)
def test_http_request_has_the_target_as_host_and_a_fixed_length(target: str) -> None:
    six = ":" in target
    packed = ipaddress.ip_address(target).packed
    targets = (
        np.frombuffer(packed, np.uint8).reshape(1, 16)
        if six
        else np.array([int(ipaddress.IPv4Address(target))], np.uint32)
    )
    payload, length = profile_payloads(APP, targets, np.array([80]))
    text = bytes(payload[0, : length[0]]).decode()
    head, _, rest = text.partition("\r\n")
    assert head == "GET / HTTP/1.1" and text.endswith("\r\n\r\n")
    headers = dict(line.split(":", 1) for line in rest.strip().split("\r\n"))
    assert headers["Host"].strip() == (f"[{target}]" if six else target)
    assert int(length[0]) == payload_length("http", 6 if six else 4)


def test_recognise_names_protocols_whatever_the_port() -> None:
    answers = [
        (b"HTTP/1.1 400 Bad Request\r\n", "http"),
        (b"\x16\x03\x03\x00\x31\x02\x00\x00\x2d\x03\x03", "tls"),
        (b"\x15\x03\x01\x00\x02\x02\x28", "tls"),
        (b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n", "ssh"),
        (b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23", "telnet"),
        (b"220 mail.example ESMTP ready\r\n", "text"),
        (b"\x00\x01\x02\x03garbage\xfe", "binary"),
        (b"", ""),
    ]
    width = 32
    payload = np.zeros((len(answers), width), np.uint8)
    for i, (data, _) in enumerate(answers):
        payload[i, : len(data)] = np.frombuffer(data, np.uint8)
    lengths = np.array([len(d) for d, _ in answers])
    names = [APP_PROTOS[c] for c in recognise(payload, lengths)]
    assert names == [name for _, name in answers]
    # the banner profile accepts any greeting a server sends first, http only HTTP
    codes = recognise(payload, lengths)
    banner = speaks_profile(codes, np.full(len(answers), PROFILES.index("banner")))
    http = speaks_profile(codes, np.full(len(answers), PROFILES.index("http")))
    assert banner.tolist() == [False, False, False, True, True, True, False, False]
    assert http.tolist() == [True, False, False, False, False, False, False, False]


@pytest.mark.parametrize(
    ("text", "message"),
    [("80", "not PORT:PROFILE"), ("80:ftp", "unknown profile 'ftp'"), ("0:http", "outside")],
)
def test_bad_profiles_are_refused(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_app_profiles(text)


def test_profiles_default_as_the_issue_says() -> None:
    app = AppLayer()
    assert [app.profile(p) for p in (22, 23, 80, 443, 7547, 50123)] == [
        "banner", "banner", "http", "tls", "http", "http",
    ]  # fmt: skip
    assert AppLayer(parse_app_profiles("22:http")).profile(22) == "http"


# -- the follow-up frames --------------------------------------------------------------------


@pytest.mark.parametrize("target", ["198.18.4.5", "2001:2:0:4::5"])
def test_follow_up_acks_the_synack_and_carries_the_payload(target: str) -> None:
    sent, synack = _synack_of("tcp_syn:80", target, their_isn=0xFFFFFFFF)
    _, records = _classify([synack])
    assert [r["reply"] for r in records] == ["synack"]
    engine_sent: list[tuple[np.ndarray, np.ndarray]] = []
    clock = [100.0]
    engine = FollowUps(CTX, lambda f, n: engine_sent.append((f, n)), clock=lambda: clock[0])
    pipeline = ReplyPipeline(CTX, PROBES)
    frames, lengths = _frames([synack])
    pipeline.run(frames, lengths, np.zeros(1, np.int64))
    engine.handle(pipeline.last)
    assert len(engine_sent) == 1
    frame, length = engine_sent[0]
    ack = Ether(bytes(frame[0, : length[0]]))
    # checksums as scapy computes them
    copy = ack.copy()
    del copy[TCP].chksum
    if IP in copy:
        del copy[IP].chksum
    rebuilt = Ether(bytes(copy))
    assert rebuilt[TCP].chksum == ack[TCP].chksum
    syn = sent[TCP]
    assert (ack[TCP].sport, ack[TCP].dport) == (syn.sport, 80)
    assert ack[TCP].seq == (syn.seq + 1) % 2**32 and ack[TCP].ack == 0  # their ISN + 1 wraps to 0
    assert ack[TCP].flags == "PA"
    assert bytes(ack[TCP].payload).startswith(b"GET / HTTP/1.1\r\nHost: ")
    net = ack[IPv6] if ":" in target else ack[IP]
    assert (net.src, net.dst) == ((US6, target) if ":" in target else (US, target))
    # the answer closes it: one RST, just past our payload, no ACK
    answer = _after(synack, "PA", b"HTTP/1.1 200 OK\r\n\r\n", acked=len(ack[TCP].payload))
    frames, lengths = _frames([answer])
    records = pipeline.run(frames, lengths, np.zeros(1, np.int64)).to_pylist()
    assert [(r["reply"], r["app_proto"], r["app_valid"], r["repeat"]) for r in records] == [
        ("app_data", "http", True, False)
    ]
    engine.handle(pipeline.last)
    assert len(engine_sent) == 2
    rst = Ether(bytes(engine_sent[1][0][0, : engine_sent[1][1][0]]))
    assert rst[TCP].flags == "R"
    assert rst[TCP].seq == (syn.seq + 1 + len(ack[TCP].payload)) % 2**32
    # a second segment of the answer and the timeout send nothing more
    frames, lengths = _frames([_after(synack, "PA", b"more", acked=len(ack[TCP].payload))])
    pipeline.run(frames, lengths, np.zeros(1, np.int64))
    engine.handle(pipeline.last)
    clock[0] += 10
    engine.expire()
    engine.close_all()
    assert len(engine_sent) == 2
    assert engine.stats == {"acks_sent": 1, "rsts_sent": 1, "answered": 1, "timed_out": 0}
    assert len(engine.queue) == 0


def test_silent_connections_are_closed_at_their_timeout_and_at_the_end() -> None:
    synacks = [_synack_of("tcp_syn:22", f"198.18.9.{i}")[1] for i in range(1, 5)]
    sent: list[Any] = []
    clock = [0.0]
    engine = FollowUps(CTX, lambda f, n: sent.append((f, n)), clock=lambda: clock[0])
    pipeline = ReplyPipeline(CTX, PROBES)
    for step, packet in enumerate(synacks):
        clock[0] = float(step)
        frames, lengths = _frames([packet])
        pipeline.run(frames, lengths, np.zeros(1, np.int64))
        engine.handle(pipeline.last)
    acks = [Ether(bytes(f[0, : n[0]])) for f, n in sent]
    assert [a[TCP].flags for a in acks] == ["A"] * 4  # banner: a bare ACK, nothing sent
    assert all(len(a[TCP].payload) == 0 for a in acks)
    clock[0] = 4.5  # the first three (opened at 0, 1, 2) are due at 2, 3, 4
    engine.expire()
    assert len(sent) == 5 and len(engine.queue) == 1  # one RST batch; the closed ones trimmed
    rsts = sent[4][0]
    assert rsts.shape[0] == 3
    engine.close_all()
    assert len(sent) == 6 and engine.stats["rsts_sent"] == 4 and engine.stats["timed_out"] == 4


# -- classifying the answers -------------------------------------------------------------------


def test_every_kind_of_answer_is_classified_by_the_handshake_numbers() -> None:
    sent80, syn80 = _synack_of("tcp_syn:80", "198.18.1.1")
    _, syn22 = _synack_of("tcp_syn:22", "198.18.1.2")
    _, syn443 = _synack_of("tcp_syn:443", "198.18.1.3")
    _, syn_rand = _synack_of("tcp_syn:random", "198.18.1.4")
    http_len = payload_length("http", 4)
    tls_len = payload_length("tls", 4)
    ours = sent80[TCP].seq
    packets = [
        _after(syn80, "PA", b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", acked=http_len),
        _after(syn22, "PA", b"SSH-2.0-OpenSSH_9.2\r\n"),  # server speaks first: acks the SYN
        _after(syn443, "A", acked=tls_len),  # a bare ACK of our ClientHello
        _after(syn443, "PA", b"\x16\x03\x03\x00\x04\x0e\x00\x00\x00", acked=tls_len),
        _after(syn_rand, "R", seq=12345),  # a RST after our follow-up (no ACK)
        _after(syn80, "RA", acked=http_len),  # a reset acknowledging our payload
        _after(syn22, "FA"),  # a FIN acknowledging only the SYN: not an answer
        _after(syn80, "PA", b"HTTP/1.1 200 OK\r\n", acked=7),  # acknowledges neither: forged
    ]
    counters, records = _classify(packets)
    got = [
        (r["probe"], r["reply"], r["app_active"], r["app_proto"], r["app_valid"]) for r in records
    ]
    assert got == [
        ("tcp_syn:80", "app_data", True, "http", True),
        ("tcp_syn:22", "app_data", True, "ssh", True),
        ("tcp_syn:443", "app_ack", True, "", False),
        ("tcp_syn:443", "app_data", True, "tls", True),
        ("tcp_syn:random", "app_rst", False, "", False),
        ("tcp_syn:80", "app_rst", False, "", False),
    ]
    assert records[0]["banner"] == b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n"
    assert records[1]["banner"] == b"SSH-2.0-OpenSSH_9.2\r\n"
    assert records[2]["banner"] is None and records[4]["banner"] is None
    assert counters["unexpected_tcp_flags"] == 1 and counters["validation_failed"] == 1
    assert ours  # the probe's sequence number was used


def test_payload_length_comes_from_the_ip_header_not_padding_or_options() -> None:
    _, synack = _synack_of("tcp_syn:22", "198.18.2.2")
    answer = _after(synack, "PA", b"SSH-2.0-x\r\n")
    answer[IP].options = [b"\x01\x01\x01\x00"]  # NOP NOP NOP EOL: a 24-byte IP header
    answer = IP(bytes(answer))
    long_banner = _after(synack, "PA", bytes(range(32, 127)) * 2)  # longer than banner_bytes
    frames, lengths = _frames([answer, long_banner])
    lengths[0] += 6  # Ethernet padding captured after the IP packet
    pipeline = ReplyPipeline(CTX, PROBES)
    records = pipeline.run(frames, lengths, np.zeros(2, np.int64)).to_pylist()
    assert records[0]["banner"] == b"SSH-2.0-x\r\n"
    assert records[1]["banner"] == (bytes(range(32, 127)) * 2)[: APP.banner_bytes]
    assert records[1]["app_proto"] == "text"


def test_without_app_layer_follow_up_segments_are_not_replies() -> None:
    plain = ScanContext.from_seed(
        5, src_ip=CTX.src_ip, src_mac=CTX.src_mac, gw_mac=CTX.gw_mac, src_ip6=CTX.src_ip6
    )
    _, synack = _synack_of("tcp_syn:80", "198.18.1.1")
    pipeline = ReplyPipeline(plain, PROBES)
    frames, lengths = _frames([synack, _after(synack, "PA", b"HTTP/1.1 200 OK\r\n")])
    records = pipeline.run(frames, lengths, np.zeros(2, np.int64)).to_pylist()
    assert [r["reply"] for r in records] == ["synack"]
    assert records[0]["app_active"] is False and records[0]["banner"] is None


def test_app_categories_are_appended_so_old_codes_stay() -> None:
    assert REPLY_CATEGORIES[:11][-1] == "timestamp_reply"
    assert REPLY_CATEGORIES[11:] == ("app_data", "app_ack", "app_rst")


def test_rst_frames_from_segments_match_scapy() -> None:
    targets = np.array([int(ipaddress.IPv4Address("198.18.7.7"))], np.uint32)
    frames, lengths = tcp_frames(CTX, Segments(targets, [40000], [443], [2**32 - 1], [0], RST))
    packet = Ether(bytes(frames[0, : lengths[0]]))
    assert packet[TCP].flags == "R" and packet[TCP].seq == 2**32 - 1 and packet[TCP].window == 0
    check = packet.copy()
    del check[TCP].chksum, check[IP].chksum
    assert Ether(bytes(check))[TCP].chksum == packet[TCP].chksum
    assert PSH_ACK == 0x18
