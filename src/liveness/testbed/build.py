"""Bring a plan up as namespaces, veths, routes, nftables rules and real daemons.

Topology (every address inside 198.18.0.0/15)::

    VP ns (eth0, a /32) --veth-- (r-VP) router ns (inet0) --veth-- (rtr0) Internet ns

- The Internet namespace owns the whole range (``route add local 198.18.0.0/15 dev lo``) so its
  kernel answers for every address; the infrastructure block is carved out of table ``local``
  (routed to the router) or replies to the VPs would be martians. One nftables map sends each
  address to its behaviour's chain (one element per address, one chain per behaviour); tarpits
  are a ``tproxy`` to one transparent listener. dnsmasq and chronyd answer DNS and NTP.
- The router forwards, answers for router-error addresses (``reject with icmp type ...``, TTL
  set to 1 for time exceeded), drops what the connectivity schedule cuts, and drops a random
  share of the probes on lossy paths (``numgen random``; bursty loss switches between a good
  and a bad rate on a Gilbert-Elliott clock run by the scheduler). tc netem is used only for
  delay, as this kernel family may lack it.
- Every neighbour is a permanent entry: no ARP, whatever the number of addresses.

Everything is loaded in bulk: one ``ip -batch`` per namespace and one ``nft -f`` file per
namespace (see ``rules.py``), so bringing up the full /15 takes about a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from liveness.errors import RunError
from liveness.safety import BENCHMARK_NET
from liveness.testbed.behaviours import TCP_PORTS
from liveness.testbed.layout import Layout
from liveness.testbed.plan import Plan
from liveness.testbed.rules import (
    TARPIT_PORT,
    inet_ruleset,
    router_ruleset,
    schedule_cuts,
    schedule_steps,
)

__all__ = ["bring_up"]

ICMP_SYSCTLS = {
    "net.ipv4.icmp_ratelimit": "0",
    "net.ipv4.icmp_msgs_per_sec": "10000000",
    "net.ipv4.icmp_msgs_burst": "10000000",
}
COMMON_SYSCTLS = {
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv6.conf.all.disable_ipv6": "1",  # no router solicitations or MLD on the links
    "net.ipv6.conf.default.disable_ipv6": "1",
}


def _run(argv: Sequence[str], what: str, stdin: str | None = None) -> None:
    done = subprocess.run(list(argv), input=stdin, text=True, capture_output=True)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise RunError(f"testbed: {what} failed: {' | '.join(detail[:3])}")


def _ip_batch(netns: str | None, lines: Iterable[str], what: str) -> None:
    argv = ["ip", "-batch", "-"] if netns is None else ["ip", "-n", netns, "-batch", "-"]
    _run(argv, what, "\n".join(lines) + "\n")


def _sysctl_and_rps(netns: str, sysctls: dict[str, str]) -> None:
    """Set namespace-local sysctls and spread veth receive work over every CPU (RPS)."""
    mask = format((1 << (os.cpu_count() or 1)) - 1, "x")
    script = " ".join(f"{k}={v}" for k, v in sysctls.items())
    shell = (
        f"sysctl -q -w {script} && for f in /sys/class/net/*/queues/rx-*/rps_cpus; do "
        f'case "$f" in /sys/class/net/lo/*) ;; *) echo {mask} > "$f";; esac; done'
    )
    _run(["ip", "netns", "exec", netns, "sh", "-c", shell], f"sysctls in {netns}")


def delay_commands(plan: Plan, layout: Layout) -> dict[str, str]:
    """VP namespace -> a tc netem line delaying its whole path (when the spec asks for it)."""
    out = {}
    for entry in plan.spec.losses:
        if entry.delay_ms or entry.jitter_ms:
            for vp in layout.vps:
                if vp.name in entry.vps:
                    out[vp.netns] = (
                        f"qdisc add dev {vp.ifname} root netem limit 1000000 "
                        f"delay {entry.delay_ms}ms {entry.jitter_ms}ms\n"
                    )
    return out


def _wait_listening(pid: int, tcp: Iterable[int], udp: Iterable[int], what: str) -> None:
    """Wait until a process's namespace has sockets listening on these ports."""
    want_tcp = {f"{p:04X}" for p in tcp}
    want_udp = {f"{p:04X}" for p in udp}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            tcp_now = _ports(Path(f"/proc/{pid}/net/tcp").read_text(), "0A")
            udp_now = _ports(Path(f"/proc/{pid}/net/udp").read_text(), None)
        except OSError:
            raise RunError(f"testbed: {what} exited at start (see its log)") from None
        if want_tcp <= tcp_now and want_udp <= udp_now:
            return
        time.sleep(0.02)
    raise RunError(f"testbed: {what} did not start listening within 10 s")


def _ports(table: str, state: str | None) -> set[str]:
    ports = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if state is None or fields[3] == state:
            ports.add(fields[1].rsplit(":", 1)[1])
    return ports


Record = Callable[[str, subprocess.Popen[bytes]], None]


def _spawn(netns: str, argv: list[str], log: Path, name: str, record: Record) -> int:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    record(name, proc)
    return proc.pid


