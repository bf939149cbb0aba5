"""Record real replies of the Linux stack to the engine's probes (run as root; makes the pcap).

Three network namespaces (scanner - router - target) inside 198.18.0.0/15; the target runs
TCP listeners on 22 and 80 and dnsmasq and chronyd bound to 198.18.1.2, the router rejects
TCP 7547 with ICMP admin-prohibited and has no route to 198.18.2.0/24. The scanner sends the
default probe set (attempts 0 and 1), plus TTL-1 probes, from an AF_PACKET socket, and tcpdump
records everything on the scanner's interface. Everything is removed on exit.

    sudo .venv/bin/python tests/data/engine/make_capture.py tests/data/engine/replies.pcap
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "src"))

from liveness.probes import DEFAULT_PROBES, parse_probes
from liveness.probes.context import ScanContext

SEED = 2026
SCANNER, ROUTER_S, ROUTER_T, TARGET, TARGET2 = (
    "198.18.0.1",
    "198.18.0.254",
    "198.18.1.254",
    "198.18.1.2",
    "198.18.1.5",
)
TARGETS = [TARGET, TARGET2, "198.18.1.3", "198.18.2.5"]
TAG = f"lveng{os.getpid() % 10000}"
NS = {"s": f"{TAG}s", "r": f"{TAG}r", "t": f"{TAG}t"}


def sh(*args: str, ns: str | None = None, check: bool = True) -> str:
    command = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    return subprocess.run(command, check=check, capture_output=True, text=True).stdout


def ip_to_int(text: str) -> int:
    return int.from_bytes(socket.inet_aton(text), "big")


def build_topology() -> None:
    for ns in NS.values():
        sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", "s0", "netns", NS["s"], "type", "veth", "peer", "r0", "netns", NS["r"])
    sh("ip", "link", "add", "t0", "netns", NS["t"], "type", "veth", "peer", "r1", "netns", NS["r"])
    for ns, dev, addr in [
        (NS["s"], "s0", f"{SCANNER}/24"),
        (NS["r"], "r0", f"{ROUTER_S}/24"),
        (NS["r"], "r1", f"{ROUTER_T}/24"),
        (NS["t"], "t0", f"{TARGET}/24"),
        (NS["t"], "t0", f"{TARGET2}/24"),
    ]:
        sh("ip", "addr", "add", addr, "dev", dev, ns=ns)
    for ns, devs in [
        (NS["s"], ["lo", "s0"]),
        (NS["r"], ["lo", "r0", "r1"]),
        (NS["t"], ["lo", "t0"]),
    ]:
        for dev in devs:
            sh("ip", "link", "set", dev, "up", ns=ns)
    sh("ip", "route", "add", "default", "via", ROUTER_S, ns=NS["s"])
    sh("ip", "route", "add", "default", "via", ROUTER_T, ns=NS["t"])
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=NS["r"])
    for ns in NS.values():
        sh("sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", ns=ns)
    rules = (
        "table ip lv {\n chain filt {\n  type filter hook forward priority 0;\n"
        "  tcp dport 7547 reject with icmp type admin-prohibited\n }\n}\n"
    )
    command = ["ip", "netns", "exec", NS["r"], "nft", "-f", "-"]
    subprocess.run(command, input=rules, text=True, check=True)


def start_services(tmp: Path) -> list[subprocess.Popen[bytes]]:
    listener = (
        "import socket,time\n"
        "socks=[]\n"
        "for p in (22,80):\n"
        " s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        f" s.bind(('{TARGET}',p)); s.listen(128); socks.append(s)\n"
        "time.sleep(60)\n"
    )
    chrony_conf = tmp / "chrony.conf"
    chrony_conf.write_text(
        f"bindaddress {TARGET}\nallow all\nlocal stratum 8\ncmdport 0\n"
        f"pidfile {tmp}/chronyd.pid\ndriftfile {tmp}/drift\n"
    )
    procs = [
        subprocess.Popen(["ip", "netns", "exec", NS["t"], sys.executable, "-c", listener]),
        subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                NS["t"],
                "dnsmasq",
                "-k",
                "--no-resolv",
                "--no-hosts",
                f"--listen-address={TARGET}",
                "--bind-interfaces",
                "--address=/liveness.test/198.18.9.9",
                f"--pid-file={tmp}/dnsmasq.pid",
                "--user=root",
            ]
        ),
        subprocess.Popen(
            ["ip", "netns", "exec", NS["t"], "chronyd", "-f", str(chrony_conf), "-x", "-d"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    time.sleep(1.5)
    return procs


def mac_of(ns: str, dev: str) -> bytes:
    text = sh("cat", f"/sys/class/net/{dev}/address", ns=ns).strip()
    return bytes.fromhex(text.replace(":", ""))


def frames_to_send() -> tuple[list[bytes], dict[str, object]]:
    probes = parse_probes(DEFAULT_PROBES)
    fields = {
        "src_ip": ip_to_int(SCANNER),
        "src_mac": mac_of(NS["s"], "s0"),
        "gw_mac": mac_of(NS["r"], "r0"),
    }
    ctx = ScanContext.from_seed(SEED, **fields)
    ttl1 = ScanContext.from_seed(SEED, ttl=1, **fields)
    targets = np.array([ip_to_int(t) for t in TARGETS], dtype=np.uint32)
    out: list[bytes] = []
    for attempt in (0, 1):
        for probe in probes:
            out.extend(row.tobytes() for row in probe.build(ctx, targets, attempt))
    for probe in probes[:2]:  # icmp_echo, tcp_syn:22 with TTL 1: time exceeded from the router
        out.extend(row.tobytes() for row in probe.build(ttl1, targets[:1], 1))
    meta = {
        "seed": SEED,
        "source_ip": SCANNER,
        "probes": DEFAULT_PROBES,
        "targets": TARGETS,
        "routers": [ROUTER_S, ROUTER_T],
        "max_attempts": 2,
    }
    return out, meta


def main() -> None:
    output = Path(sys.argv[1] if len(sys.argv) > 1 else "replies.pcap").resolve()
    tmp = Path(tempfile.mkdtemp(prefix="lveng"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        build_topology()
        procs = start_services(tmp)
        raw = tmp / "raw.pcap"
        dump = subprocess.Popen(
            ["ip", "netns", "exec", NS["s"], "tcpdump", "-i", "s0", "-U", "-w", str(raw), "ip"],
            stderr=subprocess.DEVNULL,
        )
        procs.append(dump)
        time.sleep(1.0)
        frames, meta = frames_to_send()
        sender = (
            "import socket,sys,json\n"
            "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind(('s0',0))\n"
            "for h in json.load(sys.stdin): s.send(bytes.fromhex(h))\n"
        )
        subprocess.run(
            ["ip", "netns", "exec", NS["s"], sys.executable, "-c", sender],
            input=json.dumps([f.hex() for f in frames]),
            text=True,
            check=True,
        )
        time.sleep(5.0)  # host unreachable needs the router's ARP to time out (~3 s)
        dump.terminate()
        dump.wait(timeout=10)
        # keep only the frames addressed to the scanner, plus a few of its own for realism
        subprocess.run(
            ["tcpdump", "-r", str(raw), "-w", str(output), "ip"], check=True, capture_output=True
        )
        output.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
        print(f"wrote {output} ({len(frames)} probes sent)")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        for ns in NS.values():
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
