"""The AF_PACKET rings on a real veth pair between two namespaces this test creates."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from netns_helpers import VETH_SCANNER as SCANNER
from netns_helpers import run_ip as _ip

pytestmark = pytest.mark.root


def _in_namespace(ns: str, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_batch_sent_through_the_tx_ring_comes_back_through_the_rx_ring(
    veth_pair: tuple[str, str],
) -> None:
    a, _ = veth_pair
    done = _in_namespace(
        a,
        """
        import ipaddress, time
        import numpy as np
        from liveness.net.afpacket import RingReceiver, RingSender, interface_mac
        from liveness.probes import parse_probes
        from liveness.probes.classify import ReplyClassifier
        from liveness.probes.context import ScanContext
        src = int(ipaddress.IPv4Address("198.18.255.1"))
        import subprocess, json
        neigh = json.loads(subprocess.run(["ip", "-j", "neigh"], capture_output=True,
                                          text=True).stdout)[0]["lladdr"]
        ctx = ScanContext.from_seed(5, src_ip=src, src_mac=interface_mac("vA"),
                                    gw_mac=bytes.fromhex(neigh.replace(":", "")))
        probe = parse_probes("icmp_echo")[0]
        targets = (int(ipaddress.IPv4Address("198.18.0.0")) + 1 + np.arange(5000)).astype(np.uint32)
        rx = RingReceiver("vA", src)
        tx = RingSender("vA")
        tx.send(probe.build(ctx, targets, 0))
        classifier = ReplyClassifier(ctx, [probe])
        seen = set()
        deadline = time.time() + 5
        while time.time() < deadline and len(seen) < len(targets):
            batch = rx.poll(100)
            if len(batch.lengths):
                rows = classifier.classify(batch.frames, batch.lengths, batch.ts_ns)
                seen.update(rows.column("target").to_pylist())
        packets, drops = rx.stats()
        print(len(seen), set(seen) == set(targets.tolist()), drops, tx.frames_sent)
        """,
    )
    assert done.returncode == 0, done.stderr
    count, exact, drops, sent = done.stdout.split()
    assert (count, exact, drops, sent) == ("5000", "True", "0", "5000")


def test_the_receiver_stops_when_its_interface_goes_away(veth_pair: tuple[str, str]) -> None:
    a, _ = veth_pair
    done = _in_namespace(
        a,
        """
        import subprocess, time
        from liveness.errors import RunError
        from liveness.net.afpacket import RingReceiver
        rx = RingReceiver("vA", 1)
        subprocess.run(["ip", "link", "del", "vA"], check=True)
        start = time.monotonic()
        try:
            for _ in range(1000):
                rx.poll(50)
            print("no error")
        except RunError as exc:
            print("stopped", round(time.monotonic() - start, 1), exc)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("stopped"), done.stdout
    assert float(done.stdout.split()[1]) < 2.0


def _peer_socket(ethertype: int, timeout_s: float) -> str:
    """The start of a script run on the peer (vB): a packet socket for ``ethertype`` with a
    large buffer, then "ready" on stdout."""
    return rf"""
import socket, sys, time
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons({ethertype:#x}))
sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
sock.bind(("vB", {ethertype:#x}))
sock.settimeout({timeout_s})
print("ready", flush=True)
"""


def _start_on_peer(ns: str, script: str, frames: int) -> subprocess.Popen[str]:
    """Run a :func:`_peer_socket` script in ``ns`` (expecting ``frames``); return once its
    socket is open."""
    peer = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-c", script, str(frames)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert peer.stdout is not None
    if peer.stdout.readline().strip() != "ready":
        peer.kill()
        raise AssertionError("the peer's packet socket did not open")
    return peer


COUNTER = (
    _peer_socket(0x0800, 0.5)
    + r"""
seen, total, deadline = set(), 0, time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        frame = sock.recv(2048)
    except TimeoutError:
        if total >= int(sys.argv[1]):
            break
        continue
    except OSError:  # ENETDOWN while vB is down
        time.sleep(0.01)
        continue
    if frame[23] == 1 and frame[34] == 8:  # ICMP echo request
        total += 1
        seen.add(frame[30:34])
print(total, len(seen), flush=True)
"""
)


