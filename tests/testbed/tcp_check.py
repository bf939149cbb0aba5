"""An independent TCP application-layer checker for the testbed tests, run inside a VP namespace.

Run with ``ip netns exec VPNS python tcp_check.py`` and a JSON request on stdin: ``iface``,
``src``, ``src6``, ``gateway_mac``, ``conns``: ``[[target, port, send], ...]`` (``send``:
``http``, a GET for ``/`` with the target as Host; ``tls``, a ClientHello made by Python's
``ssl``; ``none``, wait for the server to speak) and ``raw``: the same, done with scapy as a
stateless scanner does it (SYN; on the SYN-ACK one ACK carrying the payload; listen; RST),
with the VP kernel's own RSTs dropped meanwhile so the server's half-open connection lives.

Prints one JSON object: ``conns``: ``[target, port, status, data (hex), bytes_acked]`` with
status ``refused``, ``timeout`` (connect), or after connecting ``data``, ``eof``, ``reset``,
``silent`` (nothing within the wait), and ``bytes_acked`` the kernel's ``tcpi_bytes_acked``
(1 when only the SYN was acknowledged); ``raw``: ``[target, port, synack, later]`` with
``synack`` null or ``[window, [[option, value], ...], ttl]`` and ``later`` every packet the
target sent after the ACK: ``[flags, ack - our ISN, payload length, payload prefix (hex)]``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scapy.config import conf
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.sendrecv import AsyncSniffer, sendp

ISN = 1000
RAW_SPORTS = (61000, 61999)
TCP_INFO_BYTES_ACKED = 120  # offset of tcpi_bytes_acked in struct tcp_info


def client_hello(host: str) -> bytes:
    """The first flight of a real TLS client (Python's ssl), as bytes."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=host)
    with contextlib.suppress(ssl.SSLWantReadError):  # it waits for the ServerHello
        tls.do_handshake()
    return outgoing.read()


def payload(send: str, target: str) -> bytes:
    host = f"[{target}]" if ":" in target else target
    if send == "http":
        return f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    if send == "tls":
        return client_hello("liveness.test")
    return b""


def connect(target: str, port: int, send: str) -> list[Any]:
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(2.0)
    try:
        sock.connect((target, port))
    except ConnectionRefusedError:
        sock.close()
        return [target, port, "refused", "", 0]
    except TimeoutError:
        sock.close()
        return [target, port, "timeout", "", 0]
    data = payload(send, target)
    status = "silent"
    got = b""
    try:
        if data:
            sock.sendall(data)
        sock.settimeout(1.5)
        chunk = sock.recv(4096)
        if chunk:
            got, status = chunk, "data"
            sock.settimeout(0.2)
            got += sock.recv(4096)
        else:
            status = "eof"
    except TimeoutError:
        pass
    except ConnectionResetError:
        status = "reset" if not got else status
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    (acked,) = struct.unpack_from("Q", info, TCP_INFO_BYTES_ACKED)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    sock.close()
    return [target, port, status, got.hex(), acked]


def _ip(req: dict[str, Any], target: str) -> Any:
    return IPv6(src=req["src6"], dst=target) if ":" in target else IP(src=req["src"], dst=target)


def raw(req: dict[str, Any]) -> list[list[Any]]:
    flows = {RAW_SPORTS[0] + i: (t, int(p), s) for i, (t, p, s) in enumerate(req["raw"])}
    if not flows:
        return []
    targets = {t for t, _, _ in flows.values()}
    lo, hi = RAW_SPORTS
    rules = (
        "table inet tcp_check {\n\tchain out {\n\t\ttype filter hook output priority 0;\n"
        f"\t\ttcp sport {lo}-{hi} tcp flags rst drop\n\t}}\n}}\n"
    )
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)
    try:
        seen: list[Any] = []  # as they come (the sniffer's results exist only once stopped)
        sniffer = AsyncSniffer(
            iface=req["iface"],
            filter="tcp",
            lfilter=lambda p: TCP in p and p[TCP].dport in flows and _src(p) in targets,
            prn=seen.append,
            store=False,
        )
        sniffer.start()
        time.sleep(0.3)
        options = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("WScale", 7)]
        for sport, (target, port, _) in flows.items():
            syn = TCP(sport=sport, dport=port, flags="S", seq=ISN, options=options)
            sendp(Ether(dst=req["gateway_mac"]) / _ip(req, target) / syn, iface=req["iface"])
        synacks: dict[int, Any] = {}
        deadline = time.monotonic() + 3.0
        while len(synacks) < len(flows) and time.monotonic() < deadline:
            time.sleep(0.1)
            for pkt in list(seen):
                if int(pkt[TCP].flags) & 0x12 == 0x12 and pkt[TCP].dport not in synacks:
                    synacks[pkt[TCP].dport] = pkt
        acked_at = len(seen)
        for sport, synack in synacks.items():
            target, port, send = flows[sport]
            data = payload(send, target)
            ack = TCP(sport=sport, dport=port, flags="PA", seq=ISN + 1, ack=synack[TCP].seq + 1)
            sendp(Ether(dst=req["gateway_mac"]) / _ip(req, target) / ack / data, iface=req["iface"])
        time.sleep(2.0)
        sniffer.stop()
        for sport in synacks:
            target, port, send = flows[sport]
            end = ISN + 1 + len(payload(send, target))
            rst = TCP(sport=sport, dport=port, flags="R", seq=end)
            sendp(Ether(dst=req["gateway_mac"]) / _ip(req, target) / rst, iface=req["iface"])
    finally:
        subprocess.run(["nft", "delete", "table", "inet", "tcp_check"], check=False)
    out = []
    for sport, (target, port, _) in flows.items():
        synack = synacks.get(sport)
        head = None
        if synack is not None:
            ttl = synack[IPv6].hlim if IPv6 in synack else synack[IP].ttl
            opts = [[name, repr(value)] for name, value in synack[TCP].options]
            head = [int(synack[TCP].window), opts, int(ttl)]
        later = [
            [
                int(p[TCP].flags),
                int(p[TCP].ack) - ISN,
                len(bytes(p[TCP].payload)),
                bytes(p[TCP].payload)[:16].hex(),
            ]
            for p in seen[acked_at:]
            if p[TCP].dport == sport
        ]
        out.append([target, port, head, later])
    return out


def _src(pkt: Any) -> str:
    return str(pkt[IPv6].src) if IPv6 in pkt else str(pkt[IP].src)


def main() -> None:
    req = json.load(sys.stdin)
    conf.verb = 0
    with ThreadPoolExecutor(64) as pool:
        conns = list(pool.map(lambda c: connect(c[0], int(c[1]), c[2]), req.get("conns", [])))
    json.dump({"conns": conns, "raw": raw(req)}, sys.stdout)


if __name__ == "__main__":
    main()
