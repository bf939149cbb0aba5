"""``liveness scan`` on the testbed: real packets through real kernels, checked with ground truth.

Each test brings up its own testbed (removed even when the test fails), runs the scanner inside a
VP's namespace exactly as a user would, and compares what it recorded with what the testbed is
built to answer, or with what a capture at the router saw on the wire.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from router_capture import capture_at_router, stop

from liveness.output import read_replies
from liveness.testbed import Testbed, load_spec

pytestmark = [pytest.mark.root, pytest.mark.slow]

HERE = Path(__file__).parent


def _scan_argv(tb: Testbed, vp_name: str, out: Path, *extra: str) -> list[str]:
    allow = out.parent / "allow.txt"
    allow.write_text("198.18.0.0/15\n")
    return tb.vps[vp_name].scan_argv(
        tb.targets, allow, "-o", str(out), "-m", f"{out}.meta.json", "-q", *extra
    )


def _replies(path: Path) -> pa.Table:
    return pa.Table.from_batches(list(read_replies(str(path))))


def _text(table: pa.Table, column: str) -> pa.ChunkedArray:
    return pc.cast(table[column], pa.string())


def _found(table: pa.Table) -> set[tuple[int, str, str, int]]:
    rows = table.select(["target", "probe", "reply", "responder"]).to_pylist()
    return {(r["target"], str(r["probe"]), str(r["reply"]), r["responder"]) for r in rows}


def _truth_for(tb: Testbed, vp: str) -> set[tuple[int, str, str, int]]:
    truth, _ = tb.truth()
    rows = truth.filter(pc.equal(truth["vp"], vp)).to_pylist()
    return {(r["target"], r["probe"], r["reply"], r["responder"]) for r in rows}


@pytest.fixture
def small_testbed() -> Iterator[Testbed]:
    with Testbed(load_spec("small")) as tb:
        yield tb


def test_default_probe_set_finds_exactly_the_ground_truth(
    small_testbed: Testbed, tmp_path: Path
) -> None:
    tb = small_testbed
    out = tmp_path / "replies.parquet"
    argv = _scan_argv(tb, "vp1", out, "-r", "20000", "--retransmit-delay", "1", "-c", "2")
    done = tb.run("vp1", argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    table = _replies(out)
    first = table.filter(pc.invert(table["repeat"]))
    found = _found(first)
    truth = _truth_for(tb, "vp1")
    # vp1's paths carry no injected loss: the scan must see exactly what the testbed answers.
    assert found - truth == set(), sorted(found - truth)[:10]
    assert truth - found == set(), sorted(truth - found)[:10]
    replies = set(pc.unique(_text(table, "reply")).to_pylist())
    assert {"rst", "synack", "echo_reply", "icmp_unreach", "icmp_time_exceeded", "udp"} <= replies
    router = table.filter(pc.not_equal(table["target"], table["responder"]))
    assert router.num_rows > 0  # router-sourced ICMP errors, linked to their targets
    tarpits = table.filter(pc.equal(_text(table, "probe"), "tcp_syn:random"))
    assert tarpits.num_rows > 0
    meta = json.loads(Path(f"{out}.meta.json").read_text())
    assert meta["packets_sent"] == 2 * 9 * sum(
        ipaddress.IPv4Network(t).num_addresses for t in tb.targets
    )
    assert meta["capabilities_dropped"] is True
    assert meta["rows_written"] == table.num_rows


def test_retransmission_recovers_hosts_lost_in_bursts(tmp_path: Path) -> None:
    spec = load_spec(str(HERE / "burst_loss.toml"))
    with Testbed(spec) as tb:
        out = tmp_path / "replies.parquet"
        argv = _scan_argv(
            tb, "vp1", out, "--probes", "icmp_echo", "-r", "1000", "--retransmit-delay", "0.35"
        )
        done = tb.run("vp1", [*argv, "-c", "2"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        table = _replies(out)
        attempts = Counter(table["attempt"].to_pylist())
        assert set(attempts) <= {0, 1}
        first_try = set(table.filter(pc.equal(table["attempt"], 0))["target"].to_pylist())
        second_try = set(table.filter(pc.equal(table["attempt"], 1))["target"].to_pylist())
        recovered = second_try - first_try
        population = sum(ipaddress.IPv4Network(t).num_addresses for t in tb.targets)
        # Bursts drop everything for a while: a single probe misses many hosts, the retransmission
        # (sent when the burst is over, most of the time) finds most of them again.
        assert len(first_try) < 0.9 * population
        assert len(recovered) > 0.05 * population
        assert len(first_try | second_try) > len(first_try)


def _capture(tb: Testbed, vp: str, pcap: Path) -> subprocess.Popen[bytes]:
    return capture_at_router(tb, vp, pcap, "ip")


def _scan_captured(tb: Testbed, vp: str, argv: list[str], pcap: Path, settle: float) -> None:
    """Run a scan to completion while the router captures what the VP sends."""
    capture = _capture(tb, vp, pcap)
    try:
        done = tb.run(vp, argv, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        time.sleep(settle)
    finally:
        _stop(capture)


def _probes_on_wire(pcap: Path) -> Counter[tuple[str, int, int]]:
    from scapy.all import ICMP, IP, TCP, UDP, PcapReader

    seen: Counter[tuple[str, int, int]] = Counter()
    with PcapReader(str(pcap)) as packets:
        for packet in packets:
            if IP not in packet:
                continue
            ip = packet[IP]
            # Only probes: the VP's own kernel also answers SYN-ACKs with RSTs and unexpected UDP
            # replies with port unreachables, as it does for ZMap.
            if TCP in packet and packet[TCP].flags == "S":
                seen[(ip.dst, ip.proto, packet[TCP].dport)] += 1
            elif UDP in packet:
                seen[(ip.dst, ip.proto, packet[UDP].dport)] += 1
            elif ICMP in packet and packet[ICMP].type == 8:
                seen[(ip.dst, ip.proto, -1)] += 1
    return seen


def _wait_for_orphaned_receiver(output: Path, limit_s: float = 30.0) -> None:
    """Wait until the killed scan's receiver has drained and let go of the checkpoint lock."""
    from liveness.scan.checkpoint import wait_for_unlock
    from liveness.scan.loop import default_checkpoint

    progress = f"{default_checkpoint(str(output))}.progress"
    assert wait_for_unlock(progress, limit_s), "the orphaned receiver never finished"


