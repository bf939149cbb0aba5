"""The testbed for real: namespaces up, probed with scapy from inside a VP, compared with truth."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from probing import probe_from_vp

from liveness.testbed import Testbed, load_spec
from liveness.testbed.behaviours import PROBES
from liveness.testbed.state import existing_namespaces, process_alive, state_dir

pytestmark = pytest.mark.root


def _ip(value: int) -> str:
    return str(ipaddress.IPv4Address(int(value)))


_probe = probe_from_vp


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    tb = Testbed(load_spec("small"))
    try:
        tb.__enter__()
        yield tb
    finally:
        tb.down()


@pytest.mark.slow
def test_every_behaviour_answers_as_the_truth_says(small: Testbed) -> None:
    truth, _ = small.truth()
    rows = truth.filter(truth["vp"].to_numpy(zero_copy_only=False) == "vp1").to_pylist()
    lossy = {r["target"] for r in rows if r["loss"] > 0}
    rng = np.random.default_rng(0)
    sample: list[int] = []
    for addrs in small.plan.assigned.values():
        clean = [int(a) for a in addrs if int(a) not in lossy]
        sample += [int(a) for a in rng.choice(clean, size=min(3, len(clean)), replace=False)]
    assigned = np.concatenate(list(small.plan.assigned.values()))
    silent = np.setdiff1d(small.plan.population, assigned)
    sample += [int(a) for a in rng.choice(silent, size=5, replace=False)]
    probes = [[_ip(a), probe] for a in sample for probe in PROBES]
    seen = _probe(small, "vp1", probes, wait=1.5)
    observed = {(t, p, r, resp, code, app) for t, p, r, resp, code, app in seen}
    wanted = {
        (
            _ip(r["target"]),
            r["probe"],
            r["reply"],
            _ip(r["responder"]),
            r["icmp_code"],
            r["app_valid"],
        )
        for r in rows
        if r["target"] in set(sample)
    }
    assert wanted, "the sample must hold answering addresses"
    assert observed == wanted
    behaviours_seen = {
        name for name, addrs in small.plan.assigned.items() if set(addrs) & set(sample)
    }
    assert behaviours_seen == set(small.plan.assigned)


@pytest.mark.slow
def test_lossy_path_drops_about_the_planned_share(small: Testbed) -> None:
    truth, _ = small.truth()
    rows = truth.to_pylist()
    lossy = sorted(
        {
            r["target"]
            for r in rows
            if r["vp"] == "vp2" and r["loss"] > 0 and r["reply"] == "echo_reply"
        }
    )
    assert lossy, "the small spec has lossy echo-answering addresses from vp2"
    rate = next(r["loss"] for r in rows if r["vp"] == "vp2" and r["loss"] > 0)
    probes = [[_ip(a), "icmp_echo"] for a in lossy]
    repeat = max(1, 400 // len(probes))
    seen = _probe(small, "vp2", probes, repeat=repeat, wait=1.0)
    replies = sum(1 for row in seen if row[2] == "echo_reply")
    observed_loss = 1 - replies / (repeat * len(probes))
    assert abs(observed_loss - rate) < 0.1, (observed_loss, rate)
    # the same addresses from vp1 are not lossy
    assert all(r["loss"] == 0 for r in rows if r["vp"] == "vp1" and r["target"] in set(lossy))


def test_vantage_point_is_what_a_scanner_needs(small: Testbed) -> None:
    vp = small.vps["vp1"]
    assert ipaddress.IPv4Address(vp.src_ip) in ipaddress.IPv4Network("198.18.0.0/15")
    link = small.run("vp1", ["ip", "-j", "addr", "show", vp.ifname], capture_output=True, text=True)
    addrs = json.loads(link.stdout)[0]["addr_info"]
    assert [(a["local"], a["prefixlen"]) for a in addrs if a["family"] == "inet"] == [
        (vp.src_ip, 32)
    ]
    neigh = small.run("vp1", ["ip", "-j", "neigh", "show"], capture_output=True, text=True)
    entries = {(n["dst"], n["lladdr"], tuple(n["state"])) for n in json.loads(neigh.stdout)}
    assert (vp.gateway_ip, vp.gateway_mac, ("PERMANENT",)) in entries
    assert small.targets == ["198.18.0.0/22"]
    rps = small.run(
        "vp1",
        ["cat", f"/sys/class/net/{vp.ifname}/queues/rx-0/rps_cpus"],
        capture_output=True,
        text=True,
    )
    assert int(rps.stdout.strip().replace(",", ""), 16) > 0  # receive packet steering is on


HOST_SYSCTLS = [
    "net.ipv4.icmp_ratelimit",
    "net.ipv4.icmp_msgs_per_sec",
    "net.ipv4.icmp_msgs_burst",
    "net.core.somaxconn",
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.disable_ipv6",
]


def _host_sysctls() -> list[str]:
    return [Path("/proc/sys", key.replace(".", "/")).read_text() for key in HOST_SYSCTLS]


def test_down_removes_everything(tmp_path: Path) -> None:
    host_before = _host_sysctls()
    tb = Testbed.up(load_spec("small"))
    try:
        assert _host_sysctls() == host_before  # tuning stays inside the namespaces
        namespaces = set(tb.layout.namespaces)
        record = json.loads((state_dir() / f"{tb.id}.json").read_text())
        processes = record["processes"]
        assert namespaces <= existing_namespaces()
        assert {p["name"] for p in processes} == {"listener", "dnsmasq", "chronyd"}
        assert all(process_alive(p) for p in processes)
    finally:
        tb.down()
    assert not namespaces & existing_namespaces()
    assert not any(process_alive(p) for p in processes)
    assert not (state_dir() / f"{tb.id}.json").exists()
    assert not (state_dir() / tb.id).exists()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"lv{tb.id}" not in links


SCHEDULE_SPEC = """
name = "schedule"
population = ["198.18.0.0/22"]
[[vp]]
name = "vpa"
lan = "198.18.3.0/24"
[[vp]]
name = "vpb"
[[assign]]
behaviour = "icmp_only"
blocks = ["198.18.0.0/22"]
[[event]]
kind = "peninsula"
blocks = ["198.18.1.0/24"]
vps = ["vpb"]
start = 2
end = 4
[[event]]
kind = "island"
vps = ["vpa"]
start = 2
end = 4
"""


@pytest.mark.slow
def test_schedule_switches_peninsula_and_island_on_time(tmp_path: Path) -> None:
    path = tmp_path / "schedule.toml"
    path.write_text(SCHEDULE_SPEC)
    targets = {"peninsula": "198.18.1.9", "lan": "198.18.3.9", "other": "198.18.2.9"}

    def reachable(tb: Testbed) -> dict[tuple[str, str], bool]:
        result = {}
        for vp in ("vpa", "vpb"):
            for name, addr in targets.items():
                ping = tb.run(vp, ["ping", "-c1", "-W0.4", addr], capture_output=True)
                result[(vp, name)] = ping.returncode == 0
        return result

    with Testbed(load_spec(path)) as tb:
        _, schedule = tb.truth()
        assert schedule.to_pylist() == [
            {
                "kind": "peninsula",
                "scope": "198.18.1.0/24",
                "vps_down": "vpb",
                "start": 2.0,
                "end": 4.0,
                "af": 4,
            },
            {
                "kind": "island",
                "scope": "vpa",
                "vps_down": "vpb",
                "start": 2.0,
                "end": 4.0,
                "af": 4,
            },
        ]
        before = reachable(tb)
        time.sleep(max(0.0, tb.started_at + 2.6 - time.time()))
        during = reachable(tb)
        time.sleep(max(0.0, tb.started_at + 4.6 - time.time()))
        after = reachable(tb)
    assert all(before.values()) and all(after.values())
    assert during == {
        ("vpa", "peninsula"): False,  # vpa is an island: only its LAN block answers
        ("vpa", "lan"): True,
        ("vpa", "other"): False,
        ("vpb", "peninsula"): False,  # the peninsula cuts vpb from 198.18.1.0/24
        ("vpb", "lan"): False,  # vpa's LAN is on the island
        ("vpb", "other"): True,
    }


BURSTY_SPEC = """
name = "bursty"
population = ["198.18.0.0/24"]
[[vp]]
name = "vpa"
[[assign]]
behaviour = "icmp_only"
blocks = ["198.18.0.0/24"]
[[loss]]
blocks = ["198.18.0.0/25"]
gemodel = { good_ms = 150, bad_ms = 150, good_loss = 0.0, bad_loss = 1.0 }
"""


@pytest.mark.slow
def test_bursty_loss_alternates_good_and_bad_states(tmp_path: Path) -> None:
    path = tmp_path / "bursty.toml"
    path.write_text(BURSTY_SPEC)
    with Testbed(load_spec(path)) as tb:
        truth, _ = tb.truth()
        loss = dict(zip(truth["target"].to_pylist(), truth["loss"].to_pylist(), strict=True))
        assert loss[int(ipaddress.IPv4Address("198.18.0.1"))] == pytest.approx(0.5)
        assert loss[int(ipaddress.IPv4Address("198.18.0.200"))] == 0.0
        lost: list[bool] = []
        clean: list[bool] = []
        for _ in range(30):
            for addr, out in (("198.18.0.1", lost), ("198.18.0.200", clean)):
                ping = tb.run("vpa", ["ping", "-c1", "-W0.2", addr], capture_output=True)
                out.append(ping.returncode != 0)
            time.sleep(0.03)
    assert not any(clean)
    assert 0 < sum(lost) < len(lost)  # both states were seen


DELAY_SPEC = """
name = "delay"
population = ["198.18.0.0/24"]
[[vp]]
name = "vpa"
[[assign]]
behaviour = "icmp_only"
blocks = ["198.18.0.0/24"]
[[loss]]
delay_ms = 30
"""


def test_delay_works_or_is_refused_cleanly(tmp_path: Path) -> None:
    """Delay needs tc netem; a kernel without it gives a clear RunError and leaves nothing."""
    from liveness.errors import RunError

    path = tmp_path / "delay.toml"
    path.write_text(DELAY_SPEC)
    tb = Testbed(load_spec(path))
    try:
        with tb:
            ping = tb.run(
                "vpa", ["ping", "-c1", "-W1", "198.18.0.1"], capture_output=True, text=True
            )
            rtt = float(ping.stdout.split("time=")[1].split()[0])
            assert rtt >= 30
    except RunError as exc:
        assert "netem" in str(exc)
    assert not any(ns.startswith(f"lv{tb.id}") for ns in existing_namespaces())
    assert not (state_dir() / f"{tb.id}.json").exists()


@pytest.mark.slow
def test_connectivity_spec_comes_up_with_six_vps() -> None:
    with Testbed(load_spec("connectivity")) as tb:
        assert len(tb.vps) == 6
        assert len({vp.src_ip for vp in tb.vps.values()}) == 6
        truth, schedule = tb.truth()
        assert sorted(str(k) for k in schedule["kind"].to_pylist()) == [
            "island",
            "outage",
            "peninsula",
        ]
        rows = truth.filter(truth["probe"].to_numpy(zero_copy_only=False) == "icmp_echo")
        echo = {r["target"] for r in rows.to_pylist() if r["reply"] == "echo_reply"}
        for spec_vp in tb.spec.vps:
            assert spec_vp.lan is not None
            lo = int(spec_vp.lan.network_address)
            host = next(a for a in range(lo, lo + 256) if a in echo)
            ping = tb.run(spec_vp.name, ["ping", "-c1", "-W1", _ip(host)], capture_output=True)
            assert ping.returncode == 0, spec_vp.name


@pytest.mark.slow
def test_icmp_errors_are_not_rate_limited(small: Testbed) -> None:
    """Thousands of errors to one VP in a few seconds: every port unreachable comes back."""
    truth, _ = small.truth()
    rows = truth.to_pylist()
    closed = sorted(
        {
            r["target"]
            for r in rows
            if r["vp"] == "vp1"
            and r["probe"] == "udp_ntp"
            and r["icmp_code"] == 3
            and r["loss"] == 0
        }
    )
    probes = [[_ip(a), "udp_ntp"] for a in closed[:100]]
    repeat = 2000 // len(probes)
    seen = _probe(small, "vp1", probes, repeat=repeat, inter=0, wait=1.0)
    unreach = sum(1 for row in seen if row[2] == "icmp_unreach" and row[4] == 3)
    # the default limits would allow about one error per second to our one address
    assert unreach == repeat * len(probes)
