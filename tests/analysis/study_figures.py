"""The study's figures (Bano et al., CCR 2018, as issue 17 lists them) computed from testbed
truth rows with plain Python sets, independently of ``liveness.analysis``.

``truth_figures(rows, probed)`` takes the truth rows of one VP (dicts with the truth schema's
columns, IPv4) and returns figure name -> value: shares as fractions, orderings as booleans.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

PORTS = ("22", "23", "80", "443", "7547")
TCP = tuple(f"tcp_syn:{p}" for p in PORTS)
UDP = ("udp_dns", "udp_ntp")

# figure -> the study's value, as the issue states it
STUDY: dict[str, float] = {
    "alive_share_of_probed": 0.135,  # 487M of 3.6B
    "echo_share": 0.79,
    "tcp_only_share": 0.16,
    "udp_only_share": 0.02,
    "tcp_udp_added_over_icmp": 0.18,
    "negative_only_added": 0.13,  # "more than 13%"
    "errors_only_share": 0.023,
    "errors_only_by_icmp": 0.20,
    "errors_only_by_tcp": 0.76,
    "errors_only_by_udp": 0.35,
    "code13_share_of_other_unreach": 0.80,
    "code0_10_share_of_other_unreach": 0.15,
    "transport_active_share": 0.538,
    "all_five_ports_share": 0.24,
    "https_active_share": 180 / 262,
    "cwmp_active_share": 159 / 262,
    "only_port_7547_share": 0.115,
    "only_port_22_share": 0.045,  # "3-6% each"
    "only_port_80_share": 0.045,
    "only_port_443_share": 0.045,
    "only_port_23_share": 0.008,
    "tarpit_share": 1.9 / 262,
    "tarpit_inflation_80": 0.035,  # "3-4%"
    "tarpit_inflation_443": 0.035,
    "tarpit_inflation_7547": 0.035,
    "tarpit_inflation_22": 0.10,
    "tarpit_inflation_23": 0.23,
    "retransmission_gain_echo": 0.022,
    "http_given_cwmp": 0.56,
    "tcp_not_echo": 0.26,
    "udp_not_echo": 0.12,
}
ORDERINGS = (
    "port_activity_order",
    "rst_dominates_but_http",
    "cwmp_synack_over_ssh",
    "telnet_implies_ssh_https",
)


def allowed(study: float) -> float:
    """Issue 17's tolerance: 2 percentage points, or a quarter of the value where tighter."""
    return min(0.02, study / 4)


