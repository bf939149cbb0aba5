"""Behaviours: what an address answers to each probe, and the nftables chain that makes it so.

A behaviour is either a host behaviour (the Internet namespace's kernel answers, shaped by one
nftables chain per behaviour: accept to let the kernel or a listener answer, ``reject with tcp
reset`` for a closed port, ``reject with icmp type admin-prohibited`` for a host that refuses,
``drop`` for a filter) or a router behaviour (the router namespace answers for the address with an
ICMP error: admin-prohibited, host or network unreachable, or time exceeded).

The same description yields the ground truth (:func:`answers`), so the truth cannot drift from
the mechanism.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from liveness.errors import InputError
from liveness.targets.inputs import excerpt

__all__ = [
    "BUILTIN_BEHAVIOURS",
    "PROBES",
    "TCP_PORTS",
    "Answer",
    "Behaviour",
    "answers",
    "host_chain",
    "parse_behaviour",
]

TCP_PORTS = (22, 23, 80, 443, 7547)
PROBES = (
    "icmp_echo",
    *(f"tcp_syn:{port}" for port in TCP_PORTS),
    "tcp_syn:random",
    "udp_dns",
    "udp_ntp",
)
ICMP_ACTIONS = ("reply", "drop", "prohibit")
TCP_ACTIONS = ("open", "closed", "drop", "prohibit")
UDP_ACTIONS = ("serve", "closed", "drop", "prohibit")
ROUTER_ERRORS = ("prohibit", "host_unreach", "net_unreach", "ttl_exceeded")

# router error -> (reply category, ICMP code)
ROUTER_REPLY = {
    "prohibit": ("icmp_unreach", 13),
    "host_unreach": ("icmp_unreach", 1),
    "net_unreach": ("icmp_unreach", 0),
    "ttl_exceeded": ("icmp_time_exceeded", 0),
}
# the nft statement for each action of a host behaviour
_NFT = {
    "reply": "accept",
    "open": "accept",
    "serve": "accept",
    "drop": "drop",
    "prohibit": "reject with icmp type admin-prohibited",
}


@dataclass(frozen=True)
class Answer:
    """The reply a probe gets: category, ICMP code (-1 if not ICMP), a valid app reply, who."""

    reply: str
    icmp_code: int
    app_valid: bool
    by_router: bool


@dataclass(frozen=True)
class Behaviour:
    """One behaviour. ``tcp`` maps the probed fixed ports to actions; ``tcp_other`` is every
    other port (``open`` there makes a tarpit); ``dns``/``ntp`` ``serve`` runs a real server;
    ``router`` set makes it a router behaviour (the host fields are then unused)."""

    name: str
    icmp: str = "drop"
    tcp: Mapping[int, str] = field(default_factory=dict)
    tcp_other: str = "drop"
    dns: str = "drop"
    ntp: str = "drop"
    udp_other: str = "drop"
    router: str | None = None

    def tcp_action(self, port: int) -> str:
        """The action for a TCP port."""
        return self.tcp.get(port, self.tcp_other)

    @property
    def tarpit(self) -> bool:
        """SYN-ACK on every TCP port: handled by a tproxy to one listener."""
        return self.router is None and self.tcp_other == "open"

    @property
    def silent(self) -> bool:
        """Answers nothing at all."""
        return not any(answers(self).values())


def _udp_answer(action: str) -> Answer | None:
    if action == "serve":
        return Answer("udp", -1, True, False)
    if action == "closed":
        return Answer("icmp_unreach", 3, False, False)
    if action == "prohibit":
        return Answer("icmp_unreach", 13, False, False)
    return None


def _tcp_answer(action: str) -> Answer | None:
    return {
        "open": Answer("synack", -1, False, False),
        "closed": Answer("rst", -1, False, False),
        "prohibit": Answer("icmp_unreach", 13, False, False),
    }.get(action)


def answers(behaviour: Behaviour) -> dict[str, Answer | None]:
    """Probe name -> the answer this behaviour gives (None: silence)."""
    if behaviour.router is not None:
        reply, code = ROUTER_REPLY[behaviour.router]
        return dict.fromkeys(PROBES, Answer(reply, code, False, True))
    result: dict[str, Answer | None] = {
        "icmp_echo": {
            "reply": Answer("echo_reply", -1, False, False),
            "prohibit": Answer("icmp_unreach", 13, False, False),
        }.get(behaviour.icmp)
    }
    for port in TCP_PORTS:
        result[f"tcp_syn:{port}"] = _tcp_answer(behaviour.tcp_action(port))
    result["tcp_syn:random"] = _tcp_answer(behaviour.tcp_other)
    result["udp_dns"] = _udp_answer(behaviour.dns)
    result["udp_ntp"] = _udp_answer(behaviour.ntp)
    return result


def host_chain(behaviour: Behaviour, chain: str) -> str:
    """The nftables chain (in the Internet namespace) that gives a host behaviour."""
    lines = [f"icmp type echo-request {_NFT[behaviour.icmp]}"]
    by_action: dict[str, list[int]] = {}
    for port in TCP_PORTS:
        by_action.setdefault(behaviour.tcp_action(port), []).append(port)
    for action, ports in by_action.items():
        stmt = "reject with tcp reset" if action == "closed" else _NFT[action]
        lines.append(f"tcp dport {{ {', '.join(map(str, ports))} }} {stmt}")
    other = behaviour.tcp_other
    lines.append(
        f"meta l4proto tcp {'reject with tcp reset' if other == 'closed' else _NFT[other]}"
    )
    for port, action in ((53, behaviour.dns), (123, behaviour.ntp)):
        lines.append(f"udp dport {port} {'reject' if action == 'closed' else _NFT[action]}")
    udp = behaviour.udp_other
    lines.append(f"meta l4proto udp {'reject' if udp == 'closed' else _NFT[udp]}")
    lines.append("drop")
    body = "".join(f"\t\t{line}\n" for line in lines)
    return f"\tchain {chain} {{\n{body}\t}}\n"


def _host(
    name: str,
    icmp: str,
    tcp: Mapping[int, str] | None = None,
    tcp_other: str = "drop",
    dns: str = "drop",
    ntp: str = "drop",
    udp_other: str = "drop",
) -> Behaviour:
    return Behaviour(name, icmp, dict(tcp or {}), tcp_other, dns, ntp, udp_other)


def _all_ports(action: str) -> dict[int, str]:
    return dict.fromkeys(TCP_PORTS, action)


# A typical Linux host, closed everywhere but what it serves: RST and port unreachable.
_CLOSED = {"tcp_other": "closed", "dns": "closed", "ntp": "closed", "udp_other": "closed"}

BUILTIN_BEHAVIOURS: dict[str, Behaviour] = {
    b.name: b
    for b in (
        _host("silent", "drop"),
        _host("icmp_only", "reply"),
        _host("linux_host", "reply", {22: "open"}, **_CLOSED),
        _host("web_server", "reply", {80: "open", 443: "open"}, **_CLOSED),
        _host("tcp_no_icmp", "drop", {22: "open", 80: "open", 443: "open"}, **_CLOSED),
        _host(
            "partial_ports",
            "reply",
            {22: "open", 23: "drop", 80: "closed", 443: "open", 7547: "drop"},
            tcp_other="drop",
            dns="closed",
            ntp="drop",
            udp_other="closed",
        ),
        _host("rst_only", "drop", _all_ports("closed"), tcp_other="closed"),
        _host("cpe", "reply", {23: "open", 80: "open", 7547: "open"}, **_CLOSED),
        _host("dns_server", "reply", {22: "open"}, **{**_CLOSED, "dns": "serve"}),
        _host("ntp_server", "reply", {}, **{**_CLOSED, "ntp": "serve"}),
        _host(
            "host_prohibit",
            "reply",
            _all_ports("prohibit"),
            tcp_other="prohibit",
            dns="prohibit",
            ntp="prohibit",
            udp_other="prohibit",
        ),
        _host("tarpit", "reply", _all_ports("open"), **{**_CLOSED, "tcp_other": "open"}),
        *(Behaviour(f"router_{err}", router=err) for err in ROUTER_ERRORS),
    )
}


def _choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise InputError(f"{where}: {excerpt(value)} is not one of {', '.join(allowed)}")
    assert isinstance(value, str)
    return value


def parse_behaviour(name: str, body: Any, where: str) -> Behaviour:
    """A custom behaviour from a spec's ``[behaviour.NAME]`` table."""
    if not isinstance(body, dict):
        raise InputError(f"{where}: must be a table")
    allowed = {"icmp", "tcp", "dns", "ntp", "udp_other", "router"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}")
    if "router" in body:
        if len(body) != 1:
            raise InputError(f"{where}: a router behaviour has only the key router")
        return Behaviour(name, router=_choice(body["router"], ROUTER_ERRORS, f"{where}.router"))
    tcp_raw = body.get("tcp", {})
    if not isinstance(tcp_raw, dict):
        raise InputError(f"{where}.tcp: must be a table of port = action")
    tcp: dict[int, str] = {}
    other = "drop"
    for key, action in tcp_raw.items():
        action = _choice(action, TCP_ACTIONS, f"{where}.tcp.{key}")
        if key == "other":
            other = action
        elif key.isdigit() and int(key) in TCP_PORTS:
            tcp[int(key)] = action
        else:
            raise InputError(
                f"{where}.tcp.{key}: ports are {', '.join(map(str, TCP_PORTS))} or other"
            )
    if other == "open" and any(tcp.get(port, "open") != "open" for port in TCP_PORTS):
        raise InputError(f"{where}.tcp: other = 'open' (a tarpit) needs every port open")
    return Behaviour(
        name,
        _choice(body.get("icmp", "drop"), ICMP_ACTIONS, f"{where}.icmp"),
        tcp,
        other,
        _choice(body.get("dns", "drop"), UDP_ACTIONS, f"{where}.dns"),
        _choice(body.get("ntp", "drop"), UDP_ACTIONS, f"{where}.ntp"),
        _choice(body.get("udp_other", "drop"), UDP_ACTIONS[1:], f"{where}.udp_other"),
    )
