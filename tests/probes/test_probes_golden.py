"""Golden-byte tests: every probe's frames parsed by independent decoders (scapy, tshark)."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.dns import DNS
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.ntp import NTPHeader

from liveness.net.pcap import PcapWriter
from liveness.probes import DEFAULT_PROBES, Probe, parse_probes
from liveness.probes.context import ScanContext
from liveness.probes.tcp_syn import RANDOM_PORT_BASE

SRC = "198.18.0.1"
SRC_MAC = "02:00:00:00:00:aa"
GW_MAC = "02:00:00:00:00:bb"


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


@pytest.fixture(scope="module")
def ctx() -> ScanContext:
    return ScanContext.from_seed(
        1234,
        src_ip=ip(SRC),
        src_mac=bytes.fromhex(SRC_MAC.replace(":", "")),
        gw_mac=bytes.fromhex(GW_MAC.replace(":", "")),
        ttl=61,
        max_attempts=3,
    )


@pytest.fixture(scope="module")
def targets() -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.integers(ip("198.18.0.0"), ip("198.19.255.255"), 64, dtype=np.uint32)


def rechecksummed(packet: Ether) -> Ether:
    """The same packet with scapy's own checksums (computed from scratch)."""
    clone = packet.copy()
    del clone[IP].chksum
    transport = clone[IP].payload
    del transport.chksum
    return Ether(bytes(clone))


PROBES = parse_probes(DEFAULT_PROBES)


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
@pytest.mark.parametrize("attempt", [0, 2])
def test_probe_frames_decode_with_valid_checksums(
    probe: Probe, attempt: int, ctx: ScanContext, targets: np.ndarray
) -> None:
    frames = probe.build(ctx, targets, attempt)
    assert frames.shape == (len(targets), probe.frame_len)
    for row, target in zip(frames, targets, strict=True):
        packet = Ether(row.tobytes())
        fresh = rechecksummed(packet)
        assert packet[IP].chksum == fresh[IP].chksum
        assert packet[IP].payload.chksum == fresh[IP].payload.chksum
        assert packet.src == SRC_MAC and packet.dst == GW_MAC
        assert packet[IP].src == SRC and packet[IP].dst == str(ipaddress.IPv4Address(int(target)))
        assert packet[IP].ttl == 61 and packet[IP].len == probe.frame_len - 14
        assert packet[IP].proto == probe.protocol


def test_tcp_syn_fields(ctx: ScanContext, targets: np.ndarray) -> None:
    probe = parse_probes("tcp_syn:443")[0]
    tokens = probe.tokens(ctx, targets)
    for attempt in range(3):
        for row, token in zip(probe.build(ctx, targets, attempt), tokens, strict=True):
            tcp = Ether(row.tobytes())[TCP]
            assert tcp.flags == "S" and tcp.dport == 443
            assert tcp.seq == token[0]
            offset = (int(token[1]) % ctx.sport_count + attempt) % ctx.sport_count
            assert tcp.sport == ctx.sport_base + offset
            assert dict(tcp.options)["MSS"] == 1460


def test_attempts_differ_only_in_source_port(ctx: ScanContext, targets: np.ndarray) -> None:
    probe = parse_probes("tcp_syn:80")[0]
    first, second = probe.build(ctx, targets, 0), probe.build(ctx, targets, 1)
    differs = np.flatnonzero((first != second).any(axis=0))
    assert set(differs) <= {34, 35, 50, 51}  # source port and TCP checksum
    assert set(differs) & {34, 35}


