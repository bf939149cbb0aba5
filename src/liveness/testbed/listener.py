"""The TCP listeners of the Internet namespace: one socket per open port, on every address.

Run as ``python -m liveness.testbed.listener --ports 22,80 --tarpit 4 --ready FILE`` inside the
namespace. The kernel answers SYN-ACK for any local address because the sockets are bound to
0.0.0.0 and the whole range is local; nftables decides per address which ports stay open. The
tarpit socket is transparent (IP_TRANSPARENT) so nftables ``tproxy`` can hand it connections to
any port. Accepted connections are closed at once, so queues never fill.
"""

from __future__ import annotations

import argparse
import selectors
import signal
import socket
import sys
from pathlib import Path

__all__ = ["main"]

IP_TRANSPARENT = 19
BACKLOG = 65535


def _listen(port: int, transparent: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if transparent:
        sock.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


def main(argv: list[str] | None = None) -> None:
    """Bind, signal readiness by creating the ready file, then accept-and-close forever."""
    parser = argparse.ArgumentParser(prog="liveness.testbed.listener")
    parser.add_argument("--ports", default="", help="comma-separated ports to listen on")
    parser.add_argument("--tarpit", type=int, default=0, help="transparent tarpit port")
    parser.add_argument("--ready", required=True, help="file created once every socket listens")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    selector = selectors.DefaultSelector()
    ports = [int(p) for p in args.ports.split(",") if p]
    for port in ports:
        selector.register(_listen(port, False), selectors.EVENT_READ)
    if args.tarpit:
        selector.register(_listen(args.tarpit, True), selectors.EVENT_READ)
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
