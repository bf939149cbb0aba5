"""Replies of a real Linux stack to the engine's probes (tests/data/engine/replies.pcap).

The capture was made by ``tests/data/engine/make_capture.py`` (scanner - router - target
namespaces; see there): TCP listeners on 22 and 80, dnsmasq, chronyd, a router rejecting 7547
with admin-prohibited, an absent host and an unrouted network, TTL-1 probes, two attempts.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from liveness.net.pcap import PcapReader
from liveness.probes import ReplyClassifier, parse_probes
from liveness.probes.context import ScanContext

DATA = Path(__file__).resolve().parents[1] / "data" / "engine"
ROUTER = "198.18.0.254"


def decode(pcap: Path) -> tuple[list[dict[str, Any]], dict[str, int], dict[str, Any]]:
    meta = json.loads((DATA / "replies.json").read_text())
    ctx = ScanContext.from_seed(
        meta["seed"],
        src_ip=int(ipaddress.IPv4Address(meta["source_ip"])),
        src_mac=bytes(6),
        gw_mac=bytes(6),
        max_attempts=meta["max_attempts"],
    )
    classifier = ReplyClassifier(ctx, parse_probes(meta["probes"]))
    reader = PcapReader(pcap)
    records: list[dict[str, Any]] = []
    for batch in reader:
        records += classifier.classify(batch.frames, batch.lengths, batch.ts_ns).to_pylist()
    assert reader.error is None
    for record in records:
        record["target"] = str(ipaddress.IPv4Address(record["target"]))
        record["responder"] = str(ipaddress.IPv4Address(record["responder"]))
    return records, classifier.counters, meta


def outcomes(records: list[dict[str, Any]], target: str) -> set[tuple[Any, ...]]:
    return {
        (r["probe"], r["reply"], r["icmp_code"], r["responder"], r["attempt"], r["app_valid"])
        for r in records
        if r["target"] == target
    }


def check(records: list[dict[str, Any]], counters: dict[str, int]) -> None:
    assert counters["validation_failed"] == 0 and counters["unknown_probe"] == 0
    drops = sum(v for k, v in counters.items() if k not in ("frames", "valid"))
    assert counters["valid"] + drops == counters["frames"]
    for attempt in (0, 1):
        host = outcomes(records, "198.18.1.2")
        for port in (22, 80):
            assert (f"tcp_syn:{port}", "synack", -1, "198.18.1.2", attempt, False) in host
        for probe in ("tcp_syn:23", "tcp_syn:443", "tcp_syn:random"):
            assert (probe, "rst", -1, "198.18.1.2", attempt, False) in host
        assert ("icmp_echo", "echo_reply", 0, "198.18.1.2", attempt, False) in host
        assert ("udp_dns", "udp", -1, "198.18.1.2", attempt, True) in host
        assert ("tcp_syn:7547", "icmp_unreach", 13, ROUTER, attempt, False) in host
        other = outcomes(records, "198.18.1.5")
        for probe in ("udp_dns", "udp_ntp"):  # nothing listens there: port unreachable
            assert (probe, "icmp_unreach", 3, "198.18.1.5", attempt, False) in other
        absent = outcomes(records, "198.18.1.3")
        assert ("tcp_syn:443", "icmp_unreach", 1, ROUTER, attempt, False) in absent
    assert any(r[0] == "udp_ntp" and r[5] for r in outcomes(records, "198.18.1.2"))
    time_exceeded = {
        (r[0], r[3]) for r in outcomes(records, "198.18.1.2") if r[1] == "icmp_time_exceeded"
    }
    assert time_exceeded == {("icmp_echo", ROUTER), ("tcp_syn:22", ROUTER)}
    unrouted = outcomes(records, "198.18.2.5")
    assert unrouted and all(r[1:4] == ("icmp_unreach", 0, ROUTER) for r in unrouted)
    # every error from a router names the router as responder and the probed address as target
    assert all(r["responder"] != r["target"] for r in records if r["responder"] == ROUTER)


def test_real_capture_decodes() -> None:
    records, counters, _ = decode(DATA / "replies.pcap")
    check(records, counters)


TOOLS = ("ip", "nft", "tcpdump", "dnsmasq", "chronyd")


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in TOOLS), reason=f"needs {', '.join(TOOLS)}"
)
def test_capture_again_live(tmp_path: Path) -> None:
    """Re-run the capture in fresh namespaces and check the same outcomes."""
    pcap = tmp_path / "replies.pcap"
    script = DATA / "make_capture.py"
    subprocess.run([sys.executable, str(script), str(pcap)], check=True, timeout=120)
    records, counters, _ = decode(pcap)
    check(records, counters)
