"""The nftables rulesets of the Internet and the router namespaces, as text for ``nft -f``.

Per-address behaviour is data, not rules: in the Internet namespace one verdict map sends each
address to its behaviour's chain (one element per address, one chain per behaviour), and tarpits
are one set matched by one ``tproxy`` rule. In the router, one map sends router-error addresses
to a ``reject`` chain, one set sets the TTL of time-exceeded addresses to 1, one set per
scheduled cut drops what the connectivity schedule cuts (the scheduler fills and flushes it),
and one set per loss entry selects the paths where ``numgen random`` drops a share of probes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from liveness.safety import BENCHMARK_NET
from liveness.testbed.behaviours import host_chain
from liveness.testbed.layout import Layout
from liveness.testbed.plan import Plan

__all__ = [
    "TARPIT_PORT",
    "Cut",
    "inet_ruleset",
    "router_ruleset",
    "schedule_cuts",
    "schedule_steps",
]

TARPIT_PORT = 4
SCHEDULE_PRIORITY = -200
LOSS_SCALE = 1_000_000


def _ipstr(addrs: NDArray[np.uint32]) -> list[str]:
    """Dotted quads of a uint32 array, vectorised."""
    octets = (addrs[:, None] >> np.array([24, 16, 8, 0], dtype=np.uint32)) & np.uint32(255)
    text = octets.astype(str)
    joined = np.char.add(np.char.add(text[:, 0], "."), text[:, 1])
    joined = np.char.add(np.char.add(joined, "."), text[:, 2])
    joined = np.char.add(np.char.add(joined, "."), text[:, 3])
    return joined.tolist()  # type: ignore[no-any-return]


def _elements(items: Sequence[str]) -> str:
    return f" elements = {{ {', '.join(items)} }}" if items else ""


def inet_ruleset(plan: Plan) -> str:
    """The Internet namespace's nftables ruleset: one map, one chain per behaviour."""
    chains: list[str] = []
    elements: list[str] = []
    tarpits: list[str] = []
    for name, addrs in plan.assigned.items():
        behaviour = plan.spec.behaviours[name]
        if behaviour.router is not None:
            continue
        chain = f"b_{name}"
        chains.append(host_chain(behaviour, chain))
        elements.extend(f"{a} : jump {chain}" for a in _ipstr(addrs))
        if behaviour.tarpit:
            tarpits.extend(_ipstr(addrs))
    size = max(len(elements), 1) * 2
    return (
        "table ip liveness {\n"
        f"\tmap behaviour {{ type ipv4_addr : verdict; size {size};{_elements(elements)} }}\n"
        f"\tset tarpit {{ type ipv4_addr; size {max(len(tarpits), 1) * 2};"
        f"{_elements(tarpits)} }}\n"
        + "".join(chains)
        + "\tchain tarpit_tproxy {\n\t\ttype filter hook prerouting priority mangle;\n"
        f"\t\tip daddr @tarpit meta l4proto tcp tproxy to :{TARPIT_PORT}\n\t}}\n"
        "\tchain input {\n\t\ttype filter hook input priority filter;\n"
        f'\t\tiifname "lo" accept\n\t\tip daddr {plan.inet_ip} accept\n'
        "\t\tip daddr vmap @behaviour\n\t\tdrop\n\t}\n}\n"
    )


@dataclass(frozen=True)
class Cut:
    """One drop rule of the schedule: packets from these router interfaces to these nets."""

    set_name: str
    ifnames: tuple[str, ...]
    nets: tuple[ipaddress.IPv4Network, ...]
    start: float
    end: float


def schedule_cuts(plan: Plan, layout: Layout) -> list[Cut]:
    """The router drop rules each scheduled event switches on and off."""
    ifname = {vp.name: vp.router_ifname for vp in layout.vps}
    lan = {vp.name: vp.lan for vp in plan.spec.vps}
    cuts = []
    for k, event in enumerate(plan.spec.events):
        if event.kind == "island":
            vp = event.vps[0]
            vp_lan = lan[vp]
            assert vp_lan is not None
            rest = tuple(sorted(BENCHMARK_NET.address_exclude(vp_lan)))
            others = tuple(ifname[v] for v in ifname if v != vp)
            cuts.append(Cut(f"ev{k}_out", (ifname[vp],), rest, event.start, event.end))
            if others:
                cuts.append(Cut(f"ev{k}_in", others, (vp_lan,), event.start, event.end))
        else:
            ifs = tuple(ifname[v] for v in event.vps)
            cuts.append(Cut(f"ev{k}", ifs, event.blocks, event.start, event.end))
    return cuts


