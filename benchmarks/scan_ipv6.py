"""liveness scan over IPv6 against IPv4 in the same run, on one testbed and into a sink; one JSON.

Testbed: a dual-stack population (65,280 Linux-like hosts per family: echo replies, RST from a
closed port 80; the IPv6 hosts at ``::1`` of each /64 of 2001:2::/48 but the testbed's own /56,
reached by the prefix walk ``2001:2::/48-64``; the IPv4 hosts as many, from 198.18.0.0)
scanned from one VP at unlimited rate, with ICMP echo and with TCP SYN to port 80, the
families interleaved run by run. The send rate is measured outside the scanner, as
in ``scan_vs_zmap.py`` (whose machinery this script shares): a sampler in the VP namespace reads
the interface's ``tx_packets``. Each target is sent ``--copies`` probes (default 4, ZMap's
``-P``): 65,280 probes last a quarter of a second at 250k/s, a span the scan's start dominates
(one copy gave IPv6 0.71x IPv4 for echo where four gave 0.8x and more). Every copy is answered,
so ``reply_share`` counts the reply to every copy (``first_reply_share``: the targets that
answered at all). ``ratio`` is the IPv6 rate over the IPv4 rate of the same probe (median of
``--repeat`` runs each).

Silent (``--silent``): the same testbed with no behaviour assigned, so nothing answers: the
probes are forwarded by the router and dropped in the Internet namespace. It tells the
scanner's share of a gap (its CPU per probe) from the testbed kernels' (the send rate, which
includes the forwarding done in the flush's softirq).

Sink (``--sink``): the 9-probe default set into a veth whose peer drops everything, 65,536
targets per family (198.18.0.0/16 and 2001:2::/48-64): the sender's own ceiling per family.

Usage (root): ``python benchmarks/scan_ipv6.py [--repeat 3] [--copies 4] [--sink] [--silent]
[--no-testbed]``
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from liveness.output import read_replies
from liveness.output.schema import REPLY_SCHEMA
from liveness.probes import DEFAULT_PROBES
from liveness.testbed import Testbed, load_spec
from scan_vs_zmap import (
    Site,
    _finish,
    liveness_argv,
    sink_namespaces,
    timed,
)

SPEC = """
name = "bench6"
description = "Dual-stack hosts that answer ping and RST port 80: IPv6 against IPv4 rates."
seed = 1
population = ["198.18.0.0/16"]
population6 = ["2001:2::/48"]
infrastructure = "198.19.255.0/24"
infrastructure6 = "2001:2:0:ff00::/56"

[[vp]]
name = "vp1"

