"""The nftables rulesets of the Internet and the router namespaces, as text for ``nft -f``.

Per-address behaviour is data, not rules: in the Internet namespace one verdict map sends each
address to its behaviour's chain (one element per address, one chain per behaviour); tarpits and
ACKing middleboxes are each one set matched by one ``tproxy`` rule. TCP services are a second map
(address -> the behaviour's ``s_NAME`` chain, at input after the behaviour's verdict) that rewrites
the probed port to the server's internal port, and one output rule that writes the probed port back
(stateless: see ``tcp_servers.py``). Nothing in the Internet namespace needs conntrack, so nothing
registers it: a scan of the /15 fills no table.

In the router, one map sends router-error addresses to a ``reject`` chain, one set sets the TTL
(hop limit) of time-exceeded addresses to 1, one set per scheduled cut drops what the connectivity
schedule cuts (the scheduler fills and flushes it), and one set per loss entry selects the paths
where ``numgen random`` drops a share of probes.

Each family has its own table, ``ip liveness`` and ``ip6 liveness``, built by the same code from a
:class:`Family` (set types, header fields, reject statements); an IPv4-only plan has no ``ip6``
table. :func:`guard_ruleset` is the IPv6 egress guard every namespace of an IPv6 testbed loads
before its links exist: no IPv6 packet leaves an interface unless both its addresses lie in
2001:2::/48 (it catches the MLD reports the kernel sends by itself). The Internet's guard also
sources its ICMPv6 errors from the address they concern (``ICMP6_QUOTED_DST``).

A chain is hooked only when it has rules (no ``tproxy`` chain without tarpits or middleboxes,
no router ``schedule`` or ``forward`` chain without cuts, hop-limit sets, losses or router
errors): every hooked chain costs every packet that passes the hook, and an IPv6 packet a
header walk more, so the testbed's kernels leave more of the machine to the scanner.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from liveness.safety import BENCHMARK_NET, BENCHMARK_NET6
from liveness.testbed.behaviours import Behaviour, host_chain
from liveness.testbed.layout import Layout
from liveness.testbed.plan import Plan, host6_text
from liveness.testbed.spec import AnyNet
from liveness.testbed.tcp_servers import internal_port

__all__ = [
    "FAMILY",
    "MIDDLEBOX_PORT",
    "TARPIT_PORT",
    "Cut",
    "Family",
    "GuardRole",
    "guard_ruleset",
    "inet_ruleset",
    "router_ruleset",
    "schedule_cuts",
    "schedule_steps",
]

TARPIT_PORT = 4
MIDDLEBOX_PORT = 5
SERVICE_PRIORITY = 10  # after the behaviour chains (filter, 0): they see the probed port
SCHEDULE_PRIORITY = -200
GUARD_PRIORITY = 300  # after every other chain: the guard sees the packet as it leaves
LOSS_SCALE = 1_000_000
ICMP6_ERRORS = ("destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem")
ICMP6_QUOTED_DST = "@th,256,128"
"""Where an ICMPv6 error holds the destination of the packet it quotes: 8 bytes of ICMPv6
header, then the quoted IPv6 header's destination at byte 24 (bits 256 to 383). The Internet
namespace sources its ICMPv6 errors from there, as the host at that address would: the kernel
would otherwise pick an assigned address, since the range is AnyIP, not assigned."""


@dataclass(frozen=True)
class Family:
    """What differs between the ``ip`` and the ``ip6`` tables."""

    af: int
    table: str  # nft family of the table: ip, ip6
    addr_type: str
    daddr: str
    everything: str  # the prefix that holds every address (the bursty loss's bad state)
    bench: AnyNet
    echo_request: str
    hop_limit_set: str
    router_rejects: tuple[tuple[str, str], ...]  # router error -> reject statement


FAMILY = {
    4: Family(
        4,
        "ip",
        "ipv4_addr",
        "ip daddr",
        "0.0.0.0/0",
        BENCHMARK_NET,
        "icmp type echo-request",
        "ip ttl set 1",
        (
            ("prohibit", "reject with icmp type admin-prohibited"),
            ("host_unreach", "reject with icmp type host-unreachable"),
            ("net_unreach", "reject with icmp type net-unreachable"),
            ("net_prohibited", "reject with icmp type net-prohibited"),
            ("host_prohibited", "reject with icmp type host-prohibited"),
        ),
    ),
    6: Family(
        6,
        "ip6",
        "ipv6_addr",
        "ip6 daddr",
        "::/0",
        BENCHMARK_NET6,
        "icmpv6 type echo-request",
        "ip6 hoplimit set 1",
        (
            ("prohibit", "reject with icmpv6 type admin-prohibited"),
            ("host_unreach", "reject with icmpv6 type addr-unreachable"),
            ("net_unreach", "reject with icmpv6 type no-route"),
            ("net_prohibited", "reject with icmpv6 type admin-prohibited"),
            ("host_prohibited", "reject with icmpv6 type admin-prohibited"),
            ("policy_fail", "reject with icmpv6 type policy-fail"),
            ("reject_route", "reject with icmpv6 type reject-route"),
        ),
    ),
}


def _ipstr(addrs: NDArray[np.uint32]) -> list[str]:
    """Dotted quads of a uint32 array, vectorised."""
    octets = (addrs[:, None] >> np.array([24, 16, 8, 0], dtype=np.uint32)) & np.uint32(255)
    text = octets.astype(str)
    joined = np.char.add(np.char.add(text[:, 0], "."), text[:, 1])
    joined = np.char.add(np.char.add(joined, "."), text[:, 2])
    joined = np.char.add(np.char.add(joined, "."), text[:, 3])
    return joined.tolist()  # type: ignore[no-any-return]


def _addrs(plan: Plan, af: int, values: NDArray[np.generic]) -> list[str]:
    """Text of a family's population addresses (uint32, or IPv6 /64 prefixes of ``::1``)."""
    if af == 6:
        return host6_text(values.astype(np.uint64))
    return _ipstr(values.astype(np.uint32))


