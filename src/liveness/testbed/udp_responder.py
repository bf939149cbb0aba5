"""The testbed's own UDP servers: SSDP, memcached, portmapper, NetBIOS and CoAP, on every address.

Run as ``python -m liveness.testbed.udp_responder --services ssdp,coap [--ipv6] --ready FILE``
inside the Internet namespace. One wildcard socket per service and family; each reply leaves
from the address the request was sent to (``IP_PKTINFO`` / ``IPV6_PKTINFO``), as dnsmasq's do,
and nftables decides per address which services are reachable. Each answer is a small but
well-formed message of its protocol answering the request (its id echoed); anything else is
ignored.
"""

from __future__ import annotations

import argparse
import contextlib
import selectors
import signal
import socket
import struct
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["RESPONDERS", "main"]

IP_PKTINFO = 8  # not in Python's socket module
PORTS = {"ssdp": 1900, "memcached": 11211, "portmapper": 111, "netbios": 137, "coap": 5683}
Responder = Callable[[bytes, str], bytes | None]


def ssdp(request: bytes, address: str) -> bytes | None:
    """An M-SEARCH answered by one root device (HTTP/1.1 200 OK with ST and USN)."""
    lines = request.split(b"\r\n")
    if not lines[0].startswith(b"M-SEARCH * HTTP/1."):
        return None
    st = b"upnp:rootdevice"
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        if key.strip().upper() == b"ST" and value.strip() not in (b"", b"ssdp:all"):
            st = value.strip()
    host = f"[{address}]" if ":" in address else address
    uuid = b"uuid:6c697665-6e65-7373-0000-000000000001"
    return (
        b"HTTP/1.1 200 OK\r\n"
        b"CACHE-CONTROL: max-age=1800\r\n"
        b"EXT:\r\n"
        + f"LOCATION: http://{host}:80/device.xml\r\n".encode()
        + b"SERVER: Linux/6 UPnP/1.1 liveness-testbed/1\r\n"
        + b"ST: "
        + st
        + b"\r\n"
        + b"USN: "
        + uuid
        + b"::"
        + st
        + b"\r\n\r\n"
    )


def memcached(request: bytes, address: str) -> bytes | None:
    """``stats`` behind the UDP frame header: the request id echoed, one datagram."""
    if len(request) < 8 or not request[8:].startswith(b"stats"):
        return None
    stats = b"STAT pid 4242\r\nSTAT uptime 3600\r\nSTAT version 1.6.18\r\nSTAT curr_items 0\r\n"
    return request[:2] + struct.pack("!HHH", 0, 1, 0) + stats + b"END\r\n"


def portmapper(request: bytes, address: str) -> bytes | None:
    """An ONC RPC call to portmapper v2: NULL and DUMP (two mappings, itself on TCP and UDP)
    succeed, other procedures are PROC_UNAVAIL, other programs PROG_UNAVAIL."""
    if len(request) < 40:
        return None
    xid, kind, rpcvers, prog, vers, proc = struct.unpack_from("!IIIIII", request)
    if kind != 0 or rpcvers != 2:
        return None
    head = struct.pack("!IIIII", xid, 1, 0, 0, 0)  # REPLY, MSG_ACCEPTED, verifier AUTH_NULL
    if prog != 100000 or vers != 2:
        return head + struct.pack("!I", 1)  # PROG_UNAVAIL (versions are not told here)
    if proc == 0:
        return head + struct.pack("!I", 0)
    if proc != 4:
        return head + struct.pack("!I", 3)  # PROC_UNAVAIL
    mappings = ((100000, 2, 6, 111), (100000, 2, 17, 111))
    body = b"".join(struct.pack("!IIIII", 1, *m) for m in mappings) + struct.pack("!I", 0)
    return head + struct.pack("!I", 0) + body


