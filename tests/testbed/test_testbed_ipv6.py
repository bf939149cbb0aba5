"""IPv6 in the testbed: specs and plans without root; with root, real namespaces probed with
scapy over IPv6 from inside a VP, a capture at the router, the per-family schedule, the truth
CLI and ``down``."""

from __future__ import annotations

import csv
import ipaddress
import json
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from probing import probe_from_vp

from liveness.errors import InputError
from liveness.safety import (
    in_benchmark_range,
    require_benchmark_net,
    require_benchmark_range,
    require_benchmark_range6,
)
from liveness.testbed import Testbed, load_spec
from liveness.testbed.behaviours import BUILTIN_BEHAVIOURS, PROBES, answers
from liveness.testbed.layout import layout_for
from liveness.testbed.plan import host6_text, make_plan
from liveness.testbed.rules import inet_ruleset, router_ruleset, schedule_cuts
from liveness.testbed.state import existing_namespaces, list_ids, process_alive, state_dir
from liveness.testbed.truth_schema import (
    SCHEDULE_SCHEMA,
    TRUTH_SCHEMA,
    truth_text,
    upgrade_schedule,
    upgrade_truth,
)

LIVENESS = str(Path(__file__).parents[2] / ".venv" / "bin" / "liveness")
BENCH4 = ipaddress.IPv4Network("198.18.0.0/15")
BENCH6 = ipaddress.IPv6Network("2001:2::/48")

BASE6 = """
name = "t6"
population = ["198.18.0.0/22"]
population6 = ["2001:2::/54"]
[[vp]]
name = "vp1"
"""


def _spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def _a6(raw: bytes | None) -> str:
    assert raw is not None
    return str(ipaddress.IPv6Address(raw))


def _row_addresses(row: dict[str, Any]) -> tuple[str, str]:
    """(target, responder) of a truth row as text, in its family."""
    if row["af"] == 6:
        return _a6(row["target6"]), _a6(row["responder6"])
    return str(ipaddress.IPv4Address(row["target"])), str(ipaddress.IPv4Address(row["responder"]))


# -- the safety rule -------------------------------------------------------------------------


def test_safety_accepts_only_the_benchmarking_ranges() -> None:
    assert require_benchmark_range6("2001:2:0:105::1", "k") == ipaddress.IPv6Network(
        "2001:2:0:105::1/128"
    )
    assert require_benchmark_net("2001:2::/48", "k").version == 6
    assert require_benchmark_net("198.18.0.0/15", "k").version == 4
    for bad in ("2001:db8::/32", "2001:2:1::/48", "2001:2::/47", "::ffff:198.18.0.1", "fe80::1"):
        with pytest.raises(
            InputError, match=r"where: .* outside the benchmarking range 2001:2::/48"
        ):
            require_benchmark_net(bad, "where")
    with pytest.raises(InputError, match=r"not an IPv4 address.*keys ending in 6"):
        require_benchmark_range("2001:2::1", "where")  # the IPv4 keys say where IPv6 goes
    with pytest.raises(InputError, match="not an IPv6 address"):
        require_benchmark_range6("198.18.0.1", "where")
    assert in_benchmark_range("2001:2:0:ffff::1") and in_benchmark_range("198.19.255.254")
    assert not in_benchmark_range("fe80::1") and not in_benchmark_range("ff02::16")
    assert not in_benchmark_range("2001:3::1") and not in_benchmark_range("10.0.0.1")


# -- specs and plans ---------------------------------------------------------------------------


def test_dualstack_spec_plans_both_families() -> None:
    plan = make_plan(load_spec("dualstack"))
    assert len(plan.population) == len(plan.population6) == 2048
    assert plan.targets == ["198.18.0.0/21"] and plan.targets6 == ["2001:2::/53"]
    assert plan.router_ip6 == "2001:2:0:ff00::fe" and plan.inet_ip6 == "2001:2:0:ff00::fd"
    assert plan.vp_ips6 == {f"vp{k}": f"2001:2:0:ff00::{k}" for k in (1, 2, 3)}
    assert plan.hosts6()[:2] == ["2001:2::1", "2001:2:0:1::1"]  # RFC 5952 text
    every = np.arange(0, 1 << 16, dtype=np.uint64) | np.uint64(0x2001_0002_0000 << 16)
    odd = np.array([1 << 16, 0, 5 << 32, 7], dtype=np.uint64)  # zero groups elsewhere
    for prefixes in (every, odd):
        assert host6_text(prefixes) == [
            ipaddress.IPv6Address(int(v) << 64 | 1).compressed for v in prefixes.tolist()
        ]
    # dual-stack hosts: the IPv4 address 198.18.X.Y and 2001:2:0:XXYY::1 share a behaviour
    for name in ("web_server", "tarpit", "dns_server", "router_prohibit", "router_ttl_exceeded"):
        v4, v6 = plan.assigned[name], plan.assigned6[name]
        offsets = [int(a) - int(BENCH4.network_address) for a in v4]
        twins = [str(ipaddress.IPv6Address(f"2001:2:0:{k:x}::1")) for k in offsets]
        assert twins == host6_text(v6), name
    assert "cpe" in plan.assigned and "cpe" not in plan.assigned6  # IPv4-only hosts
    assert len(plan.assigned6["icmp_only"]) > len(plan.assigned["icmp_only"])  # IPv6-only ones
    for name in ("router_policy_fail", "router_reject_route"):  # ICMPv6 only
        assert name in plan.assigned6 and name not in plan.assigned
    assert set(plan.assigned6) | {"cpe"} == set(plan.assigned) | {
        "router_policy_fail",
        "router_reject_route",
    }


