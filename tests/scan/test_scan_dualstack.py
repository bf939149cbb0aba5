"""``liveness scan`` over both families on the ``dualstack`` testbed: real packets, real kernels.

The spec's schedule (an IPv6 island, an IPv6 peninsula, an outage) is left out so that what a
VP sees is fixed; vp1's paths carry no injected loss, so a scan must find exactly the ground
truth, per family. A capture at the router shows what left the VP: which addresses, how often.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from reply_rows import address, row_tuples
from router_capture import capture_at_router, stop

from liveness.analysis import summarize
from liveness.output import read_replies
from liveness.testbed import Testbed, load_spec
from liveness.testbed.testbed import LIVENESS_CLI

pytestmark = [pytest.mark.root, pytest.mark.slow]

ALLOW = "198.18.0.0/15\n2001:2::/48\n"
Row = tuple[int, str, str, str, str, int]


@pytest.fixture(scope="module")
def dualstack() -> Iterator[Testbed]:
    spec = replace(load_spec("dualstack"), events=())
    with Testbed(spec) as tb:
        yield tb


def _walks(tb: Testbed) -> list[str]:
    """The IPv6 population as prefix walks: one target, ::1, per /64."""
    return [f"{net}-64" for net in tb.targets6]


def _argv(tb: Testbed, out: Path, targets: list[str], *extra: str) -> list[str]:
    allow = out.parent / "allow.txt"
    allow.write_text(ALLOW)
    vp = tb.vps["vp1"]
    scan = [*vp.scan_argv(targets, allow, "-o", str(out), "-m", f"{out}.meta.json", "-q")]
    return [*scan, *vp.sender_options6(), *extra]


def _rows(table: pa.Table) -> set[Row]:
    """(af, target, probe, reply, responder, code of errors) of every row."""
    return row_tuples(table)


def _truth(tb: Testbed, vp: str) -> set[Row]:
    truth, _ = tb.truth()
    return _rows(truth.filter(pc.equal(truth["vp"], vp)))


def _replies(path: Path) -> pa.Table:
    return pa.Table.from_batches(list(read_replies(str(path))))


def _capture(tb: Testbed, pcap: Path) -> subprocess.Popen[bytes]:
    """Everything vp1 sends, both families."""
    return capture_at_router(tb, "vp1", pcap)


_stop = stop


def _on_wire(pcap: Path) -> tuple[Counter[tuple[str, int, int]], set[str], set[str]]:
    """Probes seen (destination, protocol, port; -1 for echo) and every source and
    destination address of every IP packet."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
    from scapy.utils import PcapReader

    probes: Counter[tuple[str, int, int]] = Counter()
    sources: set[str] = set()
    destinations: set[str] = set()
    with PcapReader(str(pcap)) as packets:
        for packet in packets:
            if IP in packet:
                net = packet[IP]
            elif IPv6 in packet:
                net = packet[IPv6]
            else:
                sources.add("non-IP")
                continue
            sources.add(net.src)
            destinations.add(net.dst)
            if TCP in packet and packet[TCP].flags == "S":
                probes[(net.dst, 6, packet[TCP].dport)] += 1
            elif UDP in packet:
                probes[(net.dst, 17, packet[UDP].dport)] += 1
            elif (ICMP in packet and packet[ICMP].type == 8) or ICMPv6EchoRequest in packet:
                probes[(net.dst, 1, -1)] += 1
    return probes, sources, destinations


def _population(tb: Testbed) -> set[str]:
    four = {str(a) for net in tb.targets for a in ipaddress.ip_network(net)}
    six = {str(net.network_address + 1) for t in tb.targets6 for net in _slash64s(t)}
    return four | six


def _slash64s(cidr: str) -> Iterator[ipaddress.IPv6Network]:
    yield from ipaddress.IPv6Network(cidr).subnets(new_prefix=64)