def truth_figures(rows: Iterable[dict[str, Any]], probed: int) -> dict[str, Any]:
    """Every figure of :data:`STUDY` and :data:`ORDERINGS` from truth rows of one VP."""
    responders: dict[str, set[int]] = defaultdict(set)  # probe -> who answered
    by_kind: dict[tuple[str, str], set[int]] = defaultdict(set)  # (probe, reply) -> target
    error_codes: dict[str, dict[int, set[int]]] = {"tcp": defaultdict(set), "udp": defaultdict(set)}
    positive: set[int] = set()  # echo reply, SYN-ACK, UDP payload
    positive_or_rst: set[int] = set()
    errors: dict[str, set[int]] = defaultdict(set)  # family -> responders of ICMP errors
    negative: set[int] = set()
    echo_loss: list[float] = []
    family_of = {"icmp_echo": "icmp", **dict.fromkeys(TCP, "tcp"), **dict.fromkeys(UDP, "udp")}
    for row in rows:
        probe, reply, who = row["probe"], row["reply"], row["responder"]
        responders[probe].add(who)
        if who == row["target"]:
            by_kind[probe, reply].add(who)
        family = family_of.get(probe)
        if reply in ("echo_reply", "synack", "udp"):
            positive.add(who)
        if reply in ("echo_reply", "synack", "udp", "rst"):
            positive_or_rst.add(who)
        if reply == "rst" or reply.startswith("icmp_"):
            negative.add(who)
        if reply.startswith("icmp_"):
            errors["any"].add(who)
            if family is not None:
                errors[family].add(who)
        if reply == "icmp_unreach" and family in error_codes and row["icmp_code"] not in (1, 3):
            error_codes[family][row["icmp_code"]].add(row["target"])
        if reply == "echo_reply":
            echo_loss.append(row["loss"])
    everyone = set().union(*responders.values())
    fam = {
        "icmp": responders["icmp_echo"],
        "tcp": set().union(*(responders[p] for p in TCP)),
        "udp": set().union(*(responders[p] for p in UDP)),
    }
    echo = by_kind["icmp_echo", "echo_reply"]
    errors_only = errors["any"] - positive_or_rst
    synack = {p: by_kind[f"tcp_syn:{p}", "synack"] for p in PORTS}
    rst = {p: by_kind[f"tcp_syn:{p}", "rst"] for p in PORTS}
    active = {p: synack[p] | rst[p] for p in PORTS}
    transport = set().union(*active.values())
    ports_of: dict[int, int] = defaultdict(int)
    for p in PORTS:
        for address in active[p]:
            ports_of[address] += 1
    pits = set(by_kind["tcp_syn:random", "synack"]).intersection(*synack.values())
    udp_active = {p: by_kind[p, "udp"] for p in UDP}

    def given(a: set[int], b: set[int]) -> float:
        return len(a & b) / len(a)

    other = {f: set().union(*codes.values()) for f, codes in error_codes.items()}
    other_total = sum(len(s) for s in other.values())

    def codes_share(codes: tuple[int, ...]) -> float:
        return sum(len(error_codes[f].get(c, set())) for f in error_codes for c in codes) / (
            other_total
        )

    n, ta = len(everyone), len(transport)
    out: dict[str, Any] = {
        "alive_share_of_probed": n / probed,
        "echo_share": len(echo) / n,
        "tcp_only_share": len(fam["tcp"] - fam["icmp"] - fam["udp"]) / n,
        "udp_only_share": len(fam["udp"] - fam["icmp"] - fam["tcp"]) / n,
        "tcp_udp_added_over_icmp": len((fam["tcp"] | fam["udp"]) - fam["icmp"]) / n,
        "negative_only_added": len(negative - positive) / n,
        "errors_only_share": len(errors_only) / n,
        **{
            f"errors_only_by_{f}": len(errors_only & errors[f]) / len(errors_only)
            for f in ("icmp", "tcp", "udp")
        },
        "code13_share_of_other_unreach": codes_share((13,)),
        "code0_10_share_of_other_unreach": codes_share((0, 10)),
        "transport_active_share": ta / n,
        "all_five_ports_share": sum(1 for k in ports_of.values() if k == 5) / ta,
        "https_active_share": len(active["443"]) / ta,
        "cwmp_active_share": len(active["7547"]) / ta,
        **{
            f"only_port_{p}_share": sum(1 for a in active[p] if ports_of[a] == 1) / ta
            for p in PORTS
        },
        "tarpit_share": len(pits) / ta,
        **{f"tarpit_inflation_{p}": len(synack[p] & pits) / len(synack[p] - pits) for p in PORTS},
        # two attempts, each lost with the path's loss: found only by the second
        "retransmission_gain_echo": sum(p - p * p for p in echo_loss)
        / sum(1 - p * p for p in echo_loss),
        "http_given_cwmp": given(active["7547"], active["80"]),
        "tcp_not_echo": sum(1 - given(active[p], echo) for p in PORTS) / len(PORTS),
        "udp_not_echo": sum(1 - given(udp_active[p], echo) for p in UDP) / len(UDP),
    }
    count = {p: len(active[p]) for p in PORTS}
    out["port_activity_order"] = (
        count["443"] > count["7547"] > max(count["22"], count["80"])
        and min(count["22"], count["80"]) > count["23"]
    )
    rst_only = {p: len(rst[p] - synack[p]) for p in PORTS}
    out["rst_dominates_but_http"] = (
        all(rst_only[p] > len(synack[p]) for p in PORTS if p != "80")
        and len(synack["80"]) >= rst_only["80"]
    )
    out["cwmp_synack_over_ssh"] = len(synack["7547"]) > len(synack["22"])
    out["telnet_implies_ssh_https"] = (
        given(active["23"], active["22"]) >= 0.9 and given(active["23"], active["443"]) >= 0.9
    )
    return out
