"""The generic UDP probe ``udp:PORT[:PAYLOAD]``: every named payload read back by scapy and
tshark as a valid message of its protocol (both families, with correct UDP checksums), round
trips through replies made by scapy (valid answers are ``app_valid``, answers to another id
only application-active), raw payloads as ZMap's ``--probe-args`` give them (its own
``.pkt`` files included, as they are), and the refusals."""

from __future__ import annotations

import ipaddress
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scapy.asn1.asn1 import ASN1_STRING
from scapy.contrib.coap import CoAP
from scapy.contrib.oncrpc import RPC, RPC_Call, RPC_Reply
from scapy.contrib.portmap import DUMP_Reply, Map_Entry
from scapy.layers.dns import DNS, DNSRR
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.netbios import NBNSHeader, NBNSNodeStatusRequest, NBNSNodeStatusResponse
from scapy.layers.ntp import NTPHeader
from scapy.layers.snmp import SNMP, SNMPget, SNMPresponse, SNMPvarbind
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from liveness.cli.zmap_names import probes_for_module
from liveness.errors import InputError
from liveness.output.schema import REPLY_SCHEMA
from liveness.packet.udp_payloads import parse_payload, payloads
from liveness.probes import Probe, ReplyClassifier, parse_probes
from liveness.probes.context import ScanContext
from liveness.probes.synth import udp_answer

US4, US6 = "198.18.0.1", "2001:2::1"
TARGETS4 = ["198.18.1.7", "198.18.3.200", "198.19.0.9"]
TARGETS6 = ["2001:2:0:1::1", "2001:2:0:2::7", "2001:2:abcd::ffff"]
CTX = ScanContext.from_seed(
    99,
    src_ip=int(ipaddress.IPv4Address(US4)),
    src_mac=b"\x02" * 6,
    gw_mac=b"\x04" * 6,
    src_ip6=ipaddress.IPv6Address(US6).packed,
)
NAMED = {
    "dns": 53,
    "ntp": 123,
    "snmp": 161,
    "ssdp": 1900,
    "memcached": 11211,
    "portmapper": 111,
    "netbios": 137,
    "coap": 5683,
}
ZMAP_TARBALL = Path("/work/shared/peers/zmap-4.3.4.tar.gz")
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark missing")


def build(probe: Probe, ipv6: bool, attempt: int = 0) -> np.ndarray:
    if ipv6:
        packed = b"".join(ipaddress.IPv6Address(t).packed for t in TARGETS6)
        return probe.build6(CTX, np.frombuffer(packed, np.uint8).reshape(-1, 16), attempt)
    targets = np.array([int(ipaddress.IPv4Address(t)) for t in TARGETS4], np.uint32)
    return probe.build(CTX, targets, attempt)


def tokens(probe: Probe, ipv6: bool) -> np.ndarray:
    if ipv6:
        packed = b"".join(ipaddress.IPv6Address(t).packed for t in TARGETS6)
        return probe.tokens6(CTX, np.frombuffer(packed, np.uint8).reshape(-1, 16))
    return probe.tokens(CTX, np.array([int(ipaddress.IPv4Address(t)) for t in TARGETS4], np.uint32))


def udp_of(frame: np.ndarray) -> UDP:
    """The UDP layer of a frame, after checking its checksum as scapy recomputes it."""
    packet = Ether(frame.tobytes())
    udp = packet[UDP]
    sent = udp.chksum
    del udp.chksum
    assert Ether(bytes(packet))[UDP].chksum == sent
    return udp


def test_every_named_payload_is_listed_with_its_port() -> None:
    assert {name: p.port for name, p in payloads().items()} == NAMED
    for name, port in NAMED.items():
        (probe,) = parse_probes(f"udp:{port}")
        assert probe.name == f"udp:{port}:{name}" and probe.target_port == port


# -- each payload, as scapy reads it ---------------------------------------------------------


def check_dns(payload: bytes, token: np.ndarray) -> None:
    dns = DNS(payload)
    assert dns.id == token[0] & 0xFFFF and dns.qr == 0 and dns.rd == 1 and dns.qdcount == 1
    assert dns.qd[0].qname == b"liveness.test." and dns.qd[0].qtype == 1 and dns.qd[0].qclass == 1


def check_ntp(payload: bytes, token: np.ndarray) -> None:
    ntp = NTPHeader(payload)
    assert ntp.version == 4 and ntp.mode == 3 and len(payload) == 48
    assert payload[40:48] == struct.pack("!II", token[2], token[3])