def _ifset(ifnames: Iterable[str]) -> str:
    return "{ " + ", ".join(f'"{name}"' for name in ifnames) + " }"


def router_ruleset(plan: Plan, layout: Layout, cuts: list[Cut]) -> str:
    """The router's nftables ruleset: schedule drops, router errors, loss steering."""
    errors: list[str] = []
    ttl: list[str] = []
    for name, addrs in plan.assigned.items():
        kind = plan.spec.behaviours[name].router
        if kind == "ttl_exceeded":
            ttl.extend(_ipstr(addrs))
        elif kind is not None:
            errors.extend(f"{a} : jump r_{kind}" for a in _ipstr(addrs))
    sets, pre, fwd = [], [], []
    for cut in cuts:
        active = [str(n) for n in cut.nets] if cut.start <= 0 else []
        sets.append(
            f"\tset {cut.set_name} {{ type ipv4_addr; flags interval; auto-merge;"
            f"{_elements(active)} }}\n"
        )
        pre.append(f"\t\tiifname {_ifset(cut.ifnames)} ip daddr @{cut.set_name} drop\n")
    vp_if = {vp.name: vp.router_ifname for vp in layout.vps}
    for k, (entry, mask) in enumerate(zip(plan.spec.losses, plan.loss_masks, strict=True)):
        match = f"iifname {_ifset(vp_if[v] for v in entry.vps)}"
        if not entry.selection.everything:
            lossy = _ipstr(plan.population[mask])
            sets.append(
                f"\tset loss{k} {{ type ipv4_addr; size {max(len(lossy), 1) * 2};"
                f"{_elements(lossy)} }}\n"
            )
            match += f" ip daddr @loss{k}"
        if entry.gemodel is None:
            if entry.loss:
                fwd.append(f"\t\t{match} {_random_drop(entry.loss)}")
        else:
            _, _, good, bad = entry.gemodel
            sets.append(f"\tset ge{k} {{ type ipv4_addr; flags interval; }}\n")
            if good:
                fwd.append(f"\t\t{match} ip daddr != @ge{k} {_random_drop(good)}")
            fwd.append(f"\t\t{match} ip daddr @ge{k} {_random_drop(bad)}")
    sets.append(
        f"\tmap router_error {{ type ipv4_addr : verdict; size {max(len(errors), 1) * 2};"
        f"{_elements(errors)} }}\n"
    )
    sets.append(
        f"\tset ttl_exceeded {{ type ipv4_addr; size {max(len(ttl), 1) * 2};{_elements(ttl)} }}\n"
    )
    chains = "".join(
        f"\tchain r_{kind} {{\n\t\treject with icmp type {icmp}\n\t}}\n"
        for kind, icmp in (
            ("prohibit", "admin-prohibited"),
            ("host_unreach", "host-unreachable"),
            ("net_unreach", "net-unreachable"),
        )
    )
    return (
        "table ip liveness {\n"
        + "".join(sets)
        + chains
        + f"\tchain schedule {{\n\t\ttype filter hook prerouting priority {SCHEDULE_PRIORITY};\n"
        + "".join(pre)
        + "\t\tip daddr @ttl_exceeded ip ttl set 1\n\t}\n"
        + "\tchain forward {\n\t\ttype filter hook forward priority filter;\n"
        + "".join(fwd)
        + "\t\tip daddr vmap @router_error\n"
        + "\t}\n}\n"
    )


def _random_drop(probability: float) -> str:
    """An nft statement dropping a packet with this probability (in millionths)."""
    threshold = round(probability * LOSS_SCALE)
    if threshold >= LOSS_SCALE:
        return "drop\n"
    return f"numgen random mod {LOSS_SCALE} < {threshold} drop\n"


def schedule_steps(cuts: list[Cut]) -> list[tuple[float, str]]:
    steps: dict[float, list[str]] = {}
    for cut in cuts:
        if cut.start > 0:
            elements = ", ".join(str(n) for n in cut.nets)
            steps.setdefault(cut.start, []).append(
                f"add element ip liveness {cut.set_name} {{ {elements} }}"
            )
        if cut.end != float("inf"):
            steps.setdefault(cut.end, []).append(f"flush set ip liveness {cut.set_name}")
    return [(at, "\n".join(lines) + "\n") for at, lines in sorted(steps.items())]
