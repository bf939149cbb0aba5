"""liveness scan vs ZMap and masscan, on one testbed and into a sink; prints one JSON object.

Testbed: each tool scans a /15 of Linux-like hosts (echo replies, RST from closed port 80) at
unlimited rate from the same VP namespace, with ICMP echo and with TCP SYN to port 80; liveness
also runs its 9-probe default set. The send rate is measured outside the tools: a sampler in the
VP namespace reads the interface's ``tx_packets`` every 0.5 ms; the rate is the probes over the
span from its first rise to its final value. Replies come from each tool's own output (first
replies only); CPU is user+system time per million probes. Each run has a ``loss_accounting``:
probes sent, replies expected and captured, the packets at each hop, and where the missing
replies went (``lost_at``), from the deltas of ``/proc/net/snmp`` and ``/proc/net/netstat`` of
every testbed namespace, each interface's counters (a full backlog shows as ``rx_dropped`` on the
receiving veth), ``/proc/net/softnet_stat`` (global) and the tools' capture drops (liveness
``kernel_drops``, ZMap ``pcap_drop``).

Sink (``--sink``): the same senders into a veth whose peer namespace has no address (frames go
to a MAC nobody has and the kernel drops them), 9 probes per target (liveness: its default set;
ZMap and masscan: TCP SYN to 9 ports), so the figure is the sender's own ceiling.

Peers: ``--zmap PATH``, else ZMap 4.3.4 from ``../shared/peers/build-zmap.sh`` (beside the
repository), else Debian's ``/usr/sbin/zmap``; masscan from ``PATH``. They run inside the VP
namespace with 198.18.0.0/15 targets only and explicit lists (ZMap ``-C`` empty, ``-b``, ``-w``).

Usage (root): ``python benchmarks/scan_vs_zmap.py [--repeat 3] [--sink] [--zmap PATH]
[--no-testbed] [--no-masscan] [--prefix 198.18.0.0/15]``
"""

from __future__ import annotations

import argparse
import csv
import ipaddress
import json
import os
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from liveness.output import read_replies
from liveness.probes import DEFAULT_PROBES
from liveness.safety import BENCHMARK_NET
from liveness.testbed import Testbed, load_spec
from liveness.testbed.testbed import LIVENESS_CLI

REPO = Path(__file__).resolve().parents[1]
BUILD_ZMAP = REPO.parent / "shared" / "peers" / "build-zmap.sh"
DEBIAN_ZMAP = "/usr/sbin/zmap"
DEFAULT_SET = DEFAULT_PROBES.split(",")
SINK_PORTS = "22,23,80,443,7547,8080,53,123,1"  # 9 TCP SYN per target, as the 9-probe set
SINK_NET = "198.18.0.0/15"
SINK_SRC = "198.19.255.254"
SINK_GW = "02:4c:56:5e:00:fe"  # nobody's MAC: the sink's kernel drops the frames at once
SINK_MACS = ("02:4c:56:5e:00:01", "02:4c:56:5e:00:02")
RETRIES = 3  # a run that dies of ENOBUFS (until the sender survives it) is run again

SPEC = """
name = "bench"
description = "Every address answers ping and RSTs port 80: a population for rate benchmarks."
seed = 1
population = ["{prefix}"]
infrastructure = "198.19.255.0/24"

[[vp]]
name = "vp1"

[[assign]]
behaviour = "linux_host"
fraction = 1.0
"""

SAMPLER = r"""
import sys, time
path = "/sys/class/net/" + sys.argv[1] + "/statistics/tx_packets"
last = -1
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    with open(path) as f:
        value = int(f.read())
    if value != last:
        print(f"{time.monotonic():.6f} {value}", flush=True)
        last = value
    time.sleep(0.0005)
"""

