"""liveness scan vs ZMap on the same testbed, targets and interface, in one run; prints JSON.

Both tools scan every address of a /15 population (all Linux-like hosts: echo replies, RST from
closed port 80) at unlimited rate, once with ICMP echo and once with TCP SYN to port 80. The send
rate of both is measured the same way, outside either tool: a sampler inside the VP's namespace
reads the interface's ``tx_packets`` counter every millisecond, and the rate is the packets sent
between the first and the last change over that time. Replies are counted from each tool's own
output (first replies only). CPU is the tool's user+system time (children included) per million
probes. ``liveness`` also runs the 9-probe default set, to compare its packet rate with one probe.

Usage: ``python benchmarks/scan_vs_zmap.py [--repeat 3] [--prefix 198.18.0.0/15]`` (root).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from liveness.output import read_replies
from liveness.probes import DEFAULT_PROBES
from liveness.testbed import Testbed, load_spec

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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _send_rate(samples: str, probes: int) -> float:
    """Packets per second over the span in which the counter rose by the probes sent."""
    points = [(float(t), int(v)) for t, v in (line.split() for line in samples.splitlines())]
    if len(points) < 3:
        return 0.0
    base = points[0][1]
    start = next(t for t, v in points if v > base)
    # The end of sending: the first sample at which the probes are all out (later packets are
    # the kernel's own, e.g. ARP or RSTs, and must not stretch the span).
    end_candidates = [t for t, v in points if v - base >= probes]
    end = end_candidates[0] if end_candidates else points[-1][0]
    sent = min(probes, points[-1][1] - base)
    return sent / (end - start) if end > start else 0.0


def _timed(tb: Testbed, argv: list[str], probes: int, budget_s: float) -> tuple[float, float, str]:
    vp = tb.vps["vp1"]
    sampler = tb.popen(
        "vp1",
        [sys.executable, "-c", SAMPLER, vp.ifname, str(budget_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.3)
    cpu0 = _children_cpu()
    done = tb.run("vp1", argv, capture_output=True, text=True, timeout=budget_s)
    cpu = _children_cpu() - cpu0
    if done.returncode != 0:
        sampler.kill()
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    sampler.terminate()
    out, _ = sampler.communicate()
    return _send_rate(out, probes), cpu, done.stderr


def run_liveness(
    tb: Testbed, work: Path, probe_set: str, targets: int, expected_probes: list[str]
) -> dict[str, Any]:
    out = work / "liveness.parquet"
    for stale in work.glob("liveness.parquet*"):
        stale.unlink()
    argv = [
        sys.executable, "-m", "liveness.cli.main", "scan", *tb.targets,
        "-w", str(work / "allow.txt"), "--probes", probe_set, "-r", "0",
        "--retransmit-delay", "0", "-c", "2", "-q", "-o", str(out), "-m", str(work / "meta.json"),
    ]  # fmt: skip
    probes = targets * len(expected_probes)
    pps, cpu, _ = _timed(tb, argv, probes, 300.0)
    table = pa.Table.from_batches(list(read_replies(str(out))))
    first = table.filter(pc.invert(table["repeat"]))
    names = pc.cast(first["probe"], pa.string())
    result: dict[str, Any] = {"pps": round(pps), "probes_sent": probes}
    for name in expected_probes:
        rows = first.filter(pc.equal(names, name))
        result[name] = {
            "replies_captured": rows.num_rows,
            "replies_expected": targets,
        }
    result["cpu_s_per_mprobe"] = round(cpu / probes * 1e6, 3)
    return result


def run_zmap(
    tb: Testbed, work: Path, module: str, port: int | None, targets: int
) -> dict[str, Any]:
    vp = tb.vps["vp1"]
    out = work / "zmap.csv"
    (work / "empty.conf").write_text("")
    argv = [
        "zmap", "-M", module, "-C", str(work / "empty.conf"), "-w", str(work / "allow.txt"),
        "-i", vp.ifname, "-S", vp.src_ip, "-G", vp.gateway_mac, "-r", "0", "-c", "2", "-q",
        "-O", "csv", "-f", "saddr", "--output-filter", "repeat = 0", "-o", str(out),
        "--disable-syslog",
    ]  # fmt: skip
    if port is not None:
        argv += ["-p", str(port)]
    pps, cpu, _ = _timed(tb, argv, targets, 300.0)
    with open(out) as handle:
        replies = sum(1 for _ in csv.reader(handle)) - 1
    return {
        "pps": round(pps),
        "replies_captured": replies,
        "replies_expected": targets,
        "cpu_s_per_mprobe": round(cpu / targets * 1e6, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--prefix", default="198.18.0.0/15", help="the population to scan")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark builds network namespaces")
    if shutil.which("zmap") is None:
        raise SystemExit("zmap is not installed (apt-get install zmap)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spec_path = work / "bench.toml"
        spec_path.write_text(SPEC.format(prefix=args.prefix))
        with Testbed(load_spec(str(spec_path))) as tb:
            (work / "allow.txt").write_text("".join(f"{t}\n" for t in tb.targets))
            import ipaddress

            targets = sum(ipaddress.IPv4Network(t).num_addresses for t in tb.targets)
            runs: dict[str, list[dict[str, Any]]] = {}
            for _ in range(args.repeat):
                # Interleave the tools so slow drifts of the machine hit both alike.
                runs.setdefault("zmap icmp_echo", []).append(
                    run_zmap(tb, work, "icmp_echoscan", None, targets)
                )
                runs.setdefault("liveness icmp_echo", []).append(
                    run_liveness(tb, work, "icmp_echo", targets, ["icmp_echo"])
                )
                runs.setdefault("zmap tcp_syn:80", []).append(
                    run_zmap(tb, work, "tcp_synscan", 80, targets)
                )
                runs.setdefault("liveness tcp_syn:80", []).append(
                    run_liveness(tb, work, "tcp_syn:80", targets, ["tcp_syn:80"])
                )
            default = run_liveness(
                tb, work, DEFAULT_PROBES, targets,
                ["icmp_echo", "tcp_syn:22", "tcp_syn:23", "tcp_syn:80", "tcp_syn:443",
                 "tcp_syn:7547", "tcp_syn:random", "udp_dns", "udp_ntp"],
            )  # fmt: skip

    def median_run(key: str) -> dict[str, Any]:
        chosen = sorted(runs[key], key=lambda r: r["pps"])[len(runs[key]) // 2]
        chosen["pps_runs"] = [r["pps"] for r in runs[key]]
        return chosen

    report: dict[str, Any] = {"targets": targets, "repeat": args.repeat}
    for tool in ("liveness", "zmap"):
        report[tool] = {}
        for probe in ("icmp_echo", "tcp_syn:80"):
            run = median_run(f"{tool} {probe}")
            if tool == "liveness":
                run = {**run, **run.pop(probe)}
            report[tool][probe] = run
    ratios = [
        report["liveness"][p]["pps"] / max(1, report["zmap"][p]["pps"]) for p in report["zmap"]
    ]
    report["pps_ratio"] = round(min(ratios), 3)
    report["pps_ratio_per_probe"] = {
        p: round(r, 3) for p, r in zip(report["zmap"], ratios, strict=True)
    }
    report["liveness_default_set"] = {
        "pps": default["pps"],
        "probes_sent": default["probes_sent"],
        "replies_captured": sum(
            v["replies_captured"] for v in default.values() if isinstance(v, dict)
        ),
        "cpu_s_per_mprobe": default["cpu_s_per_mprobe"],
        "pps_vs_single_probe": round(
            default["pps"] / max(1, statistics.median(
                [report["liveness"][p]["pps"] for p in ("icmp_echo", "tcp_syn:80")]
            )), 3,
        ),
    }  # fmt: skip
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