_stop = stop


def test_sigkill_then_resume_loses_nothing_and_probes_nothing_twice(
    small_testbed: Testbed, tmp_path: Path
) -> None:
    tb = small_testbed
    out = tmp_path / "replies.parquet"
    pcap = tmp_path / "wire.pcap"
    argv = _scan_argv(tb, "vp1", out, "-r", "3000", "--retransmit-delay", "0", "-c", "2")
    capture = _capture(tb, "vp1", pcap)
    try:
        scan = tb.popen("vp1", argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(2.5)
        assert scan.poll() is None, "the scan ended before it could be killed"
        scan.kill()  # SIGKILL: no handler runs; the receiver drains, then closes the output
        scan.wait()
        _wait_for_orphaned_receiver(out)
        killed_at_rows = _replies(out).num_rows
        assert killed_at_rows > 0  # what was received before the kill is readable
        # The orphaned receiver says how the scan ended, and what it wrote.
        meta = json.loads(Path(f"{out}.meta.json").read_text())
        assert meta["interrupted"].startswith("killed")
        assert meta["rows_written"] == killed_at_rows
        resumed = tb.run("vp1", [*argv, "--resume"], capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        time.sleep(0.5)
    finally:
        _stop(capture)
    on_wire = _probes_on_wire(pcap)
    population = sum(ipaddress.IPv4Network(t).num_addresses for t in tb.targets)
    assert sum(on_wire.values()) == population * 9  # nothing lost ...
    assert max(on_wire.values()) == 1  # ... and nothing probed twice
    table = _replies(out)
    found = _found(table.filter(pc.invert(table["repeat"])))
    assert _truth_for(tb, "vp1") == found


def test_packets_on_the_wire_stay_inside_the_targets_minus_the_blocklist(
    small_testbed: Testbed, tmp_path: Path
) -> None:
    tb = small_testbed
    out = tmp_path / "replies.parquet"
    pcap = tmp_path / "wire.pcap"
    blocklist = tmp_path / "block.txt"
    blocked = [ipaddress.IPv4Network("198.18.1.0/24"), ipaddress.IPv4Network("198.18.2.128/25")]
    blocklist.write_text("".join(f"{net}\n" for net in blocked))
    argv = _scan_argv(
        tb, "vp1", out, "-b", str(blocklist), "-r", "20000", "--retransmit-delay", "0", "-c", "1"
    )
    _scan_captured(tb, "vp1", argv, pcap, 0.5)
    targets = [ipaddress.IPv4Network(t) for t in tb.targets]
    destinations = {ipaddress.IPv4Address(dst) for dst, _, _ in _probes_on_wire(pcap)}
    assert destinations  # the scan did send
    assert all(any(d in t for t in targets) for d in destinations)
    assert not any(d in b for d in destinations for b in blocked)
    expected = sum(t.num_addresses for t in targets) - sum(b.num_addresses for b in blocked)
    assert len(destinations) == expected


def test_the_union_of_shards_equals_the_unsharded_scan(
    small_testbed: Testbed, tmp_path: Path
) -> None:
    tb = small_testbed
    common = ("-e", "11", "-r", "20000", "--retransmit-delay", "0", "-c", "1")
    found: list[set[tuple[int, str, str, int]]] = []
    targets_per_shard: list[int] = []
    for name, extra in (("all", ()), ("s0", ("--shards", "2", "--shard", "0")),
                        ("s1", ("--shards", "2", "--shard", "1"))):  # fmt: skip
        out = tmp_path / f"{name}.parquet"
        done = tb.run("vp1", _scan_argv(tb, "vp1", out, *common, *extra), capture_output=True,
                      text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        table = _replies(out)
        found.append(_found(table.filter(pc.invert(table["repeat"]))))
        targets_per_shard.append(json.loads(Path(f"{out}.meta.json").read_text())["targets_probed"])
    unsharded, shard0, shard1 = found
    assert shard0 and shard1 and not {t for t, *_ in shard0} & {t for t, *_ in shard1}
    assert shard0 | shard1 == unsharded
    assert targets_per_shard[1] + targets_per_shard[2] == targets_per_shard[0]


def test_the_requested_rate_is_kept_within_three_percent_on_the_wire(
    small_testbed: Testbed, tmp_path: Path
) -> None:
    from scapy.all import IP, PcapReader

    tb = small_testbed
    out = tmp_path / "replies.parquet"
    pcap = tmp_path / "wire.pcap"
    rate = 4000
    argv = _scan_argv(tb, "vp1", out, "-r", str(rate), "--retransmit-delay", "0", "-c", "0")
    _scan_captured(tb, "vp1", argv, pcap, 0.3)
    probes = _probes_on_wire(pcap)
    with PcapReader(str(pcap)) as packets:
        times = [float(p.time) for p in packets if IP in p and p[IP].src == tb.vps["vp1"].src_ip]
    sent = sum(probes.values())
    achieved = (sent - 1) / (max(times) - min(times))
    assert abs(achieved - rate) / rate < 0.03, achieved


def test_no_second_exceeds_the_rate_across_retransmission_pauses(tmp_path: Path) -> None:
    """``-r`` is a promise: with retransmission passes 3 s apart (idle gaps between them), no
    one-second window on the wire (a capture at the router) holds more than 1.03 x the rate."""
    import numpy as np

    from liveness.net.pcap import read_pcap

    rate = 20_000
    out = tmp_path / "replies.parquet"
    pcap = tmp_path / "wire.pcap"
    with Testbed(load_spec("paper")) as tb:
        argv = _scan_argv(
            tb, "vp1", out, "-r", str(rate), "-n", "4000", "--retransmit-delay", "3",
            "--retransmissions", "2", "-c", "1", "-u", str(tmp_path / "status.csv"),
        )  # fmt: skip
        _scan_captured(tb, "vp1", argv, pcap, 0.3)
        source = int(ipaddress.IPv4Address(tb.vps["vp1"].src_ip))
    frames, _ = read_pcap(pcap)
    data = frames.frames
    src = data[:, 26:30].copy().view(">u4")[:, 0]
    proto = data[:, 23]
    probe = (
        ((proto == 1) & (data[:, 34] == 8)) | ((proto == 6) & (data[:, 47] == 0x02)) | (proto == 17)
    )
    times = np.sort(frames.ts_ns[(src == source) & probe]) / 1e9
    assert times.size == 3 * 4000 * 9  # every probe of the three passes, once
    ends = np.searchsorted(times, times + 1.0, side="left")
    busiest = int((ends - np.arange(times.size)).max())
    meta = json.loads(Path(f"{out}.meta.json").read_text())
    assert busiest <= 1.03 * rate, busiest
    assert meta["rate_max_1s_pps"] <= 1.03 * rate
    assert meta["rate_achieved_pps"] <= 1.03 * rate
    assert meta["sendto_failures"] == 0