def _families(plan: Plan) -> list[Family]:
    return [FAMILY[4], FAMILY[6]] if plan.has_ipv6 else [FAMILY[4]]


def _assigned(plan: Plan, af: int) -> dict[str, NDArray[np.generic]]:
    return dict(plan.assigned6 if af == 6 else plan.assigned)


def _elements(items: Sequence[str]) -> str:
    return f" elements = {{ {', '.join(items)} }}" if items else ""


def inet_ruleset(plan: Plan) -> str:
    """The Internet namespace's nftables ruleset: per family, one map, one chain per behaviour."""
    return "".join(_inet_table(plan, fam) for fam in _families(plan))


def _inet_table(plan: Plan, fam: Family) -> str:
    parts: list[str] = []
    elements: list[str] = []
    tarpits: list[str] = []
    served: list[str] = []
    internal: dict[int, int] = {}
    middleboxes: list[str] = []
    for name, addrs in _assigned(plan, fam.af).items():
        behaviour = plan.spec.behaviours[name]
        if behaviour.router is not None:
            continue
        chain = f"b_{name}"
        parts.append(host_chain(behaviour, chain, fam.af))
        text = _addrs(plan, fam.af, addrs)
        elements.extend(f"{a} : jump {chain}" for a in text)
        if behaviour.tarpit:
            tarpits.extend(text)
        if behaviour.middlebox:
            middleboxes.extend(text)
        if behaviour.tcp_services:
            ports = _service_ports(behaviour)
            internal.update({inner: port for port, inner in ports.items()})
            parts.append(
                f"\tchain s_{name} {{\n\t\ttcp dport set tcp dport map {_map(ports)}\n\t}}\n"
            )
            served.extend(f"{a} : jump s_{name}" for a in text)
    size = max(len(elements), 1) * 2
    own = plan.inet_ip6 if fam.af == 6 else plan.inet_ip
    if served:
        parts.append(
            f"\tmap service {{ type {fam.addr_type} : verdict; size {len(served) * 2};"
            f"{_elements(served)} }}\n"
            f"\tchain service_in {{\n\t\ttype filter hook input priority {SERVICE_PRIORITY};\n"
            f"\t\t{fam.daddr} vmap @service\n\t}}\n"
            "\tchain service_out {\n\t\ttype filter hook output priority filter;\n"
            f"\t\ttcp sport set tcp sport map {_map(internal)}\n\t}}\n"
        )
    tproxy = [  # a hook only where there is something to steer: every hook costs every packet
        (name, port, addrs)
        for name, port, addrs in (
            ("tarpit", TARPIT_PORT, tarpits),
            ("middlebox", MIDDLEBOX_PORT, middleboxes),
        )
        if addrs
    ]
    if tproxy:
        parts.extend(
            f"\tset {name} {{ type {fam.addr_type}; size {len(addrs) * 2};{_elements(addrs)} }}\n"
            for name, _, addrs in tproxy
        )
        parts.append(
            "\tchain tarpit_tproxy {\n\t\ttype filter hook prerouting priority mangle;\n"
            + "".join(
                f"\t\t{fam.daddr} @{name} meta l4proto tcp tproxy to :{port}\n"
                for name, port, _ in tproxy
            )
            + "\t}\n"
        )
    return (
        f"table {fam.table} liveness {{\n"
        f"\tmap behaviour {{ type {fam.addr_type} : verdict; size {size};"
        f"{_elements(elements)} }}\n"
        + "".join(parts)
        + "\tchain input {\n\t\ttype filter hook input priority filter;\n"
        f'\t\tiifname "lo" accept\n\t\t{fam.daddr} {own} accept\n'
        f"\t\t{fam.daddr} vmap @behaviour\n\t\tdrop\n\t}}\n}}\n"
    )