def netbios(request: bytes, address: str) -> bytes | None:
    """A node status query (NBSTAT) answered with two names and zeroed statistics."""
    if len(request) < 12 + 34 + 4 or request[2] & 0xF8 != 0:  # a query (R = 0, opcode 0)
        return None
    (questions,) = struct.unpack_from("!H", request, 4)
    name = request[12 : 12 + 34]
    qtype, qclass = struct.unpack_from("!HH", request, 12 + 34)
    if questions != 1 or name[0] != 32 or qtype != 0x21 or qclass != 1:
        return None
    names = [(b"LIVENESS", 0x00, 0x0400), (b"WORKGROUP", 0x00, 0x8400)]  # active; group
    table = bytes([len(names)]) + b"".join(
        n.ljust(15, b" ") + bytes([suffix]) + struct.pack("!H", flags) for n, suffix, flags in names
    )
    rdata = table + bytes.fromhex("02004c697665") + bytes(40)  # unit id, then statistics
    header = request[:2] + struct.pack("!HHHHH", 0x8400, 0, 1, 0, 0)  # response, AA
    return header + name + struct.pack("!HHIH", 0x21, 1, 0, len(rdata)) + rdata


def coap(request: bytes, address: str) -> bytes | None:
    """A confirmable GET: ACK with 2.05 Content and a link-format body for
    ``/.well-known/core``, 4.04 Not Found for other paths; the message id and token echoed."""
    if len(request) < 4 or request[0] >> 6 != 1:
        return None
    kind, tkl, code = (request[0] >> 4) & 3, request[0] & 0x0F, request[1]
    if kind != 0 or tkl > 8 or code != 0x01 or len(request) < 4 + tkl:
        return None
    mid, token = request[2:4], request[4 : 4 + tkl]
    path, at, number = [], 4 + tkl, 0
    while at < len(request) and request[at] != 0xFF:
        delta, length = request[at] >> 4, request[at] & 0x0F
        if delta > 12 or length > 12:
            return None  # the extended forms are not needed for the probes sent here
        number += delta
        if number == 11:
            path.append(request[at + 1 : at + 1 + length])
        at += 1 + length
    head = bytes([(1 << 6) | (2 << 4) | tkl])  # version 1, ACK
    if path != [b".well-known", b"core"]:
        return head + b"\x84" + mid + token  # 4.04 Not Found
    body = b'</sensors/temp>;rt="temperature";ct=0,</.well-known/core>;ct=40'
    return head + b"\x45" + mid + token + bytes([0xC1, 40]) + b"\xff" + body  # Content-Format


RESPONDERS: dict[str, Responder] = {
    "ssdp": ssdp,
    "memcached": memcached,
    "portmapper": portmapper,
    "netbios": netbios,
    "coap": coap,
}


def _socket(port: int, ipv6: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if ipv6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.bind(("::" if ipv6 else "0.0.0.0", port))
    sock.setblocking(False)
    return sock


def _answer(sock: socket.socket, respond: Responder) -> None:
    """Answer one datagram from the address it was sent to."""
    data, ancillary, _, peer = sock.recvmsg(2048, 256)
    for level, kind, value in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
            local = value[8:12]  # in_pktinfo: ifindex, spec_dst, addr
            text = socket.inet_ntop(socket.AF_INET, local)
            cmsg = (socket.IPPROTO_IP, IP_PKTINFO, bytes(4) + local + bytes(4))
            break
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
            local = value[:16]  # in6_pktinfo: addr, ifindex
            text = socket.inet_ntop(socket.AF_INET6, local)
            cmsg = (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, local + bytes(4))
            break
    else:
        return
    reply = respond(data, text)
    if reply is not None:
        sock.sendmsg([reply], [cmsg], 0, peer)


def main(argv: list[str] | None = None) -> None:
    """Bind every service's sockets, create the ready file, then answer forever."""
    parser = argparse.ArgumentParser(prog="liveness.testbed.udp_responder")
    parser.add_argument("--services", required=True, help=f"comma-separated: {','.join(PORTS)}")
    parser.add_argument("--ipv6", action="store_true", help="answer on IPv6 as well")
    parser.add_argument("--ready", required=True, help="file created once every socket is bound")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    selector = selectors.DefaultSelector()
    for name in args.services.split(","):
        if name not in RESPONDERS:
            parser.error(f"unknown service {name!r}")
        for ipv6 in (False, True) if args.ipv6 else (False,):
            selector.register(_socket(PORTS[name], ipv6), selectors.EVENT_READ, RESPONDERS[name])
    Path(args.ready).touch()
    while True:
        for key, _ in selector.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            with contextlib.suppress(OSError, ValueError, struct.error):
                _answer(sock, key.data)


if __name__ == "__main__":
    main()