def test_ipv4_only_specs_plan_as_before() -> None:
    """No population6: no IPv6 anywhere, and the assignment of the shipped specs is unchanged."""
    plan = make_plan(load_spec("small"))
    assert not plan.has_ipv6 and plan.router_ip6 is None and not plan.vp_ips6
    assert len(plan.population6) == 0 and not plan.assigned6
    truth = plan.truth()
    assert set(truth["af"].to_pylist()) == {4} and truth["target6"].null_count == truth.num_rows
    assert "ip6" not in inet_ruleset(plan)
    layout = layout_for(plan, "x")
    assert "ip6" not in router_ruleset(plan, layout, schedule_cuts(plan, layout))
    tb = Testbed(load_spec("small"))
    vp = tb.vps["vp1"]
    assert vp.src_ip6 is None and vp.gateway_ip6 is None
    assert vp.sender_options_dual() == vp.sender_options()


def test_ipv6_truth_columns_and_codes() -> None:
    plan = make_plan(load_spec("dualstack"))
    truth = plan.truth()
    assert truth.schema.equals(TRUTH_SCHEMA)
    rows = truth.to_pylist()
    v6 = [r for r in rows if r["af"] == 6]
    v4 = [r for r in rows if r["af"] == 4]
    assert v6 and v4
    assert all(r["target"] == 0 == r["responder"] and len(r["target6"]) == 16 for r in v6)
    assert all(r["target6"] is None and r["responder6"] is None for r in v4)
    assert {r["probe"] for r in v6} == set(PROBES)
    by_kind: dict[tuple[str, int, bool], set[str]] = {}
    for r in v6:
        if r["vp"] == "vp1":
            _, responder = _row_addresses(r)
            key = (r["reply"], r["icmp_code"], responder == plan.router_ip6)
            by_kind.setdefault(key, set()).add(r["probe"])
    # the router's ICMPv6 errors: no route 0, admin 1, address unreachable 3, policy 5, reject 6
    for code in (0, 1, 3, 5, 6):
        assert by_kind[("icmp_unreach", code, True)] == set(PROBES)
    assert by_kind[("icmp_time_exceeded", 0, True)] == set(PROBES)
    assert "udp_ntp" in by_kind[("icmp_unreach", 4, False)]  # a closed UDP port: code 4
    assert "tcp_syn:22" in by_kind[("icmp_unreach", 1, False)]  # a host's admin-prohibited
    assert "tcp_syn:random" in by_kind[("synack", -1, False)]  # tarpits
    assert answers(BUILTIN_BEHAVIOURS["host_prohibit"], 4)["udp_dns"].icmp_code == 13  # type: ignore[union-attr]
    # the IPv6-only lossy path is vp3's, on IPv6 rows only
    lossy = {(r["vp"], r["af"]) for r in rows if r["loss"] == 0.5}
    assert lossy == {("vp3", 6)}


def test_truth_text_has_rfc5952_addresses() -> None:
    plan = make_plan(load_spec("dualstack"))
    text = truth_text(plan.truth()).to_pylist()
    v6 = [r for r in text if r["af"] == 6]
    v4 = [r for r in text if r["af"] == 4]
    for row in v6:
        for key in ("target", "responder"):
            value = row[key]
            assert value == ipaddress.IPv6Address(value).compressed  # RFC 5952: lower, shortest
            assert ipaddress.IPv6Address(value) in BENCH6
    assert {"2001:2:0:ff00::fe", "2001:2:0:500::1"} <= {r["responder"] for r in v6} | {
        r["target"] for r in v6
    }
    assert all(ipaddress.IPv4Address(r["target"]) in BENCH4 for r in v4)