def check_snmp(payload: bytes, token: np.ndarray) -> None:
    snmp = SNMP(payload)
    assert snmp.version.val == 1 and snmp.community.val == b"public"
    assert isinstance(snmp.PDU, SNMPget)
    assert snmp.PDU.id.val == (int(token[0]) & 0x3FFFFFFF) | 0x40000000
    assert [vb.oid.val for vb in snmp.PDU.varbindlist] == ["1.3.6.1.2.1.1.1.0"]
    assert bytes(snmp) == payload  # scapy re-encodes exactly the same BER


def check_ssdp(payload: bytes, token: np.ndarray) -> None:
    lines = payload.decode("ascii").split("\r\n")
    assert lines[0] == "M-SEARCH * HTTP/1.1" and payload.endswith(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if line)
    assert headers["MAN"] == '"ssdp:discover"' and headers["ST"] == "ssdp:all"
    assert int(headers["MX"]) >= 1 and headers["HOST"] == "239.255.255.250:1900"


def check_memcached(payload: bytes, token: np.ndarray) -> None:
    request_id, sequence, count, reserved = struct.unpack("!HHHH", payload[:8])
    assert (request_id, sequence, count, reserved) == (token[0] & 0xFFFF, 0, 1, 0)
    assert payload[8:] == b"stats\r\n"


def check_portmapper(payload: bytes, token: np.ndarray) -> None:
    rpc = RPC(payload)
    call = rpc[RPC_Call]
    assert rpc.xid == token[0] and rpc.mtype == 0
    assert (call.version, call.program, call.pversion, call.procedure) == (2, 100000, 2, 4)
    assert call.aflavor == 0 and call.alength == 0 and len(payload) == 40


def check_netbios(payload: bytes, token: np.ndarray) -> None:
    header = NBNSHeader(payload)
    query = header[NBNSNodeStatusRequest]
    assert token[0] & 0xFFFF == header.NAME_TRN_ID and header.RESPONSE == 0
    assert header.OPCODE == 0 and header.QDCOUNT == 1
    assert query.QUESTION_NAME.rstrip(b"\x00") == b"*" and query.SUFFIX == 0x4141  # "*", 15 NULs
    assert query.QUESTION_TYPE == 0x21 and query.QUESTION_CLASS == 1  # NBSTAT, IN


def check_coap(payload: bytes, token: np.ndarray) -> None:
    coap = CoAP(payload)
    assert (coap.ver, coap.type, coap.code) == (1, 0, 1)  # confirmable GET
    assert coap.msg_id == token[0] & 0xFFFF and coap.token == struct.pack("!I", token[2])
    assert coap.options == [("Uri-Path", b".well-known"), ("Uri-Path", b"core")]


CHECKS = {
    "dns": check_dns,
    "ntp": check_ntp,
    "snmp": check_snmp,
    "ssdp": check_ssdp,
    "memcached": check_memcached,
    "portmapper": check_portmapper,
    "netbios": check_netbios,
    "coap": check_coap,
}


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("name", list(NAMED))
def test_named_payloads_are_what_scapy_reads(name: str, ipv6: bool) -> None:
    (probe,) = parse_probes(f"udp:{NAMED[name]}:{name}")
    for attempt in (0, 1):
        frames = build(probe, ipv6, attempt)
        for frame, token in zip(frames, tokens(probe, ipv6), strict=True):
            udp = udp_of(frame)
            assert udp.dport == NAMED[name] and udp.len == 8 + len(probe.payload.data)
            if ipv6:
                assert Ether(frame.tobytes()).haslayer(IPv6)
            CHECKS[name](bytes(udp.payload), token)


# tshark: the dissector of the protocol, no malformed or warning expert info, and one field
TSHARK = {
    "dns": ("dns", "dns.qry.name", "liveness.test"),
    "ntp": ("ntp", "ntp.flags.mode", "3"),
    "snmp": ("snmp", "snmp.name", "1.3.6.1.2.1.1.1.0"),
    "ssdp": ("ssdp", "http.request.method", "M-SEARCH"),
    "portmapper": ("rpc", "portmap.procedure_v2", "4"),
    "netbios": ("nbns", "nbns.count.queries", "1"),
    "coap": ("coap", "coap.opt.uri_path_recon", "/.well-known/core"),
}


