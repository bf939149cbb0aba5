"""Bring a plan up as namespaces, veths, routes, nftables rules and real daemons.

Topology (every address inside 198.18.0.0/15, and with IPv6 inside 2001:2::/48)::

    VP ns (eth0, a /32 [+ a /128]) --veth-- (r-VP) router ns (inet0) --veth-- (rtr0) Internet ns

- The Internet namespace owns the whole range (``route add local 198.18.0.0/15 dev lo``, and
  ``route add local 2001:2::/48 dev lo``) so its kernel answers for every address; the
  infrastructure blocks are carved out of table ``local`` (routed to the router) or replies to
  the VPs would be martians. One nftables map per family sends each address to its
  behaviour's chain (one element per address, one chain per behaviour); tarpits are a
  ``tproxy`` to one transparent listener per family. dnsmasq and chronyd answer DNS and NTP
  on both families; snmpd answers SNMP, and the testbed's UDP responder the other UDP
  services (SSDP, memcached, portmapper, NetBIOS, CoAP). nginx (HTTP, TLS), sshd and socat
  (a Telnet banner) are the TCP services, behind a stateless port rewrite (``tcp_servers.py``);
  ACKing middleboxes are a second transparent listener. A testbed with TCP services or
  middleboxes (made for ``--app-layer``) sets ``tcp_synack_retries = 0``: a SYN-ACK is sent
  once (a tarpit or middlebox stays quiet; a half-open connection lives about 1 s, so a
  stateless scanner must ACK within that; a scanner retransmits its SYN, not the server).
  Other testbeds keep the kernel's SYN-ACK retransmissions, as before.
- IPv6 AnyIP accepts any address, but the kernel sources an ICMPv6 error (port unreachable,
  admin-prohibited) from the failing packet's destination only when that address is assigned
  to an interface (and assigning thousands costs time quadratic in their number); so the
  Internet's egress guard rewrites the source of every ICMPv6 error it sends to the quoted
  packet's destination (nft fixes the checksum), and ``ip_nonlocal_bind`` lets dnsmasq and
  chronyd answer from any address of the range.
- The router forwards, answers for router-error addresses (``reject with icmp type ...`` and
  ``reject with icmpv6 type ...``; TTL or hop limit set to 1 for time exceeded), drops what the
  connectivity schedule cuts (per family), and drops a random share of the probes on lossy
  paths (``numgen random``; bursty loss switches between a good and a bad rate on a
  Gilbert-Elliott clock run by the scheduler). tc netem is used only for delay, as this kernel
  family may lack it.
- Every neighbour is a permanent entry: no ARP and no NDP, whatever the number of addresses;
  a VP's gateway (the router, ``2001:2:0:ff00::fe`` by default) is in its ``ip -6 neigh`` with
  the router's MAC, and its IPv6 route to 2001:2::/48 goes via that global address ``onlink``.
- Nothing leaves by itself: an IPv4-only testbed disables IPv6 in its namespaces. An IPv6
  testbed sets, before any link exists, ``accept_ra=0 autoconf=0 accept_dad=0
  router_solicitations=0 addr_gen_mode=1`` (no link-local address at all) and adds every
  address ``nodad``; the kernel still reports its multicast groups (MLD, from ``::``), which
  the ``liveness_guard`` table of every namespace drops on the way out (``rules.guard_ruleset``).

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
from liveness.safety import BENCHMARK_NET, BENCHMARK_NET6
from liveness.testbed.behaviours import TCP_PORTS, UDP_SERVICES
from liveness.testbed.layout import Layout
from liveness.testbed.plan import Plan, host6_text
from liveness.testbed.rules import (
    FAMILY,
    MIDDLEBOX_PORT,
    TARPIT_PORT,
    GuardRole,
    guard_ruleset,
    inet_ruleset,
    router_ruleset,
    schedule_cuts,
    schedule_steps,
)
from liveness.testbed.tcp_servers import (
    TELNET_BANNER,
    internal_port,
    nginx_conf,
    socat_argv,
    sshd_argv,
    sshd_conf,
)

__all__ = ["bring_up"]

# snmpd answers SNMPv1/v2c ``public``; nothing is read from /etc or written to /var, no MIB
# file is loaded. Its IPv4 socket is a wildcard (it answers from the address asked, by
# IP_PKTINFO), but its udp6 transport answers from the kernel's choice of source, so on IPv6
# it binds each serving address (``ip_nonlocal_bind``), at most MAX_SNMP6 of them, given on
# the command line (an ``agentaddress`` line holds at most 2,560 characters).
SNMPD_CONF = """\
[snmp] persistentDir {persistent}
rocommunity public default
rocommunity6 public default
sysDescr liveness testbed SNMP agent (net-snmp)
sysLocation the emulated Internet
sysContact nobody@liveness.test
sysServices 72
dontLogTCPWrappersConnects yes
"""
MAX_SNMP6 = 4096
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
# An IPv6 testbed: IPv6 on, but nothing the kernel would send by itself (set before the links
# exist, so every interface inherits ``default``).
IPV6_SYSCTLS = {
    f"net.ipv6.conf.{scope}.{key}": value
    for scope in ("all", "default")
    for key, value in (
        ("disable_ipv6", "0"),
        ("accept_ra", "0"),
        ("autoconf", "0"),
        ("accept_dad", "0"),
        ("dad_transmits", "0"),
        ("router_solicitations", "0"),
        ("use_tempaddr", "0"),
        ("accept_redirects", "0"),
        ("addr_gen_mode", "1"),
    )
} | {"net.ipv6.icmp.ratelimit": "0"}


def _run(argv: Sequence[str], what: str, stdin: str | None = None) -> None:
    done = subprocess.run(list(argv), input=stdin, text=True, capture_output=True)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise RunError(f"testbed: {what} failed: {' | '.join(detail[:3])}")


def _ip_batch(netns: str | None, lines: Iterable[str], what: str) -> None:
    argv = ["ip", "-batch", "-"] if netns is None else ["ip", "-n", netns, "-batch", "-"]
    _run(argv, what, "\n".join(lines) + "\n")


def _namespace_sysctls(netns: str, sysctls: dict[str, str], guard: Path | None) -> None:
    """Set namespace-local sysctls (and load the IPv6 egress guard) before any link exists."""
    script = " ".join(f"{k}={v}" for k, v in sysctls.items())
    shell = f"sysctl -q -w {script}" + (f" && nft -f {guard}" if guard is not None else "")
    _run(["ip", "netns", "exec", netns, "sh", "-c", shell], f"sysctls in {netns}")


def _rps(netns: str) -> None:
    """Spread veth receive work over every CPU (RPS)."""
    mask = format((1 << (os.cpu_count() or 1)) - 1, "x")
    shell = (
        "for f in /sys/class/net/*/queues/rx-*/rps_cpus; do "
        f'case "$f" in /sys/class/net/lo/*) ;; *) echo {mask} > "$f";; esac; done'
    )
    _run(["ip", "netns", "exec", netns, "sh", "-c", shell], f"RPS in {netns}")


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


def _wait_listening(
    pid: int, tcp: Iterable[int], udp: Iterable[int], what: str, ipv6: bool = False
) -> None:
    """Wait until a process's namespace has sockets listening on these ports (on IPv6 too)."""
    want_tcp = {f"{p:04X}" for p in tcp}
    want_udp = {f"{p:04X}" for p in udp}
    suffixes = ("", "6") if ipv6 else ("",)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            ready = all(
                want_tcp <= _ports(Path(f"/proc/{pid}/net/tcp{v}").read_text(), "0A")
                and want_udp <= _ports(Path(f"/proc/{pid}/net/udp{v}").read_text(), None)
                for v in suffixes
            )
        except OSError:
            raise RunError(f"testbed: {what} exited at start (see its log)") from None
        if ready:
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
    v6 = plan.has_ipv6
    common = {**COMMON_SYSCTLS, **IPV6_SYSCTLS} if v6 else COMMON_SYSCTLS
    roles: tuple[GuardRole, ...] = ("host", "router", "internet")
    guards = {role: work / f"guard-{role}.nft" for role in roles}
    for role, path in guards.items():
        path.write_text(guard_ruleset(role))
    inet_sysctls = {
        **ICMP_SYSCTLS,
        **common,
        "net.core.somaxconn": "65535",
        "net.ipv4.tcp_max_syn_backlog": "65535",
        "net.ipv4.tcp_syncookies": "1",
    }
    if plan.tcp_services or any(
        plan.spec.behaviours[name].middlebox for name in plan.behaviour_names
    ):
        inet_sysctls["net.ipv4.tcp_synack_retries"] = "0"
    router_sysctls = {**ICMP_SYSCTLS, **common, "net.ipv4.ip_forward": "1"}
    if v6:
        router_sysctls["net.ipv6.conf.all.forwarding"] = "1"
        inet_sysctls["net.ipv6.ip_nonlocal_bind"] = "1"  # servers answer from any address
    namespaces: list[tuple[str, dict[str, str], GuardRole]] = [
        (inet, inet_sysctls, "internet"),
        (rtr, router_sysctls, "router"),
        *((vp.netns, common, "host") for vp in layout.vps),
    ]
    for netns, sysctls, role in namespaces:
        _namespace_sysctls(netns, sysctls, guards[role] if v6 else None)
    _ip_batch(rtr, _router_lines(plan, layout), "building the router")
    _ip_batch(inet, _inet_lines(plan, layout), "building the Internet")
    for vp in layout.vps:
        lines = [
            "link set lo up",
            f"link set {vp.ifname} up",
            f"addr add {vp.ip}/32 dev {vp.ifname}",
            f"neigh add {plan.router_ip} lladdr {vp.router_mac} dev {vp.ifname} nud permanent",
            f"route add {BENCHMARK_NET} via {plan.router_ip} dev {vp.ifname} onlink",
        ]
        if v6:
            lines += [
                f"addr add {vp.ip6}/128 dev {vp.ifname} nodad",
                f"neigh add {plan.router_ip6} lladdr {vp.router_mac} dev {vp.ifname} nud permanent",
                f"route add {BENCHMARK_NET6} via {plan.router_ip6} dev {vp.ifname} onlink",
            ]
        _ip_batch(vp.netns, lines, f"building VP {vp.name}")
    for netns in layout.namespaces:
        _rps(netns)
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
    families = (4, 6) if v6 else (4,)
    gemodel = [
        {
            "set": f"ge{k}",
            "good_ms": e.gemodel[0],
            "bad_ms": e.gemodel[1],
            "seed": plan.spec.seed + k,
            "tables": [FAMILY[af].table for af in e.families if af in families],
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


def _router_lines(plan: Plan, layout: Layout) -> list[str]:
    """The router's ``ip -batch``: its own address on lo, the veths, permanent neighbours, one
    route to the Internet namespace for the whole range and one /32 (/128) per VP.

    The IPv6 routes are in table ``local``: with no policy rules the kernel looks a forwarded
    IPv6 packet up in ``local`` and then in ``main`` (IPv4 merges the two tables), so there
    each packet takes one lookup instead of two."""
    lines = [
        "link set lo up",
        f"addr add {plan.router_ip}/32 dev lo",
        f"link add inet0 address {layout.router_inet_mac} type veth peer name rtr0 "
        f"address {layout.inet_mac} netns {layout.inet_ns}",
        "link set inet0 up",
        f"neigh add {plan.inet_ip} lladdr {layout.inet_mac} dev inet0 nud permanent",
        f"route add {BENCHMARK_NET} via {plan.inet_ip} dev inet0 onlink src {plan.router_ip}",
    ]
    if plan.has_ipv6:
        lines += [
            f"addr add {plan.router_ip6}/128 dev lo nodad",
            f"neigh add {plan.inet_ip6} lladdr {layout.inet_mac} dev inet0 nud permanent",
            f"route add {BENCHMARK_NET6} via {plan.inet_ip6} dev inet0 onlink "
            f"src {plan.router_ip6} table local",
        ]
    for vp in layout.vps:
        lines += [
            f"link add {vp.router_ifname} address {vp.router_mac} type veth peer name "
            f"{vp.ifname} address {vp.mac} netns {vp.netns}",
            f"link set {vp.router_ifname} up",
            f"neigh add {vp.ip} lladdr {vp.mac} dev {vp.router_ifname} nud permanent",
            f"route add {vp.ip}/32 dev {vp.router_ifname} src {plan.router_ip}",
        ]
        if vp.ip6 is not None:
            lines += [
                f"neigh add {vp.ip6} lladdr {vp.mac} dev {vp.router_ifname} nud permanent",
                f"route add {vp.ip6}/128 dev {vp.router_ifname} src {plan.router_ip6} table local",
            ]
    return lines


def _inet_lines(plan: Plan, layout: Layout) -> list[str]:
    """The Internet namespace's ``ip -batch``: the whole range local on lo, the infrastructure
    carved out toward the router."""
    infra = str(plan.spec.infrastructure)
    lines = [
        "link set lo up",
        "link set rtr0 up",
        f"addr add {plan.inet_ip}/32 dev rtr0",
        f"neigh add {plan.router_ip} lladdr {layout.router_inet_mac} dev rtr0 nud permanent",
        f"route add local {BENCHMARK_NET} dev lo",
        f"route add {plan.router_ip}/32 dev rtr0 table local",
        f"route add {infra} via {plan.router_ip} dev rtr0 onlink table local",
    ]
    if plan.has_ipv6:
        lines += [
            f"addr add {plan.inet_ip6}/128 dev rtr0 nodad",
            f"neigh add {plan.router_ip6} lladdr {layout.router_inet_mac} dev rtr0 nud permanent",
            f"route add local {BENCHMARK_NET6} dev lo",
            f"route add {plan.router_ip6}/128 dev rtr0 table local",
            f"route add {plan.spec.infrastructure6} via {plan.router_ip6} dev rtr0 onlink "
            "table local",
        ]
    return lines


def _snmp_hosts6(plan: Plan) -> list[str]:
    """The IPv6 addresses serving SNMP (snmpd binds each one)."""
    six = [
        host
        for name, hosts in plan.assigned6.items()
        if "snmp" in plan.spec.behaviours[name].udp_services
        for host in host6_text(hosts)
    ]
    if len(six) > MAX_SNMP6:
        raise RunError(
            f"testbed: {len(six)} IPv6 addresses serve snmp; snmpd binds one socket each, "
            f"at most {MAX_SNMP6}"
        )
    return six


def _start_servers(plan: Plan, layout: Layout, work: Path, record: Record) -> None:
    inet = layout.inet_ns
    v6 = plan.has_ipv6
    behaviours = [plan.spec.behaviours[name] for name in plan.behaviour_names]
    ready = work / "listener.ready"
    argv = [
        sys.executable,
        "-m",
        "liveness.testbed.listener",
        "--ports",
        ",".join(map(str, TCP_PORTS)),
        "--tarpit",
        str(TARPIT_PORT),
        "--middlebox",
        str(MIDDLEBOX_PORT),
        "--ready",
        str(ready),
        *(["--ipv6"] if v6 else []),
    ]
    pid = _spawn(inet, argv, work / "listener.log", "listener", record)
    waits: list[tuple[int, list[int], list[int], str, bool]] = [
        (pid, [*TCP_PORTS, TARPIT_PORT, MIDDLEBOX_PORT], [], "the TCP listener", v6)
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
        waits.append((pid, [], [53], "dnsmasq", v6))
    if any(b.ntp == "serve" for b in behaviours):
        conf = work / "chrony.conf"
        conf.write_text(
            "local stratum 10\nallow all\nport 123\ncmdport 0\nbindaddress 0.0.0.0\n"
            + ("bindaddress ::\n" if v6 else "")
            + f"pidfile {work / 'chronyd.pid'}\n"
        )
        ntp_argv = ["chronyd", "-x", "-d", "-u", "root", "-f", str(conf)]
        pid = _spawn(inet, ntp_argv, work / "chronyd.log", "chronyd", record)
        waits.append((pid, [], [123], "chronyd", v6))
    services = plan.udp_services
    if "snmp" in services:
        conf = work / "snmpd.conf"
        conf.write_text(SNMPD_CONF.format(persistent=work / "snmp"))
        six = _snmp_hosts6(plan)
        snmp_argv = [
            "snmpd",
            "-f",
            "-C",
            "-c",
            str(conf),
            "-Lf",
            str(work / "snmpd.log"),
            "-p",
            str(work / "snmpd.pid"),
            "-m",
            "",
            # bound in this order: the IPv4 wildcard listening means every IPv6 socket does
            *(f"udp6:[{host}]:161" for host in six),
            "udp:161",
        ]
        pid = _spawn(inet, snmp_argv, work / "snmpd.out", "snmpd", record)
        waits.append((pid, [], [161], "snmpd", bool(six)))
    own = [name for name in services if name != "snmp"]
    if own:
        responder_argv = [
            sys.executable,
            "-m",
            "liveness.testbed.udp_responder",
            "--services",
            ",".join(own),
            "--ready",
            str(work / "udp_responder.ready"),
            *(["--ipv6"] if v6 else []),
        ]
        pid = _spawn(inet, responder_argv, work / "udp_responder.log", "udp_responder", record)
        waits.append((pid, [], [UDP_SERVICES[name] for name in own], "the UDP responder", v6))
    waits += _start_tcp_services(plan, inet, work, record)
    for pid, tcp, udp, what, ipv6 in waits:
        _wait_listening(pid, tcp, udp, what, ipv6)


def _start_tcp_services(
    plan: Plan, inet: str, work: Path, record: Record
) -> list[tuple[int, list[int], list[int], str, bool]]:
    """Make keys and certificates, start nginx, sshd and socat for the TCP services the plan
    serves; what to wait for (each server's internal ports)."""
    services = plan.tcp_services
    v6 = plan.has_ipv6
    waits: list[tuple[int, list[int], list[int], str, bool]] = []
    http, tls = services.get("http", []), services.get("tls", [])
    if tls:
        cert_argv = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"]
        cert_argv += ["ec_paramgen_curve:prime256v1", "-nodes", "-days", "30"]
        cert_argv += ["-subj", f"/CN={plan.spec.dns_name}"]
        cert_argv += ["-keyout", str(work / "tls.key"), "-out", str(work / "tls.crt")]
        _run(cert_argv, "making the TLS certificate (openssl)")
    if http or tls:
        (work / "nginx").mkdir(exist_ok=True)
        conf = work / "nginx.conf"
        conf.write_text(nginx_conf(work, http, tls, v6))
        nginx_argv = ["nginx", "-p", str(work / "nginx"), "-e", str(work / "nginx.log")]
        nginx_argv += ["-c", str(conf)]
        pid = _spawn(inet, nginx_argv, work / "nginx.out", "nginx", record)
        ports = [internal_port("http", p) for p in http] + [internal_port("tls", p) for p in tls]
        waits.append((pid, ports, [], "nginx", v6))
    ssh = services.get("ssh", [])
    if ssh:
        key = work / "ssh_host_ed25519_key"
        keygen_argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "liveness-testbed"]
        _run([*keygen_argv, "-f", str(key)], "making the SSH host key (ssh-keygen)")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
        conf = work / "sshd_config"
        conf.write_text(sshd_conf(work, ssh, v6))
        pid = _spawn(inet, sshd_argv(conf), work / "sshd.log", "sshd", record)
        waits.append((pid, [internal_port("ssh", p) for p in ssh], [], "sshd", v6))
    telnet = services.get("telnet", [])
    if telnet:
        banner = work / "telnet_banner"
        banner.write_bytes(TELNET_BANNER)
        for port in telnet:
            for ipv6 in (False, True) if v6 else (False,):
                name = f"socat-telnet-{port}{'-6' if ipv6 else ''}"
                argv = socat_argv(banner, port, ipv6)
                pid = _spawn(inet, argv, work / f"{name}.log", name, record)
                waits.append((pid, [internal_port("telnet", port)], [], name, v6))
    return waits
