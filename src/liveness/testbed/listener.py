"""The TCP listeners of the Internet namespace: one socket per open port, on every address.

Run as ``python -m liveness.testbed.listener --ports 22,80 --tarpit 4 --middlebox 5 [--ipv6]
--ready FILE`` inside the namespace. The kernel answers SYN-ACK for any local address because the
sockets are bound to 0.0.0.0 (and, with ``--ipv6``, to ``::`` as IPv6-only sockets beside them) and
the whole range is local; nftables decides per address which ports stay open. The tarpit sockets
are transparent (IP_TRANSPARENT, IPV6_TRANSPARENT) so nftables ``tproxy`` can hand them connections
to any port; nftables lets only SYNs and RSTs reach them, so their handshakes never complete. The
middlebox sockets answer with a SYN-ACK a scanner can tell from the tarpit's: TTL (hop limit)
``MIDDLEBOX_TTL``, MSS ``MIDDLEBOX_MSS``, a small receive window. Accepted connections are closed
at once, so queues never fill.
"""

from __future__ import annotations

import argparse
import selectors
import signal
import socket
import sys
from pathlib import Path

from liveness.testbed.behaviours import MIDDLEBOX_MSS, MIDDLEBOX_TTL

__all__ = ["main"]

IP_TRANSPARENT = 19
IPV6_TRANSPARENT = 75
BACKLOG = 65535
MIDDLEBOX_RCVBUF = 2048  # the kernel doubles it; the SYN-ACK's window follows it


def _listen(
    port: int, transparent: bool, ipv6: bool = False, middlebox: bool = False
) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if middlebox:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, MIDDLEBOX_MSS)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MIDDLEBOX_RCVBUF)
        if ipv6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, MIDDLEBOX_TTL)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, MIDDLEBOX_TTL)
    if ipv6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if transparent:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_TRANSPARENT, 1)
    elif transparent:
        sock.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
    sock.bind(("::" if ipv6 else "0.0.0.0", port))
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


def main(argv: list[str] | None = None) -> None:
    """Bind, signal readiness by creating the ready file, then accept-and-close forever."""
    parser = argparse.ArgumentParser(prog="liveness.testbed.listener")
    parser.add_argument("--ports", default="", help="comma-separated ports to listen on")
    parser.add_argument("--tarpit", type=int, default=0, help="transparent tarpit port")
    parser.add_argument("--middlebox", type=int, default=0, help="transparent middlebox port")
    parser.add_argument("--ipv6", action="store_true", help="listen on IPv6 as well")
    parser.add_argument("--ready", required=True, help="file created once every socket listens")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    selector = selectors.DefaultSelector()
    ports = [int(p) for p in args.ports.split(",") if p]
    for ipv6 in (False, True) if args.ipv6 else (False,):
        for port in ports:
            selector.register(_listen(port, False, ipv6), selectors.EVENT_READ)
        if args.tarpit:
            selector.register(_listen(args.tarpit, True, ipv6), selectors.EVENT_READ)
        if args.middlebox:
            selector.register(_listen(args.middlebox, True, ipv6, True), selectors.EVENT_READ)
    Path(args.ready).touch()
    while True:
        for key, _ in selector.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                conn, _ = sock.accept()
                conn.close()
            except OSError:
                pass


if __name__ == "__main__":
    main()