def test_old_truth_and_schedule_files_still_read() -> None:
    old_truth = pa.table(
        {
            "target": pa.array([1], pa.uint32()),
            "probe": ["icmp_echo"],
            "vp": ["vp1"],
            "reply": ["echo_reply"],
            "responder": pa.array([1], pa.uint32()),
            "icmp_code": pa.array([-1], pa.int16()),
            "app_valid": [False],
            "loss": [0.0],
        }
    )
    new = upgrade_truth(old_truth)
    assert new.schema.equals(TRUTH_SCHEMA)
    assert new.to_pylist()[0] == {
        **old_truth.to_pylist()[0],
        "af": 4,
        "target6": None,
        "responder6": None,
        "app_proto": "",
    }
    assert truth_text(old_truth)["target"].to_pylist() == ["0.0.0.1"]
    old_schedule = pa.table(
        {"kind": ["outage"], "scope": ["198.18.1.0/24"], "vps_down": ["a"], "start": [1.0],
         "end": [2.0]}
    )  # fmt: skip
    assert upgrade_schedule(old_schedule).schema.equals(SCHEDULE_SCHEMA)
    assert upgrade_schedule(old_schedule)["af"].to_pylist() == [4]


def test_ipv6_rulesets_and_cuts() -> None:
    plan = make_plan(load_spec("dualstack"))
    layout = layout_for(plan, "abc")
    inet = inet_ruleset(plan)
    assert "table ip liveness" in inet and "table ip6 liveness" in inet
    for needle in (
        "icmpv6 type echo-request accept",
        "reject with icmpv6 type admin-prohibited",
        "reject with icmpv6 type port-unreachable",
        "ip6 daddr @tarpit meta l4proto tcp tproxy to :4",
        "ip6 daddr 2001:2:0:ff00::fd accept",
    ):
        assert needle in inet, needle
    cuts = schedule_cuts(plan, layout)
    router = router_ruleset(plan, layout, cuts)
    for kind in ("admin-prohibited", "addr-unreachable", "no-route", "policy-fail", "reject-route"):
        assert f"reject with icmpv6 type {kind}" in router
    assert "ip6 daddr @ttl_exceeded ip6 hoplimit set 1" in router
    assert "ip daddr @ttl_exceeded ip ttl set 1" in router
    summary = {(c.set_name, c.af, c.ifnames) for c in cuts}
    assert summary == {
        ("ev0_out", 6, ("r-vp1",)),  # the IPv6 island: vp1 to all of 2001:2::/48 but its LAN
        ("ev0_in", 6, ("r-vp2", "r-vp3")),  # and the others to its IPv6 LAN
        ("ev1", 6, ("r-vp2",)),  # the IPv6 peninsula
        ("ev2", 4, ("r-vp1", "r-vp2", "r-vp3")),  # the dual-stack outage, one cut per family
        ("ev2", 6, ("r-vp1", "r-vp2", "r-vp3")),
    }
    out = next(c for c in cuts if c.set_name == "ev0_out")
    lan6 = ipaddress.IPv6Network("2001:2:0:700::/56")
    assert not any(n.overlaps(lan6) for n in out.nets)
    assert sum(n.num_addresses for n in out.nets) == BENCH6.num_addresses - lan6.num_addresses
    schedule = plan.schedule()
    assert schedule.schema.equals(SCHEDULE_SCHEMA)
    assert [(r["kind"], r["af"]) for r in schedule.to_pylist()] == [
        ("island", 6),
        ("peninsula", 6),
        ("outage", 4),
        ("outage", 6),
    ]


def test_ipv6_only_testbed_and_family_selection(tmp_path: Path) -> None:
    text = """
name = "only6"
population = []
population6 = ["2001:2:0:100::/56"]
[[vp]]
name = "v"
[[assign]]
behaviour = "linux_host"
addresses = ["2001:2:0:105::1", "2001:2:0:106::9"]
[[assign]]
behaviour = "icmp_only"
fraction = 0.5
"""
    plan = make_plan(load_spec(_spec(tmp_path, text)))
    assert len(plan.population) == 0 and len(plan.population6) == 256
    assert host6_text(plan.assigned6["linux_host"]) == ["2001:2:0:105::1"]  # ::9 is no host
    assert len(plan.assigned6["icmp_only"]) == 128 and not plan.assigned
    assert set(plan.truth()["af"].to_pylist()) == {6}


def test_vantage_point_sender_options() -> None:
    tb = Testbed(load_spec("dualstack"))
    vp = tb.vps["vp2"]
    assert (vp.src_ip6, vp.gateway_ip6) == ("2001:2:0:ff00::2", "2001:2:0:ff00::fe")
    assert vp.sender_options() == ["-i", "eth0", "-S", "198.19.255.2", "-G", vp.gateway_mac,
                                   "--vp", "vp2"]  # fmt: skip
    assert vp.sender_options6() == ["--source-ip6", "2001:2:0:ff00::2"]
    assert vp.sender_options_dual() == [*vp.sender_options(), "--source-ip6", "2001:2:0:ff00::2"]
    assert tb.targets6 == ["2001:2::/53"]