def test_default_probes_over_both_families_find_exactly_the_truth(
    dualstack: Testbed, tmp_path: Path
) -> None:
    tb = dualstack
    out = tmp_path / "replies.parquet"
    pcap = tmp_path / "wire.pcap"
    targets = [*tb.targets, *_walks(tb)]
    argv = _argv(tb, out, targets, "-r", "20000", "--retransmit-delay", "1", "-c", "2")
    capture = _capture(tb, pcap)
    try:
        done = tb.run("vp1", argv, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        time.sleep(0.5)
    finally:
        _stop(capture)
    table = _replies(out)
    found = _rows(table.filter(pc.invert(table["repeat"])))
    truth = _truth(tb, "vp1")
    for af in (4, 6):
        mine = {r for r in found if r[0] == af}
        want = {r for r in truth if r[0] == af}
        assert want, af
        assert mine - want == set(), (af, sorted(mine - want)[:10])
        assert want - mine == set(), (af, sorted(want - mine)[:10])
    six = table.filter(pc.equal(table["af"], 6))
    categories = set(pc.unique(pc.cast(six["reply"], pa.string())).to_pylist())
    assert {"echo_reply", "synack", "rst", "udp", "icmp_unreach", "icmp_time_exceeded"} <= (
        categories
    )
    codes = set(
        six.filter(pc.equal(pc.cast(six["reply"], pa.string()), "icmp_unreach"))[
            "icmp_code"
        ].to_pylist()
    )
    assert {0, 1, 3, 4, 5, 6} <= codes  # every ICMPv6 unreachable code the testbed makes
    meta = json.loads(Path(f"{out}.meta.json").read_text())
    hosts = len(_population(tb))
    assert meta["targets_total"] == hosts
    assert meta["packets_sent"] == 2 * 9 * hosts
    assert meta["source_ip6"] == tb.vps["vp1"].src_ip6
    # What left the VP: every probe of every target twice, to the targets and nowhere else.
    probes, sources, destinations = _on_wire(pcap)
    assert sum(probes.values()) == 2 * 9 * hosts and set(probes.values()) == {2}
    assert {dst for dst, _, _ in probes} == _population(tb)
    vp = tb.vps["vp1"]
    assert sources == {vp.src_ip, vp.src_ip6}
    # The VP's kernel answers unexpected SYN-ACKs with RSTs to the targets: nothing else.
    assert destinations <= _population(tb)


@pytest.mark.parametrize("iid", ["low", "fixed:abcd", "random"])
def test_prefix_walks_reach_exactly_the_expected_slash64s(
    dualstack: Testbed, tmp_path: Path, iid: str
) -> None:
    """``2001:2:0:300::/56-64`` sends one probe into each of the 256 /64s, at the chosen IID
    (the random IIDs are the dry run's, for the same seed)."""
    tb = dualstack
    walk = "2001:2:0:300::/56-64"
    out = tmp_path / "replies.parquet"
    pcap = tmp_path / "wire.pcap"
    common = ["--probes", "icmp_echo", "--iid", iid, "-e", "5", "--retransmit-delay", "0"]
    argv = _argv(tb, out, [walk], *common, "-r", "5000", "-c", "1")
    capture = _capture(tb, pcap)
    try:
        done = tb.run("vp1", argv, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        time.sleep(0.3)
    finally:
        _stop(capture)
    probes, _, _ = _on_wire(pcap)
    reached = [ipaddress.IPv6Address(dst) for dst, _, _ in probes]
    assert len(reached) == 256 and set(probes.values()) == {1}
    slash64s = {ipaddress.IPv6Network(f"{a}/64", strict=False) for a in reached}
    assert slash64s == set(_slash64s("2001:2:0:300::/56"))
    iids = {int(a) & (2**64 - 1) for a in reached}
    if iid == "low":
        assert iids == {1}
        table = _replies(out)  # the hosts at ::1 answer as the truth says
        answered = {address(6, None, t) for t in table["target6"].to_pylist()}
        want = {r[1] for r in _truth(tb, "vp1") if r[0] == 6 and r[2] == "icmp_echo"}
        assert answered == {w for w in want if ipaddress.IPv6Address(w) in _net(walk)}
    elif iid == "fixed:abcd":
        assert iids == {0xABCD}
    else:
        assert len(iids) == 256  # a different keyed IID in every /64 ...
        allow = tmp_path / "allow.txt"
        dry = subprocess.run(
            [*LIVENESS_CLI, "scan", "-d", walk, "-w", str(allow), *common, "--source-ip6",
             "2001:2::1"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        planned = {line.split()[2] for line in dry.stdout.splitlines()}
        assert planned == {str(a) for a in reached}  # ... the one the dry run planned


def _net(walk: str) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(walk.split("-")[0])


def test_sigkill_then_resume_probes_nothing_twice_over_both_families(
    dualstack: Testbed, tmp_path: Path
) -> None:
    tb = dualstack
    out = tmp_path / "replies.parquet"
    pcap = tmp_path / "wire.pcap"
    targets = ["198.18.2.0/24", "2001:2:0:200::/56-64"]
    argv = _argv(tb, out, targets, "-r", "600", "--retransmit-delay", "0", "-c", "2")
    capture = _capture(tb, pcap)
    try:
        scan = tb.popen("vp1", argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(2.0)
        assert scan.poll() is None, "the scan ended before it could be killed"
        scan.kill()
        scan.wait()
        from liveness.scan.checkpoint import wait_for_unlock
        from liveness.scan.loop import default_checkpoint

        assert wait_for_unlock(f"{default_checkpoint(str(out))}.progress", 30)
        resumed = tb.run("vp1", [*argv, "--resume"], capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        time.sleep(0.5)
    finally:
        _stop(capture)
    probes, _, _ = _on_wire(pcap)
    assert sum(probes.values()) == 512 * 9  # nothing lost ...
    assert set(probes.values()) == {1}  # ... and nothing probed twice
    six = {dst for dst, _, _ in probes if ":" in dst}
    assert len(six) == 256
    table = _replies(out)
    found = _rows(table.filter(pc.invert(table["repeat"])))
    want = {
        r for r in _truth(tb, "vp1")
        if ipaddress.ip_address(r[1]) in ipaddress.ip_network("198.18.2.0/24")
        or ipaddress.ip_address(r[1]) in ipaddress.ip_network("2001:2:0:200::/56")
    }  # fmt: skip
    assert found == want


def test_retransmission_recovers_ipv6_hosts_lost_in_bursts(tmp_path: Path) -> None:
    spec = load_spec(str(Path(__file__).with_name("burst_loss6.toml")))
    with Testbed(spec) as tb:
        out = tmp_path / "replies.parquet"
        walks = _walks(tb)
        argv = _argv(tb, out, walks, "--probes", "icmp_echo", "-r", "1000")
        argv += ["--retransmit-delay", "0.35", "-c", "2"]
        done = tb.run("vp1", argv, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        table = _replies(out)
        assert set(table["af"].to_pylist()) == {6}
        attempts = table["attempt"].to_pylist()
        targets = [address(6, None, t) for t in table["target6"].to_pylist()]
        first_try = {t for t, a in zip(targets, attempts, strict=True) if a == 0}
        second_try = {t for t, a in zip(targets, attempts, strict=True) if a == 1}
        population = 1024
        # Bursts drop everything for a while: one probe misses many hosts; the retransmission,
        # sent when the burst is over most of the time, finds most of them again.
        assert len(first_try) < 0.9 * population
        assert len(second_try - first_try) > 0.05 * population
        assert (first_try | second_try) <= _population(tb)


@pytest.fixture(scope="module")
def vp3_scan(dualstack: Testbed, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pa.Table]:
    """A scan of both families from vp3 (half of the probes to 2% of the IPv6 hosts are
    dropped) and vp3's ground truth."""
    tb = dualstack
    out = tmp_path_factory.mktemp("vp3") / "replies.parquet"
    allow = out.parent / "allow.txt"
    allow.write_text(ALLOW)
    vp = tb.vps["vp3"]
    argv = vp.scan_argv([*tb.targets, *_walks(tb)], allow, "-o", str(out), "-q")
    argv += [*vp.sender_options6(), "-r", "20000", "--retransmit-delay", "1", "-c", "2"]
    done = tb.run("vp3", argv, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    truth, _ = tb.truth()
    return out, truth.filter(pc.equal(truth["vp"], "vp3"))


def test_a_lossy_vp_sees_the_truth_but_for_its_injected_loss(
    vp3_scan: tuple[Path, pa.Table],
) -> None:
    """From vp3: nothing outside the truth, and everything of the truth but what sits on a
    lossy path."""
    out, mine = vp3_scan
    table = _replies(out)
    found = _rows(table.filter(pc.invert(table["repeat"])))
    want = _rows(mine)
    lossless = _rows(mine.filter(pc.equal(mine["loss"], 0.0)))
    assert len(lossless) < len(want)  # the spec does put loss on vp3's paths
    assert found <= want, sorted(found - want)[:10]
    assert lossless <= found, sorted(lossless - found)[:10]
    lossy6 = {r for r in want - lossless if r[0] == 6}
    assert lossy6 and len(lossy6 & found) > 0.5 * len(lossy6)  # 50% loss, two attempts


TCP_PORTS = (22, 23, 80, 443, 7547)
PROBE_FAMILIES = {
    "icmp": ("icmp_echo",),
    "tcp": tuple(f"tcp_syn:{port}" for port in TCP_PORTS),
    "udp": ("udp_dns", "udp_ntp"),
}


def _within(found: int, expected: set[str], lossy: set[str], what: str) -> None:
    """``found`` can miss lossy addresses only, and never finds more than the truth holds."""
    assert len(expected - lossy) <= found <= len(expected), (what, found, len(expected))


def test_analyses_of_each_family_lie_between_truth_less_lossy_and_truth(
    vp3_scan: tuple[Path, pa.Table],
) -> None:
    """``summarize`` of the lossy scan, each family's section against numbers worked out from
    the truth table alone: coverage per probe family, transport-active, SYN-ACK per port,
    tarpits, application-alive, router-sourced errors."""
    out, mine = vp3_scan
    summary = summarize([str(out)])
    truth = [
        {
            **row,
            "target": address(row["af"], row["target"], row["target6"]),
            "responder": address(row["af"], row["responder"], row["responder6"]),
        }
        for row in mine.to_pylist()
    ]
    for af, section in ((4, summary), (6, summary["ipv6"])):
        rows = [r for r in truth if r["af"] == af]
        assert rows and section is not None, af
        lossy = {r["target"] for r in rows if r["loss"] > 0}
        everyone: set[str] = set()
        for family, probes in PROBE_FAMILIES.items():
            alive = {r["responder"] for r in rows if r["probe"] in probes}
            everyone |= alive
            _within(section["coverage"]["families"][family]["alive"], alive, lossy, family)
        everyone |= {r["responder"] for r in rows if r["probe"] == "tcp_syn:random"}
        _within(section["coverage"]["all"], everyone, lossy, "all")
        tcp = [r for r in rows if r["probe"] in PROBE_FAMILIES["tcp"]]
        active = {
            r["target"]
            for r in tcp
            if r["reply"] in ("synack", "rst") and r["responder"] == r["target"]
        }
        assert active, af
        _within(section["transport"]["active"], active, lossy, "transport active")
        for port in TCP_PORTS:
            synack = {
                r["target"]
                for r in tcp
                if r["probe"] == f"tcp_syn:{port}" and r["reply"] == "synack"
            }
            _within(section["transport"]["ports"][str(port)]["alive"], synack, lossy, str(port))
        ports: dict[str, set[str]] = {}
        for r in rows:
            if r["reply"] == "synack":
                ports.setdefault(r["target"], set()).add(r["probe"])
        every_port = {*PROBE_FAMILIES["tcp"], "tcp_syn:random"}
        tarpits = {target for target, answered in ports.items() if answered >= every_port}
        _within(section["tarpits"]["tarpits"], tarpits, lossy, "tarpits")
        for probe in PROBE_FAMILIES["udp"]:
            valid = {r["target"] for r in rows if r["probe"] == probe and r["app_valid"]}
            assert valid, (af, probe)
            _within(section["application"][probe]["alive"], valid, lossy, probe)
        for family, probes in PROBE_FAMILIES.items():
            routed = {
                r["target"]
                for r in rows
                if r["probe"] in probes
                and str(r["reply"]).startswith("icmp_")
                and r["responder"] != r["target"]
            }
            errors = section["icmp_errors"]["families"][family]["from_other_address"]
            _within(errors["targets"], routed, lossy, f"{family} router errors")
    assert summary["families"]["ipv6"]["rows"] > 0 and summary["families"]["ipv4"]["rows"] > 0


def test_source_and_gateway_come_from_the_ipv6_route_and_the_ndp_table(
    dualstack: Testbed, tmp_path: Path
) -> None:
    """No -i, -S, -G or --source-ip6: the scan asks ``ip -6 route get`` and the NDP table, as a
    user on a dual-stack host would, and reaches the hosts."""
    tb = dualstack
    out = tmp_path / "replies.parquet"
    allow = tmp_path / "allow.txt"
    allow.write_text(ALLOW)
    argv = [*LIVENESS_CLI, "scan", "2001:2:0:300::/56-64", "-w", str(allow), "--probes"]
    argv += ["icmp_echo", "-r", "5000", "--retransmit-delay", "0", "-c", "1", "-q"]
    argv += ["-o", str(out), "-m", f"{out}.meta.json"]
    argv += ["--notes", "route test", "--user-metadata", '{"campaign": [1, 2]}']
    done = tb.run("vp1", argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    meta = json.loads(Path(f"{out}.meta.json").read_text())
    assert meta["notes"] == "route test" and meta["user_metadata"] == {"campaign": [1, 2]}
    vp = tb.vps["vp1"]
    assert meta["source_ip6"] == vp.src_ip6
    assert meta["interface"] == vp.ifname
    assert meta["gateway_mac"] == vp.gateway_mac
    table = _replies(out)
    want = {r[1] for r in _truth(tb, "vp1") if r[0] == 6 and r[2] == "icmp_echo"}
    want = {w for w in want if ipaddress.IPv6Address(w) in _net("2001:2:0:300::/56-64")}
    assert {address(6, None, t) for t in table["target6"].to_pylist()} == want