[[assign]]
behaviour = "linux_host"
fraction = 1.0
"""
WALK = "2001:2::/48-64"
HOSTS = 65280  # /64s of the /48 outside the infrastructure /56
SINK4 = "198.18.0.0/16"
SINK6 = "2001:2::/48-64"
SINK_SRC6 = "2001:2:0:ff00::1"


def _run(
    site: Site,
    work: Path,
    sender: list[str],
    targets: list[str],
    count: int,
    probe: str,
    copies: int,
) -> dict[str, Any]:
    """One unlimited-rate scan sending ``copies`` probes per target (``-P``): send rate, CPU,
    replies. Every copy is answered, so every copy's reply counts (``first_reply_share``: the
    targets that answered at all)."""
    argv = [*liveness_argv(sender, targets, work, probe, "2"), "-P", str(copies)]
    sent = count * copies
    run = timed(site, argv, sent)
    table = pa.Table.from_batches(
        list(read_replies(str(work / "liveness.parquet"))), schema=REPLY_SCHEMA
    )
    first = table.filter(pc.invert(table["repeat"]))
    kernel_drops = json.loads((work / "meta.json").read_text()).get("kernel_drops", 0)
    result = _finish(site, run, sent, sent, table.num_rows, {"rx_ring.kernel_drops": kernel_drops})
    result["first_reply_share"] = round(first.num_rows / count, 5)
    return result


def testbed_runs(args: argparse.Namespace, work: Path, silent: bool = False) -> dict[str, Any]:
    spec_path = work / "bench6.toml"
    spec_path.write_text(SPEC.split("[[assign]]")[0] if silent else SPEC)
    with Testbed(load_spec(str(spec_path))) as tb:
        (work / "allow.txt").write_text("198.18.0.0/15\n2001:2::/48\n")
        vp, link = tb.vps["vp1"], tb.layout.vps[0]
        count = HOSTS
        assert vp.src_ip6 is not None
        sender = ["-i", vp.ifname, "-S", vp.src_ip, "-G", vp.gateway_mac]
        sender += ["--source-ip6", vp.src_ip6]
        hops = [
            ("vp.eth0.tx", f"vp:{vp.ifname}.tx_packets"),
            ("router.from_vp.rx", f"rtr:{link.router_ifname}.rx_packets"),
            ("inet.rx", "inet:rtr0.rx_packets"),
            ("inet.tx", "inet:rtr0.tx_packets"),
            ("vp.eth0.rx", f"vp:{vp.ifname}.rx_packets"),
        ]
        places = [
            ("vp_to_router_backlog", f"rtr:{link.router_ifname}.rx_dropped"),
            ("router_to_inet_backlog", "inet:rtr0.rx_dropped"),
            ("inet_to_router_backlog", "rtr:inet0.rx_dropped"),
            ("router_to_vp_backlog", f"vp:{vp.ifname}.rx_dropped"),
        ]
        watch = {"vp": vp.netns, "rtr": tb.layout.router_ns, "inet": tb.layout.inet_ns}
        far_end = (tb.layout.router_ns, link.router_ifname, link.mac, link.router_mac)
        site = Site(vp.netns, vp.ifname, watch, hops, places, far_end)
        # The walk's /64s without hosts (the infrastructure /56) are excluded by a blocklist;
        # the IPv4 side takes the first HOSTS addresses, so both families send HOSTS probes.
        (work / "block6.txt").write_text(f"{tb.spec.infrastructure6}\n")
        last4 = ipaddress.IPv4Address("198.18.0.0") + HOSTS
        (work / "block4.txt").write_text(f"{last4}/24\n")
        families = {
            "ipv4": ["198.18.0.0/16", "-b", str(work / "block4.txt")],
            "ipv6": [WALK, "-b", str(work / "block6.txt")],
        }
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for _ in range(args.repeat):
            for probe in ("icmp_echo", "tcp_syn:80"):
                for family, targets in families.items():  # interleaved: drifts hit both
                    result = _run(site, work, sender, targets, count, probe, args.copies)
                    runs.setdefault((family, probe), []).append(result)
    report: dict[str, Any] = {"targets_per_family": count, "copies": args.copies}
    for (family, probe), chosen in runs.items():
        median = dict(sorted(chosen, key=lambda r: r["pps"])[len(chosen) // 2])
        median["pps_runs"] = [r["pps"] for r in chosen]
        median["reply_share_runs"] = [r["reply_share"] for r in chosen]
        median.pop("loss_accounting", None)
        median["loss_accounting_runs"] = [r.get("loss_accounting") for r in chosen]
        report.setdefault(family, {})[probe] = median
    ratios = {
        probe: report["ipv6"][probe]["pps"] / max(1, report["ipv4"][probe]["pps"])
        for probe in ("icmp_echo", "tcp_syn:80")
    }
    report["ratio_per_probe"] = {p: round(r, 3) for p, r in ratios.items()}
    report["ratio"] = round(min(ratios.values()), 3)
    report["ipv6_reply_share_min"] = min(
        share for probe in ratios for share in report["ipv6"][probe]["reply_share_runs"]
    )
    return report


def sink_runs(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    (work / "allow.txt").write_text("198.18.0.0/15\n2001:2::/48\n")
    frames = 65536 * len(DEFAULT_PROBES.split(","))
    sender = ["-i", "eth0", "-S", "198.19.255.254", "-G", "02:4c:56:5e:00:fe"]
    sender += ["--source-ip6", SINK_SRC6]
    pps: dict[str, list[int]] = {}
    with sink_namespaces() as (vp, peer):
        site = Site(
            vp, "eth0", {}, [], [], (peer, "sink0", "02:4c:56:5e:00:01", "02:4c:56:5e:00:02")
        )
        for _ in range(args.repeat):
            for family, targets in (("ipv4", [SINK4]), ("ipv6", [SINK6])):
                argv = liveness_argv(sender, targets, work, DEFAULT_PROBES, "0")
                pps.setdefault(family, []).append(round(timed(site, argv, frames)["pps"]))
    report: dict[str, Any] = {"frames_per_run": frames}
    for family, values in pps.items():
        report[f"{family}_pps"] = statistics.median(values)
        report[f"{family}_pps_runs"] = values
    report["ratio"] = round(report["ipv6_pps"] / max(1, report["ipv4_pps"]), 3)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--sink", action="store_true", help="also measure into a sink")
    parser.add_argument("--no-testbed", action="store_true", help="skip the testbed runs")
    parser.add_argument("--silent", action="store_true", help="also measure with no replies")
    parser.add_argument(
        "--copies",
        type=int,
        default=4,
        help="probes per target on the testbed (-P): one copy lasts a quarter second at 250k/s",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark builds network namespaces")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report: dict[str, Any] = {"repeat": args.repeat}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_testbed:
            report.update(testbed_runs(args, Path(tmp)))
        if args.silent:
            silent = testbed_runs(args, Path(tmp), silent=True)
            report["silent"] = {
                "ratio_per_probe": silent["ratio_per_probe"],
                **{
                    family: {
                        probe: {k: run[k] for k in ("pps", "pps_runs", "cpu_s_per_mprobe")}
                        for probe, run in silent[family].items()
                    }
                    for family in ("ipv4", "ipv6")
                },
            }
        if args.sink:
            report["sink"] = sink_runs(args, Path(tmp))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