REFUSED_IPV6 = [
    ('population6 = ["2001:db8::/48"]\n', "population6"),
    ('population6 = ["2001:2:1::/48"]\n', "population6"),  # the /48 next door
    ('population6 = ["2001:2::/54"]\ninfrastructure6 = "2001:db8::/56"\n', "infrastructure6"),
    (
        'population6 = ["2001:2::/54"]\n[[vp]]\nname = "v"\nlan6 = "fe80::/64"\n',
        "vp[0].lan6",
    ),
    (
        'population6 = ["2001:2::/54"]\n[[assign]]\nbehaviour = "icmp_only"\n'
        'blocks = ["2001:db8::/64"]\n',
        "assign[0].blocks",
    ),
    (
        'population6 = ["2001:2::/54"]\n[[assign]]\nbehaviour = "icmp_only"\n'
        'addresses = ["::ffff:198.18.0.1"]\n',
        "assign[0].addresses",
    ),
    (
        'population6 = ["2001:2::/54"]\n[[loss]]\nloss = 0.1\nblocks = ["2001:3::/64"]\n',
        "loss[0].blocks",
    ),
    (
        'population6 = ["2001:2::/54"]\n[[loss]]\nloss = 0.1\naddresses = ["2001:db8::1"]\n',
        "loss[0].addresses",
    ),
    (
        'population6 = ["2001:2::/54"]\n[[event]]\nkind = "outage"\n'
        'blocks = ["2001:db8::/56"]\nstart = 1\n',
        "event[0].blocks",
    ),
]


@pytest.mark.parametrize(("extra", "key"), REFUSED_IPV6)
def test_ipv6_outside_2001_2_is_refused_naming_file_and_key(
    tmp_path: Path, extra: str, key: str
) -> None:
    text = 'name = "t"\npopulation = ["198.18.0.0/22"]\n' + extra
    if "[[vp]]" not in extra:
        text += '[[vp]]\nname = "v"\n'
    with pytest.raises(InputError) as caught:
        make_plan(load_spec(_spec(tmp_path, text)))
    message = str(caught.value)
    assert "spec.toml" in message and key in message, message
    assert "outside the benchmarking range 2001:2::/48" in message, message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            BASE6.replace('population6 = ["2001:2::/54"]\n', "")
            + '[[assign]]\nbehaviour = "icmp_only"\nfraction = 0.1\nfamilies = ["6"]\n',
            "assign[0].families: IPv6 needs a population6",
        ),
        (
            BASE6 + '[[assign]]\nbehaviour = "router_reject_route"\nfraction = 0.1\n'
            'families = ["4", "6"]\n',
            "ICMPv6 only",
        ),
        (
            BASE6 + '[[assign]]\nbehaviour = "icmp_only"\nfraction = 0.1\nfamilies = ["5"]\n',
            "is not a family",
        ),
        (BASE6.replace("2001:2::/54", "2001:2::/80"), "longer than /64"),
        (
            BASE6.replace('population = ["198.18.0.0/22"]', 'population = ["2001:2::/64"]'),
            "keys ending in 6",
        ),
        (
            BASE6 + '[[event]]\nkind = "outage"\nfamily = "6"\nblocks = ["198.18.1.0/24"]\n',
            'event[0].blocks: 198.18.1.0/24 is IPv4 but family = "6"',
        ),
        (
            BASE6.replace('name = "vp1"', 'name = "vp1"\nlan = "198.18.3.0/24"')
            + '[[event]]\nkind = "island"\nvps = ["vp1"]\nstart = 1\n',
            "needs a lan6 block",
        ),
        (
            BASE6.replace('population6 = ["2001:2::/54"]\n', "") + 'lan6 = "2001:2::/56"\n',
            "vp[0].lan6: the spec has no population6",
        ),
        (
            BASE6 + '[[assign]]\nbehaviour = "icmp_only"\nblocks = ["2001:2:0:400::/64"]\n'
            'families = ["6"]\n',
            "hold no population address",
        ),
        (
            BASE6 + '[[assign]]\nbehaviour = "icmp_only"\nfraction = 0.7\nfamilies = ["6"]\n'
            '[[assign]]\nbehaviour = "rst_only"\nfraction = 0.7\n',
            "more than 1",
        ),
    ],
)
def test_bad_ipv6_specs_are_refused_with_a_clear_message(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(InputError) as caught:
        make_plan(load_spec(_spec(tmp_path, text)))
    assert message in str(caught.value)
    assert "spec.toml" in str(caught.value)


# -- real namespaces ---------------------------------------------------------------------------


def _no_events(name: str) -> str:
    """A shipped spec's text without its schedule (the events come last in the file), so that
    probes at any time see every behaviour."""
    from importlib import resources

    text = (resources.files("liveness.testbed") / "specs" / f"{name}.toml").read_text()
    return text.split("\n[[event]]")[0] + "\n"


@pytest.fixture(scope="module")
def dual(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    path = tmp_path_factory.mktemp("dual") / "dualstack.toml"
    path.write_text(_no_events("dualstack"))
    tb = Testbed(load_spec(path))
    try:
        tb.__enter__()
        yield tb
    finally:
        tb.down()


_probe = probe_from_vp


def _link_counters(tb: Testbed) -> dict[tuple[str, str], int]:
    """(namespace, interface) -> packets sent, for every veth of the testbed."""
    out = {}
    for ns in tb.layout.namespaces:
        links = subprocess.run(
            ["ip", "-n", ns, "-s", "-j", "link", "show"], capture_output=True, text=True, check=True
        )
        for link in json.loads(links.stdout):
            if link["ifname"] != "lo":
                out[(ns, link["ifname"])] = int(link["stats64"]["tx"]["packets"])
    return out


class RouterCapture:
    """tcpdump on every interface of the router namespace, read back with scapy."""

    def __init__(self, tb: Testbed, pcap: Path) -> None:
        self.pcap = pcap
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", tb.layout.router_ns, "tcpdump", "-U", "-n", "-Z", "root",
             "-i", "any", "-y", "LINUX_SLL", "-w", str(pcap)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stderr is not None
        line = b""
        while b"listening" not in line:  # "listening on any ..." once the capture runs
            line = self.proc.stderr.readline()
            assert line, "tcpdump exited before capturing"

    def stop(self) -> list[Any]:
        time.sleep(0.3)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=20)
        import scapy.layers.inet6
        import scapy.layers.l2  # registers the cooked-capture link type before reading
        from scapy.utils import rdpcap

        assert scapy.layers.l2.CookedLinux and scapy.layers.inet6.IPv6
        return list(rdpcap(str(self.pcap)))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _guard_drops(ns: str) -> int:
    """Packets the IPv6 egress guard of a namespace has dropped."""
    listing = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-j", "list", "table", "ip6", "liveness_guard"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return sum(
        int(expr["counter"]["packets"])
        for item in json.loads(listing.stdout)["nftables"]
        if "rule" in item
        for expr in item["rule"]["expr"]
        if "counter" in expr
    )