def _service_ports(behaviour: Behaviour) -> dict[int, int]:
    """Probed port -> the internal port of the server behind it, for one behaviour."""
    return {port: internal_port(proto, port) for port, proto in behaviour.tcp_services.items()}


def _map(pairs: dict[int, int]) -> str:
    return "{ " + ", ".join(f"{k} : {v}" for k, v in sorted(pairs.items())) + " }"


GuardRole = Literal["host", "router", "internet"]


def guard_ruleset(role: GuardRole) -> str:
    """The IPv6 egress guard of one namespace (loaded before any link exists): IPv6 packets
    leave an interface only between addresses of 2001:2::/48; the router forwards no other.
    Its ``counter`` shows what it stopped (the kernel's own MLD reports, from ``::``).

    The Internet namespace's guard first sources its ICMPv6 errors from the address they
    concern (:data:`ICMP6_QUOTED_DST`), so the guard checks the source the packet leaves with.
    It is done here rather than in a chain of its own: each IPv6 hook a packet passes costs it
    a header walk (``ipv6_find_hdr``), and the guard's hook is passed anyway."""
    bench = str(BENCHMARK_NET6)
    rules = f"\t\tip6 saddr {bench} ip6 daddr {bench} accept\n\t\tcounter drop\n"
    forward = (
        f"\tchain forward {{\n\t\ttype filter hook forward priority {GUARD_PRIORITY}; "
        f"policy accept;\n{rules}\t}}\n"
        if role == "router"
        else ""
    )
    rewrite = (
        f"\t\ticmpv6 type {{ {', '.join(ICMP6_ERRORS)} }} ip6 saddr set {ICMP6_QUOTED_DST}\n"
        if role == "internet"
        else ""
    )
    return (
        "table ip6 liveness_guard {\n"
        f"\tchain output {{\n\t\ttype filter hook output priority {GUARD_PRIORITY}; "
        f'policy accept;\n\t\toifname "lo" accept\n{rewrite}{rules}\t}}\n' + forward + "}\n"
    )


@dataclass(frozen=True)
class Cut:
    """One drop rule of the schedule: packets from these router interfaces to these nets, in
    one family's table."""

    set_name: str
    ifnames: tuple[str, ...]
    nets: tuple[AnyNet, ...]
    start: float
    end: float
    af: int = 4


def schedule_cuts(plan: Plan, layout: Layout) -> list[Cut]:
    """The router drop rules each scheduled event switches on and off, per family."""
    ifname = {vp.name: vp.router_ifname for vp in layout.vps}
    lans = {vp.name: {4: vp.lan, 6: vp.lan6} for vp in plan.spec.vps}
    cuts = []
    for k, event in enumerate(plan.spec.events):
        for af in event.families:
            if event.kind == "island":
                vp = event.vps[0]
                vp_lan = lans[vp][af]
                assert vp_lan is not None
                rest = _exclude(FAMILY[af].bench, vp_lan)
                others = tuple(ifname[v] for v in ifname if v != vp)
                cuts.append(Cut(f"ev{k}_out", (ifname[vp],), rest, event.start, event.end, af))
                if others:
                    cuts.append(Cut(f"ev{k}_in", others, (vp_lan,), event.start, event.end, af))
            else:
                ifs = tuple(ifname[v] for v in event.vps)
                nets = tuple(b for b in event.blocks if b.version == af)
                cuts.append(Cut(f"ev{k}", ifs, nets, event.start, event.end, af))
    return cuts


def _exclude(bench: AnyNet, lan: AnyNet) -> tuple[AnyNet, ...]:
    """The benchmarking range of ``lan``'s family without ``lan``, as sorted CIDRs."""
    if isinstance(bench, ipaddress.IPv4Network) and isinstance(lan, ipaddress.IPv4Network):
        return tuple(sorted(bench.address_exclude(lan)))
    if isinstance(bench, ipaddress.IPv6Network) and isinstance(lan, ipaddress.IPv6Network):
        return tuple(sorted(bench.address_exclude(lan)))
    raise ValueError(f"{lan} is not of the family of {bench}")


def _ifset(ifnames: Iterable[str]) -> str:
    return "{ " + ", ".join(f'"{name}"' for name in ifnames) + " }"


def router_ruleset(plan: Plan, layout: Layout, cuts: list[Cut]) -> str:
    """The router's nftables ruleset: schedule drops, router errors, loss steering."""
    return "".join(
        _router_table(plan, layout, [c for c in cuts if c.af == fam.af], fam)
        for fam in _families(plan)
    )


