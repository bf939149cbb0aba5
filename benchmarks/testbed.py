"""Benchmark the testbed: bring ``paper`` up and down, and find the probe rate it sustains.

Prints one JSON object: ``up_s``, ``down_s`` (the full /15 ``paper`` spec), ``max_pps_999`` (the
highest ICMP echo rate at which at least 99.9% of probes are answered) and the rates tried.

The sender is self-contained: frames are built once with numpy (a template replicated, the
destination and IP checksum patched per row), copied a batch at a time into a memory-mapped
AF_PACKET TX ring (TPACKET_V2, qdisc bypass) and flushed with one ``send()`` per 1 ms batch,
from inside the VP namespace. Replies are counted from the VP interface's receive counter,
which only echo replies reach (IPv6 is off in the testbed). Run as root:

    .venv/bin/python benchmarks/testbed.py --rates 50000,100000,200000 --seconds 1
"""

from __future__ import annotations

import argparse
import json
import mmap
import socket
import struct
import sys
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

SOL_PACKET = 263
PACKET_VERSION = 10
PACKET_TX_RING = 13
PACKET_QDISC_BYPASS = 20
TPACKET_V2 = 1
TP_STATUS_SEND_REQUEST = 1
TX_DATA_OFFSET = 32  # TPACKET_ALIGN(sizeof(tpacket2_hdr)): where a TX slot's frame starts
SLOT = 128
SLOTS = 1 << 15


class TxRing:
    """A minimal PACKET_TX_RING: copy a batch of frames into slots, flush with one send()."""

    def __init__(self, ifname: str) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self.sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        self.sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        per_block = 4096 // SLOT
        req = struct.pack("IIII", 4096, SLOTS // per_block, SLOT, SLOTS)
        self.sock.setsockopt(SOL_PACKET, PACKET_TX_RING, req)
        self.sock.bind((ifname, 0))
        self.ring = mmap.mmap(self.sock.fileno(), SLOT * SLOTS)
        self.view = np.frombuffer(self.ring, dtype=np.uint8).reshape(SLOTS, SLOT)
        self.status = self.view[:, 0:4].view(np.uint32)[:, 0]
        self.length = self.view[:, 4:8].view(np.uint32)[:, 0]
        self.head = 0

    def send(self, frames: NDArray[np.uint8]) -> None:
        """Queue every row of ``frames`` (fewer than SLOTS) and hand them to the kernel."""
        slots = (self.head + np.arange(len(frames))) % SLOTS
        self.view[slots, TX_DATA_OFFSET : TX_DATA_OFFSET + frames.shape[1]] = frames
        self.length[slots] = frames.shape[1]
        self.status[slots] = TP_STATUS_SEND_REQUEST
        self.head = int((self.head + len(frames)) % SLOTS)
        self.sock.send(b"")


def echo_frames(src: str, gateway_mac: str, targets: NDArray[np.uint32]) -> NDArray[np.uint8]:
    """One Ethernet/IPv4/ICMP echo frame per target, as rows of a uint8 array."""
    eth = bytes.fromhex(gateway_mac.replace(":", "")) + b"\x02\x00\x00\x00\x00\x99" + b"\x08\x00"
    icmp = bytearray(struct.pack("!BBHHH", 8, 0, 0, 0x4C56, 1) + b"liveness")
    icmp_sum = _checksum(bytes(icmp))
    icmp[2:4] = struct.pack("!H", icmp_sum)
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0, 64, 1, 0, socket.inet_aton(src), b"\0\0\0\0"
    )
    template = np.frombuffer(eth + ip + bytes(icmp), dtype=np.uint8)
    frames = np.tile(template, (len(targets), 1))
    frames[:, 30:34] = targets.astype(">u4").view(np.uint8).reshape(-1, 4)
    words = frames[:, 14:34].astype(np.uint32)
    total = (words[:, 0::2] << 8 | words[:, 1::2]).sum(axis=1)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    csum = ~total & 0xFFFF
    frames[:, 24] = csum >> 8
    frames[:, 25] = csum & 0xFF
    return frames