@pytest.mark.root
def test_nothing_leaves_by_itself(tmp_path: Path) -> None:
    """A fresh dual-stack testbed: no veth has sent a single packet (no RS, DAD, NDP or MLD;
    the guards dropped the MLD reports the kernel made, from ``::``), and no namespace has a
    link-local or any other address outside the benchmarking range."""
    path = tmp_path / "dualstack.toml"
    path.write_text(_no_events("dualstack"))
    with Testbed(load_spec(path)) as tb:
        time.sleep(1.5)  # the kernel repeats its unsolicited MLD reports within a second
        assert all(sent == 0 for sent in _link_counters(tb).values()), _link_counters(tb)
        for ns in tb.layout.namespaces:
            addrs = subprocess.run(
                ["ip", "-n", ns, "-6", "-j", "addr", "show"],
                capture_output=True,
                text=True,
                check=True,
            )
            for link in json.loads(addrs.stdout):
                for info in link["addr_info"]:
                    assert info["local"] == "::1" or ipaddress.IPv6Address(info["local"]) in BENCH6
        assert _guard_drops(tb.layout.router_ns) > 0  # it had something to stop


@pytest.mark.root
def test_ipv6_vantage_point_is_what_a_scanner_needs(dual: Testbed) -> None:
    vp = dual.vps["vp1"]
    assert vp.src_ip6 is not None and vp.gateway_ip6 is not None
    route = dual.run(
        "vp1", ["ip", "-6", "-j", "route", "get", "2001:2:0:105::1"], capture_output=True, text=True
    )
    (info,) = json.loads(route.stdout)
    assert (info["prefsrc"], info["gateway"], info["dev"]) == (vp.src_ip6, vp.gateway_ip6, "eth0")
    neigh = dual.run("vp1", ["ip", "-6", "-j", "neigh", "show"], capture_output=True, text=True)
    entries = {(n["dst"], n["lladdr"], tuple(n["state"])) for n in json.loads(neigh.stdout)}
    assert entries == {(vp.gateway_ip6, vp.gateway_mac, ("PERMANENT",))}
    link = dual.run("vp1", ["ip", "-j", "addr", "show", vp.ifname], capture_output=True, text=True)
    addrs = json.loads(link.stdout)[0]["addr_info"]
    assert [(a["local"], a["prefixlen"]) for a in addrs if a["family"] == "inet6"] == [
        (vp.src_ip6, 128)
    ]
    outside = dual.run(
        "vp1", ["ip", "-6", "route", "get", "2001:db8::1"], capture_output=True, text=True
    )
    assert outside.returncode != 0  # no route out of 2001:2::/48
    for key in ("accept_ra", "autoconf", "accept_dad", "router_solicitations"):
        value = dual.run(
            "vp1", ["sysctl", "-n", f"net.ipv6.conf.{vp.ifname}.{key}"], capture_output=True
        )
        assert value.stdout.strip() == b"0", key