def test_random_port_is_high_and_never_a_fixed_port(ctx: ScanContext) -> None:
    fixed = list(range(RANDOM_PORT_BASE, RANDOM_PORT_BASE + 2000))
    spec = ",".join(f"tcp_syn:{p}" for p in fixed[:1]) + ",tcp_syn:random"
    probes = parse_probes(spec, ports=f"{fixed[0]}-{fixed[-1]}")
    random_probe = probes[-1]
    targets = np.arange(ip("198.18.0.0"), ip("198.18.0.0") + 20000, dtype=np.uint32)
    ports = np.array(
        [Ether(r.tobytes())[TCP].dport for r in random_probe.build(ctx, targets[:200])]
    )
    assert (ports >= RANDOM_PORT_BASE).all()
    frames = random_probe.build(ctx, targets)
    all_ports = frames[:, 36].astype(np.int64) * 256 + frames[:, 37]
    assert (all_ports >= RANDOM_PORT_BASE).all()
    assert not np.isin(all_ports, fixed).any()
    assert len(np.unique(all_ports)) > 1000  # spread over the range, per target


def test_icmp_echo_fields(ctx: ScanContext, targets: np.ndarray) -> None:
    probe = parse_probes("icmp_echo")[0]
    tokens = probe.tokens(ctx, targets)
    for row, token in zip(probe.build(ctx, targets, 1), tokens, strict=True):
        icmp = Ether(row.tobytes())[ICMP]
        assert icmp.type == 8 and icmp.code == 0
        assert icmp.id == int(token[0]) & 0xFFFF
        assert icmp.seq == ((int(token[0]) >> 16) + 1) & 0xFFFF


def test_dns_query_fields(ctx: ScanContext, targets: np.ndarray) -> None:
    probe = parse_probes("udp_dns:AAAA:example.org")[0]
    tokens = probe.tokens(ctx, targets)
    for row, token in zip(probe.build(ctx, targets), tokens, strict=True):
        packet = Ether(row.tobytes())
        assert packet[UDP].dport == 53
        dns = packet[DNS]
        assert dns.id == int(token[0]) & 0xFFFF and dns.qr == 0 and dns.rd == 1
        assert dns.qd[0].qname == b"example.org." and dns.qd[0].qtype == 28


def test_ntp_request_fields(ctx: ScanContext, targets: np.ndarray) -> None:
    probe = parse_probes("udp_ntp")[0]
    tokens = probe.tokens(ctx, targets)
    for row, token in zip(probe.build(ctx, targets), tokens, strict=True):
        packet = Ether(row.tobytes())
        assert packet[UDP].dport == 123
        ntp = NTPHeader(bytes(packet[UDP].payload))
        assert ntp.version == 4 and ntp.mode == 3
        assert bytes(packet[UDP].payload)[40:48] == (
            int(token[2]).to_bytes(4, "big") + int(token[3]).to_bytes(4, "big")
        )


def test_frames_depend_on_key_and_target(ctx: ScanContext, targets: np.ndarray) -> None:
    other = ScanContext.from_seed(4321, src_ip=ctx.src_ip, src_mac=ctx.src_mac, gw_mac=ctx.gw_mac)
    probe = parse_probes("tcp_syn:22")[0]
    mine, theirs = probe.build(ctx, targets), probe.build(other, targets)
    assert (mine[:, 38:42] != theirs[:, 38:42]).any(axis=1).all()
    assert len({bytes(r[38:42]) for r in mine}) == len(targets)
    assert np.array_equal(mine, probe.build(ctx, targets))  # deterministic


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_validates_every_checksum(
    ctx: ScanContext, targets: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "probes.pcap"
    with PcapWriter(path) as writer:
        for probe in PROBES:
            writer.write(probe.build(ctx, targets, 1))
    fields = ["ip.checksum.status", "tcp.checksum.status", "udp.checksum.status"]
    fields += ["icmp.checksum.status", "_ws.col.Protocol"]
    command = ["tshark", "-n", "-r", str(path), "-T", "fields"]
    for name in ("ip", "tcp", "udp", "icmp"):
        command += ["-o", f"{name}.check_checksum:TRUE"] if name != "icmp" else []
    for name in fields:
        command += ["-e", name]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == len(targets) * len(PROBES)
    for row in rows:
        statuses = [value for value in row[:4] if value]
        assert statuses and all(value == "1" for value in statuses), row
    protocols = {row[4] for row in rows}
    assert {"ICMP", "TCP", "DNS", "NTP"} <= protocols