def _checksum(data: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _rx_packets(ifname: str) -> int:
    return int(Path(f"/sys/class/net/{ifname}/statistics/rx_packets").read_text())


def inner(args: argparse.Namespace) -> None:
    """Inside the VP namespace: send at each rate, count replies, print JSON lines."""
    request = json.loads(sys.stdin.read())
    targets = np.array(request["targets"], dtype=np.uint32)
    frames = echo_frames(request["src"], request["gateway_mac"], targets)
    ring = TxRing(request["ifname"])
    results = []
    for rate in request["rates"]:
        total = int(rate * request["seconds"])
        batch = max(1, rate // 1000)
        n = len(frames)
        before = _rx_packets(request["ifname"])
        start = time.perf_counter()
        sent = 0
        while sent < total:
            count = min(batch, total - sent)
            rows = np.arange(sent, sent + count) % n
            ring.send(frames[rows])
            sent += count
            ahead = start + sent / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        elapsed = time.perf_counter() - start
        time.sleep(0.5)
        replies = _rx_packets(request["ifname"]) - before
        results.append(
            {
                "target_pps": rate,
                "sent_pps": round(sent / elapsed),
                "sent": sent,
                "replies": replies,
                "reply_ratio": round(replies / sent, 5),
            }
        )
        time.sleep(0.2)
    print(json.dumps(results))


def outer(args: argparse.Namespace) -> dict[str, object]:
    """Bring the spec up, run the inner sender inside the VP, bring it down."""
    from liveness.testbed import Testbed, load_spec

    spec = load_spec(args.spec)
    started = time.perf_counter()
    testbed = Testbed.up(spec)
    up_s = time.perf_counter() - started
    try:
        truth, _ = testbed.truth()
        vp = next(iter(testbed.vps.values()))
        rows = truth.filter(truth["vp"].to_numpy(zero_copy_only=False) == vp.name)
        mask = (
            (rows["probe"].to_numpy(zero_copy_only=False) == "icmp_echo")
            & (rows["reply"].to_numpy(zero_copy_only=False) == "echo_reply")
            & (rows["loss"].to_numpy() == 0)
        )
        if "af" in rows.column_names:  # the IPv4 hosts (the prober speaks IPv4)
            mask &= rows["af"].to_numpy() == 4
        targets = rows["target"].to_numpy()[mask]
        request = {
            "targets": targets.tolist(),
            "src": vp.src_ip,
            "gateway_mac": vp.gateway_mac,
            "ifname": vp.ifname,
            "rates": [int(r) for r in args.rates.split(",")],
            "seconds": args.seconds,
        }
        done = testbed.run(
            vp,
            [sys.executable, __file__, "--inner"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"sender failed: {done.stderr.strip()}")
        rates = json.loads(done.stdout)
    finally:
        started = time.perf_counter()
        testbed.down()
        down_s = time.perf_counter() - started
    good = [r["sent_pps"] for r in rates if r["reply_ratio"] >= 0.999]
    return {
        "spec": args.spec,
        "up_s": round(up_s, 3),
        "down_s": round(down_s, 3),
        "max_pps_999": max(good) if good else 0,
        # every rate answered: the ceiling is then how fast the kernel took the frames (a veth
        # runs much of the round trip on the sending CPU), not where the testbed drops replies
        "all_answered": all(r["reply_ratio"] >= 0.999 for r in rates),
        "targets": len(targets),
        "rates": rates,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="paper", help="spec to bring up (default paper)")
    parser.add_argument(
        "--rates",
        default="50000,100000,150000,200000,250000,300000",
        help="comma-separated probe rates to try (packets per second)",
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per rate")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args)
        return
    print(json.dumps(outer(args)))


if __name__ == "__main__":
    main()