@pytest.mark.root
@pytest.mark.slow
def test_every_ipv6_behaviour_answers_as_the_truth_says(dual: Testbed, tmp_path: Path) -> None:
    """Real ICMPv6 echo, TCP SYNs to every port and a random one, DNS and NTP from vp1 to
    sampled hosts of every behaviour (router errors with each ICMPv6 code, tarpits, servers),
    silent hosts and non-host addresses; a capture at the router sees only addresses inside
    the benchmarking ranges, and no NDP, ARP, link-local or multicast packet."""
    truth, _ = dual.truth()
    rows = [r for r in truth.to_pylist() if r["vp"] == "vp1" and r["af"] == 6 and r["loss"] == 0]
    rng = np.random.default_rng(6)
    lossy = {_a6(r["target6"]) for r in truth.to_pylist() if r["af"] == 6 and r["loss"] > 0}
    sample: list[str] = []
    for hosts in dual.plan.assigned6.values():
        clean = [a for a in host6_text(hosts) if a not in lossy]
        sample += list(rng.choice(clean, size=min(3, len(clean)), replace=False))
    assigned = np.concatenate(list(dual.plan.assigned6.values()))
    silent = host6_text(np.setdiff1d(dual.plan.population6, assigned))
    sample += list(rng.choice(silent, size=5, replace=False))
    not_hosts = [sample[0].replace("::1", "::2"), "2001:2:0:7ff::99", "2001:2:0:900::1"]
    probes = [[a, probe] for a in sample + not_hosts for probe in PROBES]
    probes += [["198.18.0.1", "icmp_echo"], ["198.18.5.1", "icmp_echo"]]  # IPv4 beside
    capture = RouterCapture(dual, tmp_path / "router.pcap")
    try:
        seen = _probe(dual, "vp1", probes, wait=1.5)
        packets = capture.stop()
    finally:
        capture.kill()
    observed = {
        (str(ipaddress.ip_address(t)), p, r, str(ipaddress.ip_address(resp)), code, app)
        for t, p, r, resp, code, app in seen
        if ":" in t
    }
    wanted = set()
    for r in rows:
        target, responder = _row_addresses(r)
        if target in set(sample):
            wanted.add((target, r["probe"], r["reply"], responder, r["icmp_code"], r["app_valid"]))
    assert wanted, "the sample must hold answering addresses"
    assert observed == wanted
    kinds = {(r[2], r[4]) for r in observed}
    assert {("icmp_unreach", c) for c in (0, 1, 3, 4, 5, 6)} <= kinds
    assert {("icmp_time_exceeded", 0), ("echo_reply", -1), ("synack", -1), ("rst", -1)} <= kinds
    assert ("udp_dns", True) in {(r[1], r[5]) for r in observed}
    assert ("udp_ntp", True) in {(r[1], r[5]) for r in observed}
    tarpits = set(host6_text(dual.plan.assigned6["tarpit"]))
    assert {(r[0], r[1]) for r in observed if r[2] == "synack" and r[0] in tarpits} >= {
        (t, "tcp_syn:random") for t in tarpits & set(sample)
    }
    _check_capture(packets)


def _check_capture(packets: list[Any]) -> None:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP

    families = set()
    for pkt in packets:
        assert ARP not in pkt, pkt.summary()
        if IPv6 in pkt:
            ip6 = pkt[IPv6]
            families.add(6)
            for addr in (ip6.src, ip6.dst):
                assert in_benchmark_range(addr), pkt.summary()
            if ip6.nh == 58:
                assert bytes(ip6.payload)[0] not in range(130, 144), pkt.summary()  # MLD, NDP
        elif IP in pkt:
            families.add(4)
            assert in_benchmark_range(pkt[IP].src) and in_benchmark_range(pkt[IP].dst)
        else:
            raise AssertionError(f"a non-IP packet at the router: {pkt.summary()}")
    assert families == {4, 6}