def bring_up(
    plan: Plan, layout: Layout, work: Path, record: Record, mark_built: Callable[[], None]
) -> float:
    """Build everything; ``record`` is told of each process as it starts. Returns ``t0``."""
    inet, rtr = layout.inet_ns, layout.router_ns
    _ip_batch(None, (f"netns add {ns}" for ns in layout.namespaces), "creating namespaces")
    mark_built()
    bench = str(BENCHMARK_NET)
    infra = str(plan.spec.infrastructure)
    router_lines = [
        "link set lo up",
        f"addr add {plan.router_ip}/32 dev lo",
        f"link add inet0 address {layout.router_inet_mac} type veth peer name rtr0 "
        f"address {layout.inet_mac} netns {inet}",
        "link set inet0 up",
        f"neigh add {plan.inet_ip} lladdr {layout.inet_mac} dev inet0 nud permanent",
        f"route add {bench} via {plan.inet_ip} dev inet0 onlink src {plan.router_ip}",
    ]
    for vp in layout.vps:
        router_lines += [
            f"link add {vp.router_ifname} address {vp.router_mac} type veth peer name "
            f"{vp.ifname} address {vp.mac} netns {vp.netns}",
            f"link set {vp.router_ifname} up",
            f"neigh add {vp.ip} lladdr {vp.mac} dev {vp.router_ifname} nud permanent",
            f"route add {vp.ip}/32 dev {vp.router_ifname} src {plan.router_ip}",
        ]
    _ip_batch(rtr, router_lines, "building the router")
    _ip_batch(
        inet,
        [
            "link set lo up",
            "link set rtr0 up",
            f"addr add {plan.inet_ip}/32 dev rtr0",
            f"neigh add {plan.router_ip} lladdr {layout.router_inet_mac} dev rtr0 nud permanent",
            f"route add local {bench} dev lo",
            f"route add {plan.router_ip}/32 dev rtr0 table local",
            f"route add {infra} via {plan.router_ip} dev rtr0 onlink table local",
        ],
        "building the Internet",
    )
    for vp in layout.vps:
        _ip_batch(
            vp.netns,
            [
                "link set lo up",
                f"link set {vp.ifname} up",
                f"addr add {vp.ip}/32 dev {vp.ifname}",
                f"neigh add {plan.router_ip} lladdr {vp.router_mac} dev {vp.ifname} nud permanent",
                f"route add {bench} via {plan.router_ip} dev {vp.ifname} onlink",
            ],
            f"building VP {vp.name}",
        )
    _sysctl_and_rps(
        inet,
        {
            **ICMP_SYSCTLS,
            **COMMON_SYSCTLS,
            "net.core.somaxconn": "65535",
            "net.ipv4.tcp_max_syn_backlog": "65535",
            "net.ipv4.tcp_syncookies": "1",
        },
    )
    _sysctl_and_rps(rtr, {**ICMP_SYSCTLS, **COMMON_SYSCTLS, "net.ipv4.ip_forward": "1"})
    for vp in layout.vps:
        _sysctl_and_rps(vp.netns, COMMON_SYSCTLS)
    cuts = schedule_cuts(plan, layout)
    (work / "inet.nft").write_text(inet_ruleset(plan))
    (work / "router.nft").write_text(router_ruleset(plan, layout, cuts))
    _run(["ip", "netns", "exec", inet, "nft", "-f", str(work / "inet.nft")], "nft (Internet)")
    _run(["ip", "netns", "exec", rtr, "nft", "-f", str(work / "router.nft")], "nft (router)")
    for netns, line in delay_commands(plan, layout).items():
        _run(["tc", "-n", netns, "-batch", "-"], "tc netem delay (needs sch_netem)", line)
    _start_servers(plan, layout, work, record)
    t0 = time.time()
    steps = schedule_steps(cuts)
    gemodel = [
        {
            "set": f"ge{k}",
            "good_ms": e.gemodel[0],
            "bad_ms": e.gemodel[1],
            "seed": plan.spec.seed + k,
        }
        for k, e in enumerate(plan.spec.losses)
        if e.gemodel is not None
    ]
    if steps or gemodel:
        plan_file = work / "schedule.json"
        plan_file.write_text(json.dumps({"t0": t0, "steps": steps, "gemodel": gemodel}))
        argv = [sys.executable, "-m", "liveness.testbed.scheduler", str(plan_file)]
        _spawn(rtr, argv, work / "scheduler.log", "scheduler", record)
    return t0


def _start_servers(plan: Plan, layout: Layout, work: Path, record: Record) -> None:
    inet = layout.inet_ns
    behaviours = [plan.spec.behaviours[name] for name in plan.assigned]
    ready = work / "listener.ready"
    argv = [
        sys.executable,
        "-m",
        "liveness.testbed.listener",
        "--ports",
        ",".join(map(str, TCP_PORTS)),
        "--tarpit",
        str(TARPIT_PORT),
        "--ready",
        str(ready),
    ]
    pid = _spawn(inet, argv, work / "listener.log", "listener", record)
    waits: list[tuple[int, list[int], list[int], str]] = [
        (pid, [*TCP_PORTS, TARPIT_PORT], [], "the TCP listener")
    ]
    if any(b.dns == "serve" for b in behaviours):
        dns_argv = [
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--port=53",
            "--user=root",
            "--cache-size=0",
            f"--address=/{plan.spec.dns_name}/{plan.inet_ip}",
            f"--pid-file={work / 'dnsmasq.pid'}",
            f"--log-facility={work / 'dnsmasq.log'}",
        ]
        pid = _spawn(inet, dns_argv, work / "dnsmasq.out", "dnsmasq", record)
        waits.append((pid, [], [53], "dnsmasq"))
    if any(b.ntp == "serve" for b in behaviours):
        conf = work / "chrony.conf"
        conf.write_text(
            "local stratum 10\nallow all\nport 123\ncmdport 0\nbindaddress 0.0.0.0\n"
            f"pidfile {work / 'chronyd.pid'}\n"
        )
        ntp_argv = ["chronyd", "-x", "-d", "-u", "root", "-f", str(conf)]
        pid = _spawn(inet, ntp_argv, work / "chronyd.log", "chronyd", record)
        waits.append((pid, [], [123], "chronyd"))
    for pid, tcp, udp, what in waits:
        _wait_listening(pid, tcp, udp, what)
