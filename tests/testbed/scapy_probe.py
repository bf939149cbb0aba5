"""An independent prober for the testbed tests: scapy frames from inside a VP namespace.

Run with ``ip netns exec VPNS python scapy_probe.py`` and a JSON request on stdin
(``iface``, ``src``, ``src6`` (for IPv6 targets), ``gateway_mac``, ``dns_name``, ``probes``:
``[[target, probe], ...]``, ``repeat``, ``wait``, ``hlim``). Prints one JSON list of observed
replies: ``[target, probe, reply, responder, icmp_code, app_valid]`` (IPv6 addresses in RFC 5952
text; an IPv6 reply with a wrong checksum is left out). Matching is done here from the reply's
own fields (the quoted header for ICMP and ICMPv6 errors, read from the raw bytes), without any
code of the package under test.
"""

from __future__ import annotations

import ipaddress
import json
import random
import sys
import time
from typing import Any

from scapy.config import conf
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.layers.ntp import NTP
from scapy.sendrecv import AsyncSniffer, sendp

FIXED = (22, 23, 80, 443, 7547)
NTP_STAMP = 0xDEADBEEF12345678


# ICMPv6 error type -> reply category (as the reply record names them)
ICMP6_ERRORS = {
    1: "icmp_unreach",
    2: "icmp_other",
    3: "icmp_time_exceeded",
    4: "icmp_param_problem",
}


def frame(req: dict[str, Any], target: str, probe: str, rand_port: int) -> Any:
    if ":" in target:
        ip: Any = IPv6(src=req["src6"], dst=target, hlim=req.get("hlim", 64))
    else:
        ip = IP(src=req["src"], dst=target, ttl=64)
    if probe == "icmp_echo":
        l4: Any = (
            ICMPv6EchoRequest(id=0x4C56, seq=1) if ":" in target else ICMP(type=8, id=0x4C56, seq=1)
        )
    elif probe.startswith("tcp_syn:"):
        port = rand_port if probe.endswith("random") else int(probe.split(":")[1])
        l4 = TCP(sport=40000 + random.randrange(9000), dport=port, flags="S", seq=12345)
    elif probe == "udp_dns":
        l4 = UDP(sport=41000, dport=53) / DNS(id=0x4C56, rd=1, qd=DNSQR(qname=req["dns_name"]))
    else:
        ntp = NTP(version=4, mode=3)
        ntp.sent = NTP_STAMP
        l4 = UDP(sport=41001, dport=123) / bytes(ntp)[:40] / NTP_STAMP.to_bytes(8, "big")
    return Ether(dst=req["gateway_mac"]) / ip / l4


def _probe_name(proto: int, dport: int) -> str:
    if proto in (1, 58):
        return "icmp_echo"
    if proto == 6:
        return f"tcp_syn:{dport}" if dport in FIXED else "tcp_syn:random"
    return {53: "udp_dns", 123: "udp_ntp"}.get(dport, "udp_other")


def checksum_ok6(ip: Any) -> bool:
    """The IPv6 packet's ICMPv6, TCP or UDP checksum is right (recomputed by scapy): the
    testbed rewrites the source of ICMPv6 errors, so this checks nft fixed the checksum."""
    fresh = IPv6(bytes(ip))
    layer = fresh.payload
    if not hasattr(layer, "cksum"):
        return True
    sent = layer.cksum
    del layer.cksum
    return bool(IPv6(bytes(fresh)).payload.cksum == sent)


def classify6(pkt: Any) -> list[Any] | None:
    ip = pkt[IPv6]
    if not checksum_ok6(ip):
        print(f"bad checksum: {pkt.summary()}", file=sys.stderr)
        return None
    if ip.nh == 58:
        raw = bytes(ip.payload)
        kind, code = raw[0], raw[1]
        if kind in ICMP6_ERRORS:
            quoted = raw[8:]
            target = str(ipaddress.IPv6Address(quoted[24:40]))
            dport = int.from_bytes(quoted[42:44], "big") if len(quoted) >= 44 else 0
            probe = _probe_name(quoted[6], dport)
            return [target, probe, ICMP6_ERRORS[kind], ip.src, int(code), False]
        if ICMPv6EchoReply in pkt:
            return [ip.src, "icmp_echo", "echo_reply", ip.src, -1, False]
        return None
    return _transport(pkt, ip.src)


def classify(pkt: Any) -> list[Any] | None:
    if IPv6 in pkt:
        return classify6(pkt)
    ip = pkt[IP]
    if ICMP in pkt and pkt[ICMP].type in (3, 11):
        raw = bytes(pkt[ICMP])[8:]
        quoted = IP(raw)
        target, proto = quoted.dst, quoted.proto
        l4 = raw[quoted.ihl * 4 :]
        dport = int.from_bytes(l4[2:4], "big") if len(l4) >= 4 else 0
        probe = _probe_name(proto, dport)
        reply = "icmp_unreach" if pkt[ICMP].type == 3 else "icmp_time_exceeded"
        return [target, probe, reply, ip.src, int(pkt[ICMP].code), False]
    if ICMP in pkt and pkt[ICMP].type == 0:
        return [ip.src, "icmp_echo", "echo_reply", ip.src, -1, False]
    return _transport(pkt, ip.src)


def _transport(pkt: Any, src: str) -> list[Any] | None:
    if TCP in pkt:
        sport = pkt[TCP].sport
        probe = f"tcp_syn:{sport}" if sport in FIXED else "tcp_syn:random"
        flags = int(pkt[TCP].flags)
        reply = "synack" if flags & 0x12 == 0x12 else "rst" if flags & 0x04 else "other"
        return [src, probe, reply, src, -1, False]
    if UDP in pkt:
        payload = bytes(pkt[UDP].payload)
        if pkt[UDP].sport == 53:
            valid = len(payload) >= 12 and payload[:2] == b"\x4c\x56" and payload[2] & 0x80
            return [src, "udp_dns", "udp", src, -1, bool(valid)]
        if pkt[UDP].sport == 123:
            valid = (
                len(payload) >= 48
                and payload[0] & 7 == 4
                and payload[24:32] == (NTP_STAMP.to_bytes(8, "big"))
            )
            return [src, "udp_ntp", "udp", src, -1, bool(valid)]
    return None


def main() -> None:
    req = json.load(sys.stdin)
    conf.verb = 0
    rand_port = 50000 + random.randrange(15000)
    frames = [frame(req, t, p, rand_port) for t, p in req["probes"]]
    gw = req["gateway_mac"].lower()
    sniffer = AsyncSniffer(
        iface=req["iface"],
        store=True,
        lfilter=lambda p: Ether in p and p[Ether].src.lower() == gw and (IP in p or IPv6 in p),
    )
    sniffer.start()
    time.sleep(0.3)
    for _ in range(req.get("repeat", 1)):
        sendp(frames, iface=req["iface"], verbose=0, inter=req.get("inter", 0.0005))
    time.sleep(req.get("wait", 1.0))
    packets: Any = sniffer.stop() or []
    seen = [row for row in (classify(p) for p in packets) if row is not None]
    json.dump(seen, sys.stdout)


if __name__ == "__main__":
    main()