@pytest.mark.root
@pytest.mark.slow
def test_lossy_ipv6_path_drops_about_the_planned_share(dual: Testbed) -> None:
    truth, _ = dual.truth()
    rows = truth.to_pylist()
    lossy = sorted(
        {
            _a6(r["target6"])
            for r in rows
            if r["vp"] == "vp3" and r["af"] == 6 and r["loss"] > 0 and r["reply"] == "echo_reply"
        }
    )
    assert lossy, "the dualstack spec has lossy echo-answering IPv6 hosts from vp3"
    probes = [[a, "icmp_echo"] for a in lossy]
    repeat = max(1, 400 // len(probes))
    seen = _probe(dual, "vp3", probes, repeat=repeat, wait=1.0)
    replies = sum(1 for row in seen if row[2] == "echo_reply")
    observed = 1 - replies / (repeat * len(probes))
    assert abs(observed - 0.5) < 0.1, observed
    # the same hosts over IPv4 from vp3 are not lossy: the entry is for IPv6 only
    v4 = [
        str(ipaddress.IPv4Address(int(dual.plan.population[int(k)])))
        for k in np.searchsorted(dual.plan.population6, _prefixes(lossy))
    ]
    seen4 = _probe(dual, "vp3", [[a, "icmp_echo"] for a in v4], repeat=5, wait=1.0)
    echo4 = {r["target"] for r in rows if r["af"] == 4 and r["reply"] == "echo_reply"}
    answering = [a for a in v4 if int(ipaddress.IPv4Address(a)) in echo4]
    assert sum(1 for row in seen4 if row[2] == "echo_reply") == 5 * len(answering)


def _prefixes(addresses: list[str]) -> np.ndarray[Any, np.dtype[np.uint64]]:
    return np.array([int(ipaddress.IPv6Address(a)) >> 64 for a in addresses], dtype=np.uint64)


BURSTY6_SPEC = """
name = "bursty6"
population = ["198.18.0.0/24"]
population6 = ["2001:2::/56"]
[[vp]]
name = "vpa"
[[assign]]
behaviour = "icmp_only"
blocks = ["198.18.0.0/24"]
[[loss]]
blocks = ["2001:2::/57"]
families = ["6"]
gemodel = { good_ms = 150, bad_ms = 150, good_loss = 0.0, bad_loss = 1.0 }
"""


@pytest.mark.root
@pytest.mark.slow
def test_bursty_ipv6_loss_alternates_and_spares_ipv4(tmp_path: Path) -> None:
    """A Gilbert-Elliott path on IPv6 hosts only: the scheduler switches the ``ip6`` table's
    state set; their IPv4 twins and the other IPv6 hosts never lose a packet."""
    with Testbed(load_spec(_spec(tmp_path, BURSTY6_SPEC))) as tb:
        truth, _ = tb.truth()
        loss = {_row_addresses(r)[0]: r["loss"] for r in truth.to_pylist()}
        assert loss["2001:2:0:1::1"] == pytest.approx(0.5)
        assert loss["198.18.0.1"] == 0.0 and loss["2001:2:0:c8::1"] == 0.0
        outcomes: dict[str, list[bool]] = {a: [] for a in ("2001:2:0:1::1", "198.18.0.1",
                                                            "2001:2:0:c8::1")}  # fmt: skip
        for _ in range(30):
            for addr, out in outcomes.items():
                ping = tb.run("vpa", ["ping", "-c1", "-W0.2", addr], capture_output=True)
                out.append(ping.returncode != 0)
            time.sleep(0.03)
        log = (state_dir() / tb.id / "scheduler.log").read_text()
    assert "failed" not in log, log
    assert not any(outcomes["198.18.0.1"]) and not any(outcomes["2001:2:0:c8::1"])
    assert 0 < sum(outcomes["2001:2:0:1::1"]) < 30  # both states were seen


@pytest.mark.root
def test_truth_cli_writes_both_families_as_csv_and_parquet(dual: Testbed, tmp_path: Path) -> None:
    out = tmp_path / "truth.csv"
    done = subprocess.run(
        [LIVENESS, "testbed", "truth", "--id", dual.id, "-o", str(out), "--json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["format"] == "csv" and result["rows_ipv4"] > 0 and result["rows_ipv6"] > 0
    assert result["schedule"].endswith("truth.schedule.csv")
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == result["rows"] == result["rows_ipv4"] + result["rows_ipv6"]
    assert list(rows[0]) == ["target", "probe", "vp", "reply", "responder", "icmp_code",
                             "app_valid", "loss", "af", "app_proto"]  # fmt: skip
    for row in rows:
        addr = ipaddress.ip_address(row["target"])
        assert addr.version == int(row["af"]) and in_benchmark_range(row["target"])
        if addr.version == 6:
            assert row["target"] == addr.compressed  # RFC 5952 text
    assert {r["responder"] for r in rows if r["reply"] == "icmp_time_exceeded"} == {
        "198.19.255.254",
        "2001:2:0:ff00::fe",
    }
    parquet = tmp_path / "truth.parquet"
    done = subprocess.run(
        [LIVENESS, "testbed", "truth", "--id", dual.id, "-o", str(parquet)], capture_output=True
    )
    assert done.returncode == 0
    table = pq.read_table(parquet)
    assert table.schema.remove_metadata().equals(TRUTH_SCHEMA)
    assert truth_text(table).num_rows == len(rows)
    assert (
        pq.read_table(tmp_path / "truth.schedule.parquet")
        .schema.remove_metadata()
        .equals(SCHEDULE_SCHEMA)
    )


SCHEDULE6_SPEC = """
name = "schedule6"
population = ["198.18.0.0/22"]
population6 = ["2001:2::/54"]
[[vp]]
name = "vpa"
lan = "198.18.3.0/24"
lan6 = "2001:2:0:300::/56"
[[vp]]
name = "vpb"
[[assign]]
behaviour = "icmp_only"
blocks = ["198.18.0.0/22"]
[[event]]
kind = "island"
vps = ["vpa"]
family = "6"
start = 2
end = 4
[[event]]
kind = "peninsula"
blocks = ["2001:2:0:100::/56"]
vps = ["vpb"]
family = "6"
start = 2
end = 4
"""


@pytest.mark.root
@pytest.mark.slow
def test_ipv6_island_and_peninsula_switch_on_time_while_ipv4_stays(tmp_path: Path) -> None:
    """vpa becomes an IPv6 island (its IPv6 LAN only) and vpb loses IPv6 routes to one /56,
    from second 2 to 4; every IPv4 twin answers throughout."""
    targets = {
        "peninsula": ("198.18.1.9", "2001:2:0:109::1"),
        "lan": ("198.18.3.9", "2001:2:0:309::1"),
        "other": ("198.18.2.9", "2001:2:0:209::1"),
    }

    def reachable(tb: Testbed) -> dict[tuple[str, str, int], bool]:
        result = {}
        for vp in ("vpa", "vpb"):
            for name, pair in targets.items():
                for af, addr in zip((4, 6), pair, strict=True):
                    ping = tb.run(vp, ["ping", f"-{af}", "-c1", "-W0.4", addr], capture_output=True)
                    result[(vp, name, af)] = ping.returncode == 0
        return result

    path = _spec(tmp_path, SCHEDULE6_SPEC)
    with Testbed(load_spec(path)) as tb:
        _, schedule = tb.truth()
        assert [(r["kind"], r["scope"], r["vps_down"], r["af"]) for r in schedule.to_pylist()] == [
            ("island", "vpa", "vpb", 6),
            ("peninsula", "2001:2:0:100::/56", "vpb", 6),
        ]
        before = reachable(tb)
        time.sleep(max(0.0, tb.started_at + 2.6 - time.time()))
        during = reachable(tb)
        time.sleep(max(0.0, tb.started_at + 4.6 - time.time()))
        after = reachable(tb)
    assert all(before.values()) and all(after.values()), (before, after)
    assert {k: v for k, v in during.items() if k[2] == 4} == dict.fromkeys(
        [(vp, name, 4) for vp in ("vpa", "vpb") for name in targets], True
    )
    assert {k[:2]: v for k, v in during.items() if k[2] == 6} == {
        ("vpa", "peninsula"): False,  # vpa is an IPv6 island: only its IPv6 LAN answers
        ("vpa", "lan"): True,
        ("vpa", "other"): False,
        ("vpb", "peninsula"): False,  # the IPv6 peninsula cuts vpb from 2001:2:0:100::/56
        ("vpb", "lan"): False,  # vpa's IPv6 LAN is on the island
        ("vpb", "other"): True,
    }


@pytest.mark.root
def test_dualstack_up_and_down_leave_nothing(tmp_path: Path) -> None:
    """The shipped spec comes up in a few seconds through the CLI, and ``down`` removes every
    namespace, process, rule and file (the rules live in the namespaces)."""
    testbed_id = "d6" + secrets.token_hex(2)
    started = time.monotonic()
    up = subprocess.run(
        [LIVENESS, "testbed", "up", "dualstack", "--id", testbed_id, "--json"],
        capture_output=True,
        text=True,
    )
    try:
        assert up.returncode == 0, up.stderr
        assert time.monotonic() - started < 15
        info = json.loads(up.stdout)
        assert info["targets6"] == ["2001:2::/53"]
        assert {vp["src_ip6"] for vp in info["vps"].values()} == {
            f"2001:2:0:ff00::{k}" for k in (1, 2, 3)
        }
        record = json.loads((state_dir() / f"{testbed_id}.json").read_text())
        processes = record["processes"]
        assert {p["name"] for p in processes} == {"listener", "dnsmasq", "chronyd", "scheduler"}
        assert all(process_alive(p) for p in processes)
        namespaces = set(record["namespaces"])
        assert len(namespaces) == 5 and namespaces <= existing_namespaces()
    finally:
        down = subprocess.run(
            [LIVENESS, "testbed", "down", "--id", testbed_id, "--json"],
            capture_output=True,
            text=True,
        )
    assert down.returncode == 0, down.stderr
    assert not namespaces & existing_namespaces()
    assert not any(process_alive(p) for p in processes)
    assert testbed_id not in list_ids() and not (state_dir() / testbed_id).exists()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"lv{testbed_id}" not in links
