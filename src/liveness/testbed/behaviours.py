"""Behaviours: what an address answers to each probe, and the nftables chain that makes it so.

A behaviour is either a host behaviour (the Internet namespace's kernel answers, shaped by one
nftables chain per behaviour: accept to let the kernel or a listener answer, ``reject with tcp
reset`` for a closed port, ``reject with icmp type admin-prohibited`` for a host that refuses,
``drop`` for a filter) or a router behaviour (the router namespace answers for the address with an
ICMP error: admin-prohibited, host or network unreachable, or time exceeded).

UDP services (``udp_services``) are the named payloads of the generic ``udp:PORT:NAME`` probe:
snmpd answers ``snmp``, the testbed's own responder (:mod:`liveness.testbed.udp_responder`) the
others. A spec whose hosts serve any of them gets truth rows for every ``udp:PORT:NAME`` probe
of :data:`UDP_SERVICES` (an unserved one gets the behaviour's ``udp_other`` answer) and for
``udp:53:dns`` and ``udp:123:ntp`` (answered as ``udp_dns`` and ``udp_ntp``).

Every behaviour has a meaning in both address families, with the ICMPv6 counterparts on IPv6:
admin-prohibited is code 1 (13 in IPv4), a closed UDP port answers port unreachable code 4 (3),
host_unreach is address unreachable code 3 (1), net_unreach is no route code 0 (0), and
ttl_exceeded is hop limit exceeded. The router errors net_prohibited and host_prohibited (IPv4
codes 9 and 10, network and host administratively prohibited) have no ICMPv6 counterpart and
are admin-prohibited (code 1) there. Two router errors exist in ICMPv6 only (``policy_fail``,
code 5, and ``reject_route``, code 6): a spec may give them to IPv6 addresses only.

TCP services (``tcp_services``, port -> one of :data:`APP_PROTOCOLS`) are real servers behind
open ports: nginx speaks ``http`` and ``tls``, OpenSSH's sshd ``ssh``, socat a Telnet banner
(``telnet``), each on any probed port (HTTP on 7547 or 22, SSH on 443). An open port without a
service is the TCP listener's accept-and-close: a handshake, then no payload. The truth's
``app_proto`` of a ``tcp_syn:PORT`` row is the protocol served there (``""`` for none).

Two behaviours SYN-ACK on every port and never answer or ACK data: the ``tarpit``
(``tcp.other = "open"``) and the ACKing ``middlebox`` (``tcp.other = "middlebox"``). Each is a
``tproxy`` to one transparent listener, and nftables lets only SYNs and RSTs through to them,
so the handshake never completes and data is never ACKed (with ``tcp_synack_retries = 0`` the
SYN-ACK is not even repeated). Their SYN-ACKs differ where a scanner sees them: the tarpit's
is the kernel's default (TTL/hop limit 64, MSS 1460 or 1440, window 64240 or so), the
middlebox's has TTL/hop limit :data:`MIDDLEBOX_TTL`, MSS :data:`MIDDLEBOX_MSS` and a small
window (its listener's socket options).

The same description yields the ground truth (:func:`answers`), so the truth cannot drift from
the mechanism.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from liveness.errors import InputError
from liveness.targets.inputs import excerpt

__all__ = [
    "APP_PROTOCOLS",
    "BUILTIN_BEHAVIOURS",
    "FAMILIES",
    "IPV6_ONLY_ERRORS",
    "MIDDLEBOX_MSS",
    "MIDDLEBOX_TTL",
    "PROBES",
    "ROUTER_ERRORS",
    "TCP_PORTS",
    "UDP_SERVICES",
    "Answer",
    "Behaviour",
    "answers",
    "host_chain",
    "parse_behaviour",
    "service_probes",
]

TCP_PORTS = (22, 23, 80, 443, 7547)
FAMILIES = (4, 6)
PROBES = (
    "icmp_echo",
    *(f"tcp_syn:{port}" for port in TCP_PORTS),
    "tcp_syn:random",
    "udp_dns",
    "udp_ntp",
)
# UDP service -> its port; the probe is ``udp:PORT:NAME`` (liveness.packet.udp_payloads)
UDP_SERVICES = {
    "snmp": 161,
    "ssdp": 1900,
    "memcached": 11211,
    "portmapper": 111,
    "netbios": 137,
    "coap": 5683,
}
# the application protocols of TCP services (``tcp_services``), as the truth's ``app_proto``
APP_PROTOCOLS = ("http", "tls", "ssh", "telnet")
ICMP_ACTIONS = ("reply", "drop", "prohibit")
TCP_ACTIONS = ("open", "closed", "drop", "prohibit", "middlebox")
MIDDLEBOX_MSS = 1380  # the MSS option of the middlebox's SYN-ACK (the kernel's: 1460, 1440)
MIDDLEBOX_TTL = 255  # the TTL (hop limit) of the middlebox's SYN-ACK (the kernel's: 64)
UDP_ACTIONS = ("serve", "closed", "drop", "prohibit")
ROUTER_ERRORS = (
    "prohibit",
    "host_unreach",
    "net_unreach",
    "ttl_exceeded",
    "net_prohibited",
    "host_prohibited",
    "policy_fail",
    "reject_route",
)
IPV6_ONLY_ERRORS = ("policy_fail", "reject_route")

# router error -> (reply category, ICMP code), per address family
ROUTER_REPLY = {
    "prohibit": ("icmp_unreach", 13),
    "host_unreach": ("icmp_unreach", 1),
    "net_unreach": ("icmp_unreach", 0),
    "ttl_exceeded": ("icmp_time_exceeded", 0),
    "net_prohibited": ("icmp_unreach", 9),
    "host_prohibited": ("icmp_unreach", 10),
}
ROUTER_REPLY6 = {
    "prohibit": ("icmp_unreach", 1),
    "host_unreach": ("icmp_unreach", 3),
    "net_unreach": ("icmp_unreach", 0),
    "ttl_exceeded": ("icmp_time_exceeded", 0),
    "net_prohibited": ("icmp_unreach", 1),
    "host_prohibited": ("icmp_unreach", 1),
    "policy_fail": ("icmp_unreach", 5),
    "reject_route": ("icmp_unreach", 6),
}
# the ICMP code of a host's own errors: (admin-prohibited, port unreachable) per family
_HOST_CODES = {4: (13, 3), 6: (1, 4)}
# the nft statement for each action of a host behaviour, per family
_NFT = {
    "reply": "accept",
    "open": "accept",
    "middlebox": "accept",
    "serve": "accept",
    "drop": "drop",
    "prohibit": "reject with icmp type admin-prohibited",
}
_NFT6 = {**_NFT, "prohibit": "reject with icmpv6 type admin-prohibited"}
_UDP_CLOSED = {4: "reject", 6: "reject with icmpv6 type port-unreachable"}


@dataclass(frozen=True)
class Answer:
    """The reply a probe gets: category, ICMP code (-1 if not ICMP), a valid app reply, who,
    and on a TCP port the application protocol served there (``""``: none answers data)."""

    reply: str
    icmp_code: int
    app_valid: bool
    by_router: bool
    app_proto: str = ""


@dataclass(frozen=True)
class Behaviour:
    """One behaviour. ``tcp`` maps the probed fixed ports to actions; ``tcp_other`` is every
    other port (``open`` there makes a tarpit); ``dns``/``ntp`` ``serve`` runs a real server;
    ``udp_services`` (names of :data:`UDP_SERVICES`) are answered by real servers;
    ``tcp_services`` maps open ports to the protocol a real server speaks there;
    ``router`` set makes it a router behaviour (the host fields are then unused)."""

    name: str
    icmp: str = "drop"
    tcp: Mapping[int, str] = field(default_factory=dict)
    tcp_other: str = "drop"
    dns: str = "drop"
    ntp: str = "drop"
    udp_other: str = "drop"
    router: str | None = None
    udp_services: tuple[str, ...] = ()
    tcp_services: Mapping[int, str] = field(default_factory=dict)

    def tcp_action(self, port: int) -> str:
        """The action for a TCP port."""
        return self.tcp.get(port, self.tcp_other)

    @property
    def tarpit(self) -> bool:
        """SYN-ACK on every TCP port: handled by a tproxy to one listener."""
        return self.router is None and self.tcp_other == "open"

    @property
    def middlebox(self) -> bool:
        """SYN-ACK on every TCP port, never ACKs data: a tproxy to the middlebox listener."""
        return self.router is None and self.tcp_other == "middlebox"

    @property
    def silent(self) -> bool:
        """Answers nothing at all, in either family."""
        return not any(a for af in FAMILIES for a in answers(self, af, True).values())

    @property
    def ipv6_only(self) -> bool:
        """Has a meaning in IPv6 only (an ICMPv6-only router error)."""
        return self.router in IPV6_ONLY_ERRORS


def _udp_answer(action: str, af: int) -> Answer | None:
    prohibited, port_unreach = _HOST_CODES[af]
    if action == "serve":
        return Answer("udp", -1, True, False)
    if action == "closed":
        return Answer("icmp_unreach", port_unreach, False, False)
    if action == "prohibit":
        return Answer("icmp_unreach", prohibited, False, False)
    return None


def _tcp_answer(action: str, af: int, app_proto: str = "") -> Answer | None:
    return {
        "open": Answer("synack", -1, False, False, app_proto),
        "middlebox": Answer("synack", -1, False, False),
        "closed": Answer("rst", -1, False, False),
        "prohibit": Answer("icmp_unreach", _HOST_CODES[af][0], False, False),
    }.get(action)


def service_probes() -> tuple[str, ...]:
    """The generic UDP probes a testbed with UDP services has truth rows for."""
    named = (f"udp:{port}:{name}" for name, port in UDP_SERVICES.items())
    return ("udp:53:dns", "udp:123:ntp", *named)


def answers(behaviour: Behaviour, af: int = 4, services: bool = False) -> dict[str, Answer | None]:
    """Probe name -> the answer this behaviour gives over IPv4 or IPv6 (None: silence); with
    ``services``, the :func:`service_probes` as well."""
    probes = (*PROBES, *service_probes()) if services else PROBES
    if behaviour.router is not None:
        table = ROUTER_REPLY6 if af == 6 else ROUTER_REPLY
        if behaviour.router not in table:
            return dict.fromkeys(probes)
        reply, code = table[behaviour.router]
        return dict.fromkeys(probes, Answer(reply, code, False, True))
    result: dict[str, Answer | None] = {
        "icmp_echo": {
            "reply": Answer("echo_reply", -1, False, False),
            "prohibit": Answer("icmp_unreach", _HOST_CODES[af][0], False, False),
        }.get(behaviour.icmp)
    }
    for port in TCP_PORTS:
        proto = behaviour.tcp_services.get(port, "")
        result[f"tcp_syn:{port}"] = _tcp_answer(behaviour.tcp_action(port), af, proto)
    result["tcp_syn:random"] = _tcp_answer(behaviour.tcp_other, af)
    result["udp_dns"] = _udp_answer(behaviour.dns, af)
    result["udp_ntp"] = _udp_answer(behaviour.ntp, af)
    if services:
        result["udp:53:dns"] = result["udp_dns"]
        result["udp:123:ntp"] = result["udp_ntp"]
        for name, port in UDP_SERVICES.items():
            action = "serve" if name in behaviour.udp_services else behaviour.udp_other
            result[f"udp:{port}:{name}"] = _udp_answer(action, af)
    return result


def host_chain(behaviour: Behaviour, chain: str, af: int = 4) -> str:
    """The nftables chain (in the Internet namespace) that gives a host behaviour, for the
    ``ip`` table (``af`` 4) or the ``ip6`` table (``af`` 6)."""
    nft = _NFT6 if af == 6 else _NFT
    udp_closed = _UDP_CLOSED[af]
    echo = "icmpv6 type echo-request" if af == 6 else "icmp type echo-request"
    lines = [f"{echo} {nft[behaviour.icmp]}"]
    if behaviour.tarpit or behaviour.middlebox:  # SYNs reach the listener, RSTs end them:
        # no ACK completes a handshake, no data or FIN is ever ACKed
        lines.append("tcp flags & (syn | rst) == 0 drop")
    by_action: dict[str, list[int]] = {}
    for port in TCP_PORTS:
        by_action.setdefault(behaviour.tcp_action(port), []).append(port)
    for action, ports in by_action.items():
        lines.append(f"tcp dport {{ {', '.join(map(str, ports))} }} {_tcp_stmt(action, nft)}")
    lines.append(f"meta l4proto tcp {_tcp_stmt(behaviour.tcp_other, nft)}")
    for port, action in ((53, behaviour.dns), (123, behaviour.ntp)):
        lines.append(f"udp dport {port} {udp_closed if action == 'closed' else nft[action]}")
    served = sorted(UDP_SERVICES[name] for name in behaviour.udp_services)
    if served:
        lines.append(f"udp dport {{ {', '.join(map(str, served))} }} accept")
    udp = behaviour.udp_other
    lines.append(f"meta l4proto udp {udp_closed if udp == 'closed' else nft[udp]}")
    lines.append("drop")
    body = "".join(f"\t\t{line}\n" for line in lines)
    return f"\tchain {chain} {{\n{body}\t}}\n"


def _tcp_stmt(action: str, nft: Mapping[str, str]) -> str:
    return "reject with tcp reset" if action == "closed" else nft[action]


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
        replace(
            _host("udp_server", "reply", {22: "open"}, **_CLOSED),
            udp_services=tuple(UDP_SERVICES),
        ),
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
        _host("middlebox", "reply", _all_ports("middlebox"), tcp_other="middlebox"),
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
    allowed = {"icmp", "tcp", "tcp_services", "dns", "ntp", "udp_other", "udp_services", "router"}
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
    every = {action: all(tcp.get(port, other) == action for port in TCP_PORTS) for action in
             ("open", "middlebox")}  # fmt: skip
    if other == "open" and not every["open"]:
        raise InputError(f"{where}.tcp: a tarpit is other = 'open' with every port open")
    if "middlebox" in (other, *tcp.values()) and not (other == "middlebox" and every[other]):
        raise InputError(
            f"{where}.tcp: an ACKing middlebox is other = 'middlebox' with every port middlebox"
        )
    tcp_services = _tcp_services(body.get("tcp_services", {}), tcp, other, f"{where}.tcp_services")
    return Behaviour(
        name,
        _choice(body.get("icmp", "drop"), ICMP_ACTIONS, f"{where}.icmp"),
        tcp,
        other,
        _choice(body.get("dns", "drop"), UDP_ACTIONS, f"{where}.dns"),
        _choice(body.get("ntp", "drop"), UDP_ACTIONS, f"{where}.ntp"),
        _choice(body.get("udp_other", "drop"), UDP_ACTIONS[1:], f"{where}.udp_other"),
        udp_services=_services(body.get("udp_services", []), f"{where}.udp_services"),
        tcp_services=tcp_services,
    )


def _tcp_services(value: Any, tcp: Mapping[int, str], other: str, where: str) -> dict[int, str]:
    """``tcp_services``: probed port -> protocol, each port open (and the host no tarpit)."""
    if not isinstance(value, dict):
        raise InputError(f"{where}: must be a table of port = {' | '.join(APP_PROTOCOLS)}")
    if value and other == "open":
        raise InputError(f"{where}: a tarpit (tcp.other = 'open') serves no TCP service")
    services: dict[int, str] = {}
    for key, proto in value.items():
        if not (key.isdigit() and int(key) in TCP_PORTS):
            raise InputError(f"{where}.{key}: ports are {', '.join(map(str, TCP_PORTS))}")
        port = int(key)
        action = tcp.get(port, other)
        if action != "open":
            raise InputError(f"{where}.{key}: port {port} is not open (its tcp action is {action})")
        services[port] = _choice(proto, APP_PROTOCOLS, f"{where}.{key}")
    return services


def _services(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise InputError(f"{where}: must be a list of {', '.join(UDP_SERVICES)}")
    for name in value:
        _choice(name, tuple(UDP_SERVICES), where)
    if len(set(value)) != len(value):
        raise InputError(f"{where}: a service is listed twice")
    return tuple(value)