def test_a_stalled_interface_delays_the_sender_but_every_frame_leaves_exactly_once(
    veth_pair: tuple[str, str],
) -> None:
    """With the peer down, the veth has no carrier and every flush fails with ENOBUFS; once the
    peer comes back, the retried flushes send each frame exactly once (counted on the peer)."""
    a, b = veth_pair
    _ip("-n", b, "link", "set", "vB", "down")
    counter = _start_on_peer(b, COUNTER, 8000)
    try:
        done = _in_namespace(
            a,
            f"""
            import ipaddress, subprocess, threading, time
            import numpy as np
            from liveness.net.afpacket import RingSender, interface_mac
            from liveness.probes import parse_probes
            from liveness.probes.context import ScanContext
            ctx = ScanContext.from_seed(5, src_ip=int(ipaddress.IPv4Address("{SCANNER}")),
                                        src_mac=interface_mac("vA"), gw_mac=b"\\x02" * 6)
            probe = parse_probes("icmp_echo")[0]
            first = int(ipaddress.IPv4Address("198.18.0.0")) + 1
            targets = (first + np.arange(8000)).astype(np.uint32)
            tx = RingSender("vA")
            def wake() -> None:
                time.sleep(0.5)
                subprocess.run(["ip", "-n", "{b}", "link", "set", "vB", "up"], check=True)
            threading.Thread(target=wake).start()
            started = time.monotonic()
            for first in range(0, targets.size, 1000):
                tx.send(probe.build(ctx, targets[first:first + 1000], 0))
            print(tx.send_failures, round(time.monotonic() - started, 2))
            """,
        )
        assert done.returncode == 0, done.stderr
        received, _ = counter.communicate(timeout=30)
    finally:
        counter.kill()
    failures, waited = done.stdout.split()
    assert int(failures) > 0 and float(waited) >= 0.4
    assert received.split() == ["8000", "8000"]


CAPTURE = (
    _peer_socket(0x88B5, 1.0)
    + r"""
frames = []
while len(frames) < int(sys.argv[1]):
    try:
        frames.append(sock.recv(4096).hex())
    except TimeoutError:
        break
print("\n".join(frames), flush=True)
"""
)


def test_frames_of_every_length_arrive_byte_for_byte(veth_pair: tuple[str, str]) -> None:
    """The sender puts a virtio-net header before each frame (so the kernel copies the frame
    instead of lending it the ring's pages); the peer must still receive exactly the frames
    asked for, whatever their length up to the slot's room. The frames are not IP (an
    experimental EtherType), so nothing routes them."""
    a, b = veth_pair
    count = 3000
    capture = _start_on_peer(b, CAPTURE, count)
    try:
        done = _in_namespace(
            a,
            f"""
            import numpy as np
            from liveness.net.afpacket import VNET_HDR_SIZE, RingSender, interface_mac
            tx = RingSender("vA", slots=1024)
            rng = np.random.default_rng(3)
            lengths = rng.integers(60, tx.max_frame + 1, {count}).astype(np.uint32)
            lengths[:2] = (60, tx.max_frame)
            frames = rng.integers(0, 256, ({count}, tx.max_frame), dtype=np.uint8)
            frames[:, 0:6] = (2, 0, 0, 0, 0, 1)  # nobody's: the peer's kernel drops them
            frames[:, 6:12] = np.frombuffer(interface_mac("vA"), np.uint8)
            frames[:, 12:14] = (0x88, 0xB5)
            frames[:, 14:18] = np.arange({count}, dtype=">u4").view(np.uint8).reshape(-1, 4)
            tx.send(frames, lengths)
            print(tx._header == VNET_HDR_SIZE, tx.max_frame)
            for row, length in zip(frames, lengths):
                print(row[:length].tobytes().hex())
            """,
        )
        assert done.returncode == 0, done.stderr
        received, _ = capture.communicate(timeout=30)
    finally:
        capture.kill()
    header_used, max_frame, *sent = done.stdout.split()
    assert header_used == "True" and int(max_frame) >= 224
    got = received.split()
    assert len(got) == count
    assert sorted(got) == sorted(sent)