def _router_table(plan: Plan, layout: Layout, cuts: list[Cut], fam: Family) -> str:
    errors: list[str] = []
    ttl: list[str] = []
    for name, addrs in _assigned(plan, fam.af).items():
        kind = plan.spec.behaviours[name].router
        if kind == "ttl_exceeded":
            ttl.extend(_addrs(plan, fam.af, addrs))
        elif kind is not None:
            errors.extend(f"{a} : jump r_{kind}" for a in _addrs(plan, fam.af, addrs))
    sets, pre, fwd = [], [], []
    for cut in cuts:
        active = [str(n) for n in cut.nets] if cut.start <= 0 else []
        sets.append(
            f"\tset {cut.set_name} {{ type {fam.addr_type}; flags interval; auto-merge;"
            f"{_elements(active)} }}\n"
        )
        pre.append(f"\t\tiifname {_ifset(cut.ifnames)} {fam.daddr} @{cut.set_name} drop\n")
    vp_if = {vp.name: vp.router_ifname for vp in layout.vps}
    population = plan.population6 if fam.af == 6 else plan.population
    masks = plan.loss_masks6 if fam.af == 6 else plan.loss_masks
    for k, (entry, mask) in enumerate(zip(plan.spec.losses, masks, strict=True)):
        if fam.af not in entry.families:
            continue
        match = f"iifname {_ifset(vp_if[v] for v in entry.vps)}"
        if not entry.selection.everything:
            lossy = _addrs(plan, fam.af, population[mask])
            sets.append(
                f"\tset loss{k} {{ type {fam.addr_type}; size {max(len(lossy), 1) * 2};"
                f"{_elements(lossy)} }}\n"
            )
            match += f" {fam.daddr} @loss{k}"
        if entry.gemodel is None:
            if entry.loss:
                fwd.append(f"\t\t{match} {_random_drop(entry.loss)}")
        else:
            _, _, good, bad = entry.gemodel
            sets.append(f"\tset ge{k} {{ type {fam.addr_type}; flags interval; }}\n")
            if good:
                fwd.append(f"\t\t{match} {fam.daddr} != @ge{k} {_random_drop(good)}")
            fwd.append(f"\t\t{match} {fam.daddr} @ge{k} {_random_drop(bad)}")
    chains: list[str] = []
    if errors:
        sets.append(
            f"\tmap router_error {{ type {fam.addr_type} : verdict; size {len(errors) * 2};"
            f"{_elements(errors)} }}\n"
        )
        chains.extend(
            f"\tchain r_{kind} {{\n\t\t{statement}\n\t}}\n"
            for kind, statement in fam.router_rejects
        )
        fwd.append(f"\t\t{fam.daddr} vmap @router_error\n")
    if ttl:
        sets.append(
            f"\tset ttl_exceeded {{ type {fam.addr_type}; size {len(ttl) * 2};{_elements(ttl)} }}\n"
        )
        pre.append(f"\t\t{fam.daddr} @ttl_exceeded {fam.hop_limit_set}\n")
    # A hook only where it has rules: every hook costs every packet that passes it.
    if pre:
        chains.append(
            f"\tchain schedule {{\n\t\ttype filter hook prerouting priority {SCHEDULE_PRIORITY};\n"
            + "".join(pre)
            + "\t}\n"
        )
    if fwd:
        chains.append(
            "\tchain forward {\n\t\ttype filter hook forward priority filter;\n"
            + "".join(fwd)
            + "\t}\n"
        )
    return f"table {fam.table} liveness {{\n" + "".join(sets) + "".join(chains) + "}\n"


def _random_drop(probability: float) -> str:
    """An nft statement dropping a packet with this probability (in millionths)."""
    threshold = round(probability * LOSS_SCALE)
    if threshold >= LOSS_SCALE:
        return "drop\n"
    return f"numgen random mod {LOSS_SCALE} < {threshold} drop\n"


def schedule_steps(cuts: list[Cut]) -> list[tuple[float, str]]:
    """``[seconds, nft commands]``: when each cut's set is filled and flushed."""
    steps: dict[float, list[str]] = {}
    for cut in cuts:
        table = FAMILY[cut.af].table
        if cut.start > 0:
            elements = ", ".join(str(n) for n in cut.nets)
            steps.setdefault(cut.start, []).append(
                f"add element {table} liveness {cut.set_name} {{ {elements} }}"
            )
        if cut.end != float("inf"):
            steps.setdefault(cut.end, []).append(f"flush set {table} liveness {cut.set_name}")
    return [(at, "\n".join(lines) + "\n") for at, lines in sorted(steps.items())]