# Every counter of one namespace: the SNMP and netstat MIBs, then each interface's packets and
# drops (veth drops show as tx_dropped on the sender and rx_dropped on the receiver).
COUNTERS = r"""
cat /proc/net/snmp /proc/net/netstat
for d in /sys/class/net/*; do
  for s in rx_packets tx_packets rx_dropped tx_dropped; do
    echo "if: ${d##*/}.$s $(cat "$d/statistics/$s")"
  done
done
"""
SOFTNET = {"processed": 0, "dropped": 1, "time_squeeze": 2, "received_rps": 9, "flow_limit": 10}
POKE = r"""
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
dst, src = (bytes.fromhex(mac.replace(":", "")) for mac in sys.argv[2:4])
s.send(dst + src + bytes.fromhex("88b5") + bytes(46))  # local experimental EtherType: no reply
"""
DROPS = re.compile(
    r"drop|Discard|Err|Fail|Overflow|Prune|Collapse|squeeze|NoRoute|RateLimit|Backlog|Rsts"
)


# -- counters --------------------------------------------------------------------------------
def _netns_counters(label: str, netns: str) -> dict[str, int]:
    done = subprocess.run(
        ["ip", "netns", "exec", netns, "sh", "-c", COUNTERS], capture_output=True, text=True
    )
    out: dict[str, int] = {}
    lines = done.stdout.splitlines()
    k = 0
    while k < len(lines):
        if lines[k].startswith("if: "):
            name, value = lines[k][4:].split()
            out[f"{label}:{name}"] = int(value)
            k += 1
            continue
        head, values = lines[k].split(), lines[k + 1].split()
        for name, value in zip(head[1:], values[1:], strict=True):
            out[f"{label}:{head[0].rstrip(':')}.{name}"] = int(value)
        k += 2
    return out


def snapshot(namespaces: dict[str, str]) -> dict[str, int]:
    """Every counter of these namespaces (label -> netns) and the global softnet_stat."""
    out: dict[str, int] = {}
    for label, netns in namespaces.items():
        out.update(_netns_counters(label, netns))
    for line in Path("/proc/net/softnet_stat").read_text().splitlines():
        fields = [int(x, 16) for x in line.split()]
        for name, column in SOFTNET.items():
            key = f"softnet.{name}"
            out[key] = out.get(key, 0) + fields[column]
    return out


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def loss_accounting(
    moved: dict[str, int],
    site: Site,
    sent: int,
    expected: int,
    captured: int,
    capture_drops: dict[str, int],
    repeats: int,
) -> dict[str, Any]:
    """Where the replies that the tool did not record went, from the counters' deltas
    (``repeats``: frames the tool recorded as repeated replies, e.g. SYN-ACKs sent again)."""
    path = {label: moved.get(key, 0) for label, key in site.hops}
    vp_tx, vp_rx = moved.get(site.hops[0][1], 0), moved.get(site.hops[-1][1], 0)
    lost_at = {label: moved.get(key, 0) for label, key in site.places}
    lost_at["in_the_tool_after_the_interface"] = vp_rx - captured - repeats
    return {
        "probes_sent": sent,
        "replies_expected": expected,
        "replies_captured": captured,
        "replies_missing": expected - captured,
        "lost_at": lost_at,
        # Forward-path drops may hit the extra frames instead of probes (then this is < 0).
        "unexplained": expected - captured - sum(lost_at.values()),
        "tool_capture_drops": capture_drops,  # part of in_the_tool_after_the_interface
        "repeat_replies": repeats,
        # Frames besides the probes (the VP kernel's RSTs to SYN-ACKs, masscan's RSTs to RSTs).
        "extra_frames_sent": vp_tx - sent,
        "path": path,
        "counters": {
            k: v
            for k, v in sorted(moved.items())
            if DROPS.search(k) or k.endswith(("Icmp.OutMsgs", "Ip.OutRequests"))
        },
    }


# -- running one tool ------------------------------------------------------------------------
def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _send_rate(samples: str, probes: int) -> float:
    """Probes per second over the span from the counter's first rise to its final value.

    Frames a tool or the VP's kernel sends besides the probes (RSTs to SYN-ACKs or to RSTs)
    leave within a round trip of their probe, so they are counted until the end of the span and
    do not shorten it.
    """
    points = [(float(t), int(v)) for t, v in (line.split() for line in samples.splitlines())]
    if len(points) < 3:
        return 0.0
    base, final = points[0][1], points[-1][1]
    start = next(t for t, v in points if v > base)
    end = next(t for t, v in points if v == final)
    return min(probes, final - base) / (end - start) if end > start else 0.0