def tshark(pcap: Path, *fields: str) -> list[list[str]]:
    argv = ["tshark", "-n", "-r", str(pcap), "-o", "udp.check_checksum:TRUE", "-T", "fields"]
    argv += [arg for name in fields for arg in ("-e", name)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


@needs_tshark
@pytest.mark.parametrize("name", [n for n in NAMED if n != "memcached"])
def test_named_payloads_are_what_tshark_reads(tmp_path: Path, name: str) -> None:
    (probe,) = parse_probes(f"udp:{NAMED[name]}:{name}")
    frames = [*build(probe, False), *build(probe, True)]
    pcap = tmp_path / f"{name}.pcap"
    wrpcap(str(pcap), [Ether(f.tobytes()) for f in frames])
    protocol, field, value = TSHARK[name]
    rows = tshark(pcap, "frame.protocols", "udp.checksum.status", "_ws.malformed",
                  "_ws.expert.severity", field)  # fmt: skip
    assert len(rows) == 6
    for protocols, checksum, malformed, severity, got in rows:
        assert protocols.endswith(f":udp:{protocol}") and checksum == "1" and not malformed
        # 2097152 is "chat" (a request line noted as such), below note and warning
        assert all(int(s) <= 2097152 for s in severity.split(",") if s)
        assert value in got.split(",")


@needs_tshark
def test_memcached_stats_is_what_tshark_reads(tmp_path: Path) -> None:
    """Wireshark's memcache dissector skips no UDP frame header, so it reads the command after
    the 8-byte header (checked against the protocol by :func:`check_memcached`)."""
    (probe,) = parse_probes("udp:11211")
    packets = []
    for frame in [*build(probe, False), *build(probe, True)]:
        packet = Ether(frame.tobytes())
        body = bytes(packet[UDP].payload)[8:]
        packet[UDP].remove_payload()
        del packet[UDP].len, packet[UDP].chksum
        packets.append(packet / Raw(body))
    pcap = tmp_path / "memcached.pcap"
    wrpcap(str(pcap), packets)
    rows = tshark(pcap, "frame.protocols", "memcache.command", "_ws.malformed")
    assert rows == [
        [f"eth:ethertype:{af}:udp:memcache", "stats", ""] for af in ["ip"] * 3 + ["ipv6"] * 3
    ]


# -- round trips: replies made by scapy from the query --------------------------------------


def answer(name: str, query: bytes) -> bytes:
    """A valid server answer to ``query``, made by scapy (or by the protocol's text)."""
    if name == "dns":
        q = DNS(query)
        record = DNSRR(rrname=q.qd[0].qname, rdata="192.0.2.1")
        return bytes(DNS(id=q.id, qr=1, rd=1, ra=1, qd=q.qd, an=record))
    if name == "ntp":
        reply = bytearray(bytes(NTPHeader(version=4, mode=4, stratum=2)))
        reply[24:32] = query[40:48]  # origin timestamp = the client's transmit timestamp
        return bytes(reply)
    if name == "snmp":
        q = SNMP(query)
        varbind = SNMPvarbind(oid="1.3.6.1.2.1.1.1.0", value=ASN1_STRING(b"Linux testbed 6.1"))
        response = SNMPresponse(id=q.PDU.id, varbindlist=[varbind])
        return bytes(SNMP(version=1, community=q.community, PDU=response))
    if name == "ssdp":
        return (b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\n"
                b"LOCATION: http://192.0.2.1:49152/desc.xml\r\nST: upnp:rootdevice\r\n"
                b"USN: uuid:0::upnp:rootdevice\r\n\r\n")  # fmt: skip
    if name == "memcached":
        return query[:8] + b"STAT pid 4242\r\nSTAT uptime 17\r\nEND\r\n"
    if name == "portmapper":
        entry = Map_Entry(prog=100000, vers=2, prot=17, port=111, value_follows=0)
        return bytes(RPC(xid=RPC(query).xid, mtype=1) / RPC_Reply() /
                     DUMP_Reply(value_follows=1, mappings=[entry]))  # fmt: skip
    if name == "netbios":
        q = NBNSHeader(query)
        header = NBNSHeader(NAME_TRN_ID=q.NAME_TRN_ID, RESPONSE=1, NM_FLAGS=0x40, ANCOUNT=1)
        return bytes(header / NBNSNodeStatusResponse(RR_NAME=b"*", SUFFIX=0))
    if name == "coap":
        q = CoAP(query)
        ack = CoAP(type=2, code=69, msg_id=q.msg_id, token=q.token, paymark=b"\xff")
        return bytes(ack / Raw(b'</sensors/temp>;rt="temperature"'))
    raise AssertionError(name)


def classify(
    probes: list[Probe], frames: list[np.ndarray]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    width = max(len(f) for f in frames) + 7
    array = np.zeros((len(frames), width), dtype=np.uint8)
    for row, frame in enumerate(frames):
        array[row, : len(frame)] = frame
    lengths = np.array([len(f) for f in frames])
    classifier = ReplyClassifier(CTX, probes)
    batch = classifier.classify(array, lengths, np.arange(len(frames), dtype=np.int64))
    assert batch.schema == REPLY_SCHEMA
    return batch.to_pylist(), classifier.counters


def replies_to(probe: Probe, frames: np.ndarray, name: str) -> list[np.ndarray]:
    """One scapy-made answer per probe frame, as frames (addresses, ports, checksums redone)."""
    out = []
    for frame in frames:
        query = bytes(Ether(frame.tobytes())[UDP].payload)
        out.append(udp_answer(frame[None, :], answer(name, query))[0])
    return out


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_valid_answers_to_every_payload_are_app_valid(ipv6: bool) -> None:
    """All eight payloads in one scan: each answer goes to its probe, ``udp``, app-valid, with
    the attempt recovered from the source port."""
    probes = parse_probes(",".join(f"udp:{port}" for port in NAMED.values()))
    frames: list[np.ndarray] = []
    expected = []
    for probe, name in zip(probes, NAMED, strict=True):
        for attempt in (0, 1):
            frames += replies_to(probe, build(probe, ipv6, attempt), name)
            expected += [(probe.name, attempt)] * len(TARGETS4)
    records, counters = classify(probes, frames)
    assert [(r["probe"], r["attempt"]) for r in records] == expected
    assert all(r["reply"] == "udp" and r["app_valid"] for r in records), [
        r["probe"] for r in records if not r["app_valid"]
    ]
    targets = TARGETS6 if ipv6 else TARGETS4
    column = "target6" if ipv6 else "target"
    got = {str(ipaddress.ip_address(r[column])) for r in records}
    assert got == {str(ipaddress.ip_address(t)) for t in targets}
    assert counters["valid"] == len(frames)


def other_token(name: str, reply: bytes) -> bytes:
    """``reply`` as an answer to another query (the per-target field changed)."""
    data = bytearray(reply)
    if name == "snmp":
        at = reply.index(b"\xa2") + 2 + 2 + 3  # the last byte of the 4-byte request-id
    else:
        at = {"dns": 0, "memcached": 0, "portmapper": 3, "netbios": 0, "coap": 2, "ntp": 24}[name]
    data[at] ^= 0x01
    if name == "coap":
        data[4] ^= 0x01  # and the token
    return bytes(data)


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("name", [n for n in NAMED if n != "ssdp"])
def test_an_answer_to_another_id_is_active_but_not_valid(name: str, ipv6: bool) -> None:
    (probe,) = parse_probes(f"udp:{NAMED[name]}")
    frames = build(probe, ipv6)
    forged = []
    for frame in frames:
        query = bytes(Ether(frame.tobytes())[UDP].payload)
        forged.append(udp_answer(frame[None, :], other_token(name, answer(name, query)))[0])
    records, _ = classify([probe], forged)
    assert [(r["reply"], r["app_valid"]) for r in records] == [("udp", False)] * len(frames)


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_any_answer_is_application_active_and_wrong_ports_are_dropped(ipv6: bool) -> None:
    (probe,) = parse_probes("udp:161")
    frames = build(probe, ipv6)
    junk = [udp_answer(frame[None, :], b"\x00garbage")[0] for frame in frames]
    records, _ = classify([probe], junk)
    assert [(r["reply"], r["app_valid"], r["sport"]) for r in records] == [("udp", False, 161)] * 3
    moved = []
    for reply in junk:
        off = 54 if ipv6 else 34
        bad = reply.copy()
        bad[off + 3] ^= 0x40  # another destination port: not our token's source port
        moved.append(bad)
    records, counters = classify([probe], moved)
    assert records == [] and counters["validation_failed"] == 3


def test_short_and_truncated_answers_are_not_valid() -> None:
    """A valid answer cut inside its header is active only (the parsers read within bounds)."""
    for name, port in NAMED.items():
        (probe,) = parse_probes(f"udp:{port}")
        frame = build(probe, False)[:1]
        query = bytes(Ether(frame[0].tobytes())[UDP].payload)
        full = answer(name, query)
        for cut in (0, 1, 3, 7):
            records, _ = classify([probe], [udp_answer(frame, full[:cut])[0]])
            assert [(r["reply"], r["app_valid"]) for r in records] == [("udp", False)], (name, cut)


# -- raw payloads: ZMap's --probe-args forms --------------------------------------------------


def test_raw_payloads_are_sent_as_given_and_never_app_valid() -> None:
    (probe,) = parse_probes("udp:7777:hex:c0ffee")
    assert probe.name == "udp:7777" and probe.payload.data == b"\xc0\xff\xee"
    for ipv6 in (False, True):
        frames = build(probe, ipv6)
        assert {bytes(udp_of(f).payload) for f in frames} == {b"\xc0\xff\xee"}
        replies = [udp_answer(f[None, :], b"\xc0\xff\xee")[0] for f in frames]
        records, _ = classify([probe], replies)
        assert [(r["probe"], r["app_valid"]) for r in records] == [("udp:7777", False)] * 3


def test_zmap_probe_args_become_udp_probes(tmp_path: Path) -> None:
    assert probes_for_module("udp", "161", None) == "udp:161"
    assert probes_for_module("udp", "53,161", "snmp") == "udp:53:snmp,udp:161:snmp"
    assert probes_for_module("udp", "9", "text:a,b:c") == "udp:9:hex:612c623a63"
    assert probes_for_module("udp", "9", "hex:0001ff") == "udp:9:hex:0001ff"
    path = tmp_path / "a,b.pkt"
    path.write_bytes(b"\x00\x01,\xff")
    spec = probes_for_module("udp", "9-10", f"file:{path}")
    assert spec == "udp:9:hex:00012cff,udp:10:hex:00012cff"
    assert [p.payload.data for p in parse_probes(spec)] == [b"\x00\x01,\xff"] * 2
    assert probes_for_module("udp", "9", "text:") == "udp:9:hex:"
    assert parse_probes("udp:9:hex:")[0].frame_len == 42


@pytest.mark.skipif(not ZMAP_TARBALL.exists(), reason="ZMap's sources missing")
def test_zmap_payload_files_are_accepted_as_they_are(tmp_path: Path) -> None:
    """Every ``.pkt`` of ZMap's examples/udp-probes: sent byte for byte; the DNS and SNMP ones
    are still read by scapy as their protocol."""
    with tarfile.open(ZMAP_TARBALL) as tar:
        members = [m for m in tar.getmembers() if "/examples/udp-probes/" in m.name
                   and m.name.endswith(".pkt")]  # fmt: skip
        assert len(members) > 30
        tar.extractall(tmp_path, members=members, filter="data")
    for member in members:
        path = tmp_path / member.name
        tail = path.stem.rsplit("_", 1)[-1]
        port = int(tail) if tail.isdigit() and 1 <= int(tail) <= 65535 else 9
        (probe,) = parse_probes(probes_for_module("udp", str(port), f"file:{path}"))
        frames = build(probe, False)
        assert bytes(udp_of(frames[0]).payload) == path.read_bytes(), member.name
        assert len(build(probe, True)[0]) == len(frames[0]) + 20
        if path.name in ("dns_53.pkt", "snmp2_161.pkt"):
            layer: type[Packet] = DNS if path.name.startswith("dns") else SNMP
            assert bytes(layer(path.read_bytes())) == path.read_bytes()


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("udp", "needs a port"),
        ("udp:0", "within 1..65535"),
        ("udp:70000", "within 1..65535"),
        ("udp:x", "not a port"),
        ("udp:7777", "no default payload"),
        ("udp:161:nosuch", "unknown UDP payload"),
        ("udp:161:hex:abc", "hex digits"),
        ("udp:161:hex:zz", "hex digits"),
        ("udp:161:file:/nonexistent/x.pkt", "cannot read"),
        ("udp:161:template:/x.tpl", "not supported"),
        ("udp:161:base64:AAAA", "is not NAME"),
        ("udp:161:hex:" + "0" * 99_999, "hex digits"),
        ("udp:161:hex:" + "00" * 1453, "at most 1452"),
        ("udp_dns,udp:53", "both probe port 53"),
        ("udp:123,udp_ntp", "both probe port 123"),
    ],
)
def test_bad_udp_probes_are_refused(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_probes(spec)


@pytest.mark.parametrize(
    ("ports", "args", "message"),
    [
        (None, "snmp", "needs ports"),
        ("7777", None, "no default payload"),
        ("161", "template-fields", "not supported"),
        ("161", "hex:0", "hex digits"),
        ("161", "file:/nonexistent", "cannot read"),
        ("0", "snmp", "within 1..65535"),
    ],
)
def test_bad_zmap_udp_flags_are_refused(ports: str | None, args: str | None, message: str) -> None:
    with pytest.raises(InputError, match=message):
        probes_for_module("udp", ports, args)


def test_payload_parser_names_the_flag() -> None:
    with pytest.raises(InputError, match=r"^--probe-args: unknown UDP payload 'x'"):
        parse_payload("x", "--probe-args")