class Site:
    """Where a tool runs: a namespace and its interface, the namespaces whose counters count,
    the hops of the path (label, counter; from the VP's tx to its rx), the places where replies
    are lost (label, drop counter), and the far end of the link (netns, ifname, our MAC, its
    MAC) from which to poke the interface."""

    def __init__(
        self,
        netns: str,
        ifname: str,
        watch: dict[str, str],
        hops: list[tuple[str, str]],
        places: list[tuple[str, str]],
        far_end: tuple[str, str, str, str],
    ) -> None:
        self.netns, self.ifname, self.watch, self.hops = netns, ifname, watch, hops
        self.places = places
        self.far_end = far_end

    def popen(self, argv: list[str], **kw: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(["ip", "netns", "exec", self.netns, *argv], **kw)

    def poke(self) -> None:
        """One frame into our interface from the far end (masscan's receive thread waits for
        a frame before it exits)."""
        netns, ifname, ours, theirs = self.far_end
        argv = ["ip", "netns", "exec", netns, sys.executable, "-c", POKE, ifname, ours, theirs]
        subprocess.run(argv, check=True)


def _collect(stream: Any, into: list[str]) -> None:
    for line in stream:
        into.append(line)


def _sampled(lines: list[str]) -> int:
    """Packets the sampler has seen leave so far."""
    if len(lines) < 2:
        return 0
    return int(lines[-1].split()[1]) - int(lines[0].split()[1])


def timed(
    site: Site, argv: list[str], probes: int, linger_s: float | None = None, budget_s: float = 300
) -> dict[str, Any]:
    """Run ``argv`` in the site's namespace: send rate, CPU, counter deltas, attempts. With
    ``linger_s``, poke the interface every second once all probes have been out that long."""
    for attempt in range(1, RETRIES + 1):
        sampler = site.popen(
            [sys.executable, "-c", SAMPLER, site.ifname, str(budget_s)],
            stdout=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []
        reader = threading.Thread(target=_collect, args=(sampler.stdout, lines))
        reader.start()
        pokes, poke_cpu, all_out = 0, 0.0, None
        with tempfile.TemporaryFile("w+") as err:
            try:
                time.sleep(0.3)
                before = snapshot(site.watch)
                cpu0 = _children_cpu()
                started = time.monotonic()
                tool = site.popen(argv, stdout=subprocess.DEVNULL, stderr=err)
                try:
                    while tool.poll() is None:
                        now = time.monotonic()
                        if now - started > budget_s:
                            raise SystemExit(f"{argv[0]} did not finish in {budget_s} s")
                        if linger_s is not None and all_out is None and _sampled(lines) >= probes:
                            all_out = now
                        if all_out is not None and now - all_out > linger_s + pokes:
                            cpu1 = _children_cpu()
                            site.poke()
                            poke_cpu += _children_cpu() - cpu1
                            pokes += 1
                        time.sleep(0.02)
                finally:
                    if tool.poll() is None:
                        tool.kill()
                        tool.wait()
                cpu = _children_cpu() - cpu0 - poke_cpu
                after = snapshot(site.watch)
            finally:
                sampler.terminate()
                reader.join()
                sampler.wait()
            err.seek(0)
            stderr = err.read()
        if tool.returncode == 0:
            return {
                "pps": _send_rate("".join(lines), probes),
                "cpu": cpu,
                "moved": delta(before, after),
                "attempts": attempt,
                "pokes": pokes,
            }
        if "No buffer space" not in stderr or attempt == RETRIES:
            raise SystemExit(f"{argv[0]} failed ({tool.returncode}): {stderr[-2000:]}")
        print(f"{Path(argv[0]).name}: ENOBUFS, running again", file=sys.stderr)
    raise AssertionError("unreachable")


def _finish(
    site: Site,
    run: dict[str, Any],
    probes: int,
    expected: int,
    captured: int,
    capture_drops: dict[str, int] | None = None,
    repeats: int = 0,
) -> dict[str, Any]:
    result = {
        "pps": round(run["pps"]),
        "probes_sent": probes,
        "replies_captured": captured,
        "replies_expected": expected,
        "reply_share": round(captured / max(1, expected), 5),
        "cpu_s_per_mprobe": round(run["cpu"] / probes * 1e6, 3),
        "attempts": run["attempts"],
    }
    if run["pokes"]:
        result["pokes"] = run["pokes"]  # frames into the VP's interface, not replies
        run["moved"][site.hops[-1][1]] = run["moved"].get(site.hops[-1][1], 0) - run["pokes"]
    if site.hops:
        result["loss_accounting"] = loss_accounting(
            run["moved"], site, probes, expected, captured, capture_drops or {}, repeats
        )
    return result


# -- the tools -------------------------------------------------------------------------------
def liveness_argv(
    sender: list[str], targets: list[str], work: Path, probe_set: str, cooldown: str
) -> list[str]:
    for stale in work.glob("liveness.parquet*"):
        stale.unlink()
    return [
        *LIVENESS_CLI, "scan", *targets, "-w", str(work / "allow.txt"), *sender,
        "--probes", probe_set, "-r", "0", "--retransmit-delay", "0", "-c", cooldown, "-q",
        "-o", str(work / "liveness.parquet"), "-m", str(work / "meta.json"),
    ]  # fmt: skip


def run_liveness(
    site: Site, work: Path, sender: list[str], targets: list[str], count: int, probes: list[str]
) -> dict[str, Any]:
    argv = liveness_argv(sender, targets, work, ",".join(probes), "2")
    sent = count * len(probes)
    run = timed(site, argv, sent)
    table = pa.Table.from_batches(list(read_replies(str(work / "liveness.parquet"))))
    first = table.filter(pc.invert(table["repeat"]))
    names = pc.cast(first["probe"], pa.string())
    per_probe = {n: first.filter(pc.equal(names, n)).num_rows for n in probes}
    kernel_drops = json.loads((work / "meta.json").read_text()).get("kernel_drops", 0)
    drops = {"rx_ring.kernel_drops": kernel_drops}
    captured, repeats = sum(per_probe.values()), table.num_rows - first.num_rows
    result = _finish(site, run, sent, sent, captured, drops, repeats)
    if len(probes) > 1:
        result["replies_per_probe"] = per_probe
    return result


def zmap_argv(
    zmap: Peer, work: Path, sender: list[str], module: str, ports: str | None, cooldown: str = "2"
) -> list[str]:
    (work / "empty.conf").write_text("")
    (work / "empty-block.txt").write_text("")
    argv = [
        zmap.path, "-M", module, "-C", str(work / "empty.conf"),
        "-b", str(work / "empty-block.txt"), "-w", str(work / "allow.txt"), *sender,
        "-r", "0", "-c", cooldown, "-q", "-O", "csv", "-f", "saddr",
        "--output-filter", "repeat = 0", "-o", str(work / "zmap.csv"),
        "-m", str(work / "zmap-meta.json"), "--disable-syslog",
    ]  # fmt: skip
    if ports is not None and "," in ports and zmap.major < 4:
        # ZMap 2 scans one port: as many packets per target as 9 ports, 9 copies of one SYN.
        return [*argv, "-p", ports.split(",")[0], "-P", str(len(ports.split(",")))]
    return argv if ports is None else [*argv, "-p", ports]


def run_zmap(
    site: Site, zmap: Peer, work: Path, sender: list[str], module: str, port: int | None, count: int
) -> dict[str, Any]:
    argv = zmap_argv(zmap, work, sender, module, None if port is None else str(port))
    run = timed(site, argv, count)
    with open(work / "zmap.csv") as handle:
        replies = sum(1 for _ in csv.reader(handle)) - 1
    meta = json.loads((work / "zmap-meta.json").read_text())
    drops = {k: meta[k] for k in ("pcap_drop", "pcap_ifdrop", "sendto_failures") if k in meta}
    return _finish(site, run, count, count, replies, drops)


def masscan_argv(
    masscan: Peer, work: Path, targets: list[str], sender: list[str], what: list[str], wait: int
) -> list[str]:
    return [
        masscan.path, ",".join(targets), *what, "--rate", "100000000", *sender,
        "--wait", str(wait), "-oL", str(work / "masscan.txt"),
    ]  # fmt: skip


def run_masscan(
    site: Site, masscan: Peer, work: Path, targets: list[str], sender: list[str],
    what: list[str], count: int,
) -> dict[str, Any]:  # fmt: skip
    run = timed(site, masscan_argv(masscan, work, targets, sender, what, 2), count, 2)
    addresses = set()
    for line in (work / "masscan.txt").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 4 and not line.startswith("#"):
            addresses.add(fields[3])
    return _finish(site, run, count, count, len(addresses))


# -- peers -----------------------------------------------------------------------------------
class Peer:
    """A peer tool: its binary and version."""

    def __init__(self, path: str, version_argv: list[str]) -> None:
        self.path = path
        done = subprocess.run([path, *version_argv], capture_output=True, text=True)
        found = re.search(r"(\d+)\.(\d+)\.(\d+)", done.stdout + done.stderr)
        self.version = found.group(0) if found else "unknown"
        self.major = int(found.group(1)) if found else 0


def find_zmap(path: str | None) -> Peer:
    """``--zmap``, else ZMap 4.3.4 built by the shared script, else Debian's zmap."""
    if path is None and BUILD_ZMAP.exists():
        built = subprocess.run(["bash", str(BUILD_ZMAP)], capture_output=True, text=True)
        lines = built.stdout.strip().splitlines()
        if built.returncode == 0 and lines and os.access(lines[-1], os.X_OK):
            path = lines[-1]
        else:
            print(
                f"build-zmap.sh failed, using {DEBIAN_ZMAP}: {built.stderr[-500:]}", file=sys.stderr
            )
    path = path or DEBIAN_ZMAP
    if not os.access(path, os.X_OK):
        raise SystemExit(f"zmap not found at {path} (give --zmap, or apt-get install zmap)")
    return Peer(path, ["--version"])


def find_masscan() -> Peer | None:
    path = shutil.which("masscan")
    if path is None:
        print("masscan is not installed (apt-get install masscan): skipped", file=sys.stderr)
        return None
    if Path("/etc/masscan/masscan.conf").exists():
        raise SystemExit("/etc/masscan/masscan.conf exists: masscan would read it; move it away")
    return Peer(path, ["--version"])


# -- the two settings ------------------------------------------------------------------------
def testbed_runs(
    args: argparse.Namespace, work: Path, zmap: Peer, masscan: Peer | None
) -> dict[str, Any]:
    spec_path = work / "bench.toml"
    spec_path.write_text(SPEC.format(prefix=args.prefix))
    with Testbed(load_spec(str(spec_path))) as tb:
        (work / "allow.txt").write_text("".join(f"{t}\n" for t in tb.targets))
        count = sum(ipaddress.IPv4Network(t).num_addresses for t in tb.targets)
        vp, link = tb.vps["vp1"], tb.layout.vps[0]
        # The veth names inside the router and the Internet namespaces (testbed/build.py).
        hops = [
            ("vp.eth0.tx", f"vp:{vp.ifname}.tx_packets"),
            ("router.from_vp.rx", f"rtr:{link.router_ifname}.rx_packets"),
            ("router.to_inet.tx", "rtr:inet0.tx_packets"),
            ("inet.rx", "inet:rtr0.rx_packets"),
            ("inet.tx", "inet:rtr0.tx_packets"),
            ("router.from_inet.rx", "rtr:inet0.rx_packets"),
            ("router.to_vp.tx", f"rtr:{link.router_ifname}.tx_packets"),
            ("vp.eth0.rx", f"vp:{vp.ifname}.rx_packets"),
        ]
        # A full per-CPU backlog drops at the receiving veth (rx_dropped, softnet dropped); at
        # the first hop the sender sees ENOBUFS and may send the frame again (unexplained < 0).
        places = [
            ("vp_to_router_backlog", f"rtr:{link.router_ifname}.rx_dropped"),
            ("router_to_inet_backlog", "inet:rtr0.rx_dropped"),
            ("responder_reply_not_built", "inet:Icmp.OutErrors"),
            ("inet_to_router_backlog", "rtr:inet0.rx_dropped"),
            ("router_to_vp_backlog", f"vp:{vp.ifname}.rx_dropped"),
        ]
        watch = {"vp": vp.netns, "rtr": tb.layout.router_ns, "inet": tb.layout.inet_ns}
        far_end = (tb.layout.router_ns, link.router_ifname, link.mac, link.router_mac)
        site = Site(vp.netns, vp.ifname, watch, hops, places, far_end)
        live_sender = ["-i", vp.ifname, "-S", vp.src_ip, "-G", vp.gateway_mac]
        masscan_sender = [
            "--adapter", vp.ifname, "--adapter-ip", vp.src_ip, "--router-mac", vp.gateway_mac,
        ]  # fmt: skip
        probes: dict[str, dict[str, Callable[[], dict[str, Any]]]] = {
            "icmp_echo": {
                "zmap": lambda: run_zmap(
                    site, zmap, work, live_sender, "icmp_echoscan", None, count
                ),
                "liveness": lambda: run_liveness(
                    site, work, live_sender, tb.targets, count, ["icmp_echo"]
                ),
            },
            "tcp_syn:80": {
                "zmap": lambda: run_zmap(site, zmap, work, live_sender, "tcp_synscan", 80, count),
                "liveness": lambda: run_liveness(
                    site, work, live_sender, tb.targets, count, ["tcp_syn:80"]
                ),
            },
        }
        if masscan is not None:
            probes["icmp_echo"]["masscan"] = lambda: run_masscan(
                site, masscan, work, tb.targets, masscan_sender, ["--ping"], count
            )
            probes["tcp_syn:80"]["masscan"] = lambda: run_masscan(
                site, masscan, work, tb.targets, masscan_sender, ["-p80", "--show", "closed"], count
            )
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for _ in range(args.repeat):
            # Interleave the tools so slow drifts of the machine hit all alike.
            for probe, tools in probes.items():
                for tool, go in tools.items():
                    runs.setdefault((tool, probe), []).append(go())
        default = run_liveness(site, work, live_sender, tb.targets, count, DEFAULT_SET)
    report: dict[str, Any] = {"targets": count}
    for (tool, probe), chosen in runs.items():
        median = dict(sorted(chosen, key=lambda r: r["pps"])[len(chosen) // 2])
        median["pps_runs"] = [r["pps"] for r in chosen]
        median["replies_captured_runs"] = [r["replies_captured"] for r in chosen]
        median["loss_accounting_runs"] = [r.get("loss_accounting") for r in chosen]
        median.pop("loss_accounting", None)
        report.setdefault(tool, {})[probe] = median
    ratios = {p: report["liveness"][p]["pps"] / max(1, report["zmap"][p]["pps"]) for p in probes}
    report["pps_ratio"] = round(min(ratios.values()), 3)
    report["pps_ratio_per_probe"] = {p: round(r, 3) for p, r in ratios.items()}
    report["reply_share_min"] = round(
        min(
            min(r) / report["targets"]
            for p in probes
            for r in [report["liveness"][p]["replies_captured_runs"]]
        ),
        5,
    )
    single = statistics.median(report["liveness"][p]["pps"] for p in probes)
    report["liveness_default_set"] = {
        **default,
        "pps_vs_single_probe": round(default["pps"] / max(1, single), 3),
    }
    return report


@contextmanager
def sink_namespaces() -> Iterator[tuple[str, str]]:
    """A VP namespace whose eth0 is a veth into a namespace with no address; removed on exit."""
    tag = secrets.token_hex(3)
    vp, peer = f"lbsink{tag}-vp", f"lbsink{tag}-peer"
    made: list[str] = []
    try:
        for ns in (vp, peer):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            made.append(ns)
            subprocess.run(
                ["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                 "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"],
                check=True,
            )  # fmt: skip
        lines = [
            f"link add eth0 address {SINK_MACS[0]} type veth peer name sink0 "
            f"address {SINK_MACS[1]} netns {peer}",
            "link set lo up",
            "link set eth0 up",
            f"addr add {SINK_SRC}/32 dev eth0",
        ]
        subprocess.run(["ip", "-n", vp, "-batch", "-"], input="\n".join(lines) + "\n",
                       text=True, check=True)  # fmt: skip
        subprocess.run(["ip", "-n", peer, "link", "set", "sink0", "up"], check=True)
        yield vp, peer
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def sink_runs(
    args: argparse.Namespace, work: Path, zmap: Peer, masscan: Peer | None
) -> dict[str, Any]:
    network = ipaddress.IPv4Network(SINK_NET)
    assert network.subnet_of(BENCHMARK_NET)
    (work / "allow.txt").write_text(f"{SINK_NET}\n")
    count = network.num_addresses
    per_target = len(DEFAULT_SET)
    assert len(SINK_PORTS.split(",")) == per_target
    frames = count * per_target
    live_sender = ["-i", "eth0", "-S", SINK_SRC, "-G", SINK_GW]
    pps: dict[str, list[int]] = {}
    cpu: dict[str, list[float]] = {}
    with sink_namespaces() as (vp, peer):
        site = Site(vp, "eth0", {}, [], [], (peer, "sink0", *SINK_MACS))
        zmap_sender = ["-i", "eth0", "-S", SINK_SRC, "--gateway-mac", SINK_GW]
        masscan_sender = ["--adapter", "eth0", "--adapter-ip", SINK_SRC, "--router-mac", SINK_GW]
        tools: dict[str, Callable[[], list[str]]] = {
            "liveness": lambda: liveness_argv(live_sender, [SINK_NET], work, DEFAULT_PROBES, "0"),
            "zmap": lambda: zmap_argv(zmap, work, zmap_sender, "tcp_synscan", SINK_PORTS, "0"),
        }
        if masscan is not None:
            tools["masscan"] = lambda: masscan_argv(
                masscan, work, [SINK_NET], masscan_sender, [f"-p{SINK_PORTS}"], 0
            )
        for _ in range(args.repeat):
            for tool, argv in tools.items():
                # masscan exits only once a frame arrives after its sending is done: poke it.
                run = timed(site, argv(), frames, 0.0 if tool == "masscan" else None)
                pps.setdefault(tool, []).append(round(run["pps"]))
                cpu.setdefault(tool, []).append(run["cpu"] / frames * 1e6)
    report: dict[str, Any] = {"targets": count, "frames_per_run": frames}
    for tool, runs in pps.items():
        report[f"{tool}_pps"] = statistics.median(runs)
        report[f"{tool}_pps_runs"] = runs
        report[f"{tool}_cpu_s_per_mframe"] = round(statistics.median(cpu[tool]), 3)
    report["ratio"] = round(report["liveness_pps"] / max(1, report["zmap_pps"]), 3)
    if masscan is not None:
        report["ratio_vs_masscan"] = round(
            report["liveness_pps"] / max(1, report["masscan_pps"]), 3
        )
    report["zmap_probes"] = f"tcp_synscan -p {SINK_PORTS}" + (
        " (as -P 9)" if zmap.major < 4 else ""
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--prefix", default="198.18.0.0/15", help="the population to scan")
    parser.add_argument("--zmap", help="ZMap binary (default: build 4.3.4, else Debian's)")
    parser.add_argument("--sink", action="store_true", help="also measure into a sink")
    parser.add_argument("--no-testbed", action="store_true", help="skip the testbed runs")
    parser.add_argument("--no-masscan", action="store_true", help="leave masscan out")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark builds network namespaces")
    if not ipaddress.IPv4Network(args.prefix).subnet_of(BENCHMARK_NET):
        raise SystemExit(f"--prefix must lie inside {BENCHMARK_NET}")
    # A TERM must unwind through the finally blocks that remove the namespaces.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    zmap = find_zmap(args.zmap)
    masscan = None if args.no_masscan else find_masscan()
    report: dict[str, Any] = {
        "peers": {"zmap": zmap.version, "masscan": masscan.version if masscan else None},
        "repeat": args.repeat,
    }
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_testbed:
            report.update(testbed_runs(args, Path(tmp), zmap, masscan))
        if args.sink:
            report["sink"] = sink_runs(args, Path(tmp), zmap, masscan)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
