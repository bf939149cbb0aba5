"""The liveness taxonomy as constants: probes, families, reply kinds, ICMP error kinds, layers.

Every analysis names things through this module, so the vocabulary of DESIGN.md lives in one
place. Reply rows are reduced to a *class* (probe, reply kind, retransmission) and ICMP error
rows additionally to an *error class* (probe, error kind, sourced by the target or not); the
helpers here encode and decode those small integers. The answers to ``--app-layer``'s TCP
follow-up (reply categories ``app_data``, ``app_ack``, ``app_rst``) get an *application class*
(probe, application group) of their own instead, so they never count as transport replies.
"""

from __future__ import annotations

__all__ = [
    "ALL_PROBES",
    "ALL_TCP_PROBES",
    "APP_ACK",
    "APP_ACTIVE",
    "APP_DATA_OTHER",
    "APP_DATA_VALID",
    "APP_GROUP_NAMES",
    "APP_PROBES",
    "APP_PROTOS",
    "APP_PROTO_ALIASES",
    "APP_PROTO_BASE",
    "APP_RST",
    "CONDITIONAL_PROBES",
    "ERROR_KINDS",
    "ERR_ROUTER",
    "ERR_TARGET",
    "EXPECTED_APP_PROTO",
    "FAMILIES",
    "KIND_ECHO",
    "KIND_NAMES",
    "KIND_RST",
    "KIND_SYNACK",
    "KIND_UDP_INVALID",
    "KIND_UDP_VALID",
    "KNOWN_APP_PROTOS",
    "LAYERS",
    "NEGATIVE_KINDS",
    "N_APP_CLASSES",
    "N_APP_GROUPS",
    "N_CLASSES",
    "N_ERROR_CLASSES",
    "N_ERROR_KINDS",
    "N_KINDS",
    "N_PROBES",
    "OTHER_PROBES",
    "OTHER_UDP_PROBE",
    "OTHER_UDP_PROBES",
    "POSITIVE_KINDS",
    "PROBE_FAMILY",
    "RANDOM_PORT_PROBE",
    "REPLY_KINDS",
    "TCP_PORT_PROBES",
    "UDP_PROBES",
    "UNKNOWN_PROBE",
    "app_class_of",
    "class_of",
    "error_class_of",
    "probe_index",
]

#: The probe types of the default probe set, in the order used everywhere (matrix rows, tables).
TCP_PORT_PROBES: tuple[str, ...] = (
    "tcp_syn:22",
    "tcp_syn:23",
    "tcp_syn:80",
    "tcp_syn:443",
    "tcp_syn:7547",
)
RANDOM_PORT_PROBE = "tcp_syn:random"
APP_PROBES: tuple[str, ...] = ("udp_dns", "udp_ntp")
#: The eight probe types of the study (the random port only serves tarpit detection).
CONDITIONAL_PROBES: tuple[str, ...] = ("icmp_echo", *TCP_PORT_PROBES, *APP_PROBES)
ALL_PROBES: tuple[str, ...] = (*CONDITIONAL_PROBES, RANDOM_PORT_PROBE)
#: The generic UDP probes (``udp:PORT[:PAYLOAD]``, ZMap's ``udp`` module), counted together as
#: one more probe of the UDP family and of the application layer: any UDP answer makes the
#: address application-active, a valid one (``app_valid``, where the payload has a parser)
#: application-alive.
OTHER_UDP_PROBES = "udp:*"
OTHER_UDP_PROBE = len(ALL_PROBES)
#: Index given to the other probe names outside the default set: they count for "all", not for
#: a family.
UNKNOWN_PROBE = OTHER_UDP_PROBE + 1
N_PROBES = UNKNOWN_PROBE + 1
#: The name the sets give the probes outside the default set (``tcp_syn:8080``, ...).
OTHER_PROBES = "<unknown>"
#: The UDP probes of the application-layer analyses: DNS, NTP and the generic ones.
UDP_PROBES: tuple[str, ...] = (*APP_PROBES, OTHER_UDP_PROBES)
#: Every TCP probe: the five ports, the random port, and other ports (outside the default set).
ALL_TCP_PROBES: tuple[str, ...] = (*TCP_PORT_PROBES, RANDOM_PORT_PROBE, OTHER_PROBES)

FAMILIES: dict[str, tuple[str, ...]] = {
    "icmp": ("icmp_echo",),
    "tcp": TCP_PORT_PROBES,
    "udp": UDP_PROBES,
}


def probe_index(name: str) -> int:
    """A probe name's index: its place in :data:`ALL_PROBES`, :data:`OTHER_UDP_PROBE` for a
    generic UDP probe (``udp:161:snmp``), else :data:`UNKNOWN_PROBE`."""
    if name in _INDEX:
        return _INDEX[name]
    return OTHER_UDP_PROBE if name.startswith("udp:") else UNKNOWN_PROBE


_INDEX = {name: i for i, name in enumerate(ALL_PROBES)}
PROBE_FAMILY: dict[str, str] = {p: f for f, probes in FAMILIES.items() for p in probes}

#: Reply kinds: what a reply row says about its responder, independent of the probe.
KIND_ECHO = 0  # ICMP echo reply
KIND_SYNACK = 1  # TCP SYN-ACK
KIND_RST = 2  # TCP RST (with or without ACK)
KIND_UDP_VALID = 3  # a UDP payload that is a valid DNS/NTP reply
KIND_UDP_INVALID = 4  # a UDP payload that is not
ERR_TARGET = 5  # an ICMP error sourced by the probed address itself
ERR_ROUTER = 6  # an ICMP error sourced by another address (a router)
N_KINDS = 7
KIND_NAMES: tuple[str, ...] = (
    "echo_reply",
    "synack",
    "rst",
    "udp_valid",
    "udp_invalid",
    "icmp_error_from_target",
    "icmp_error_from_router",
)
REPLY_KINDS: tuple[int, ...] = tuple(range(N_KINDS))
#: Replies in the probe's own protocol (analysis 2 calls them positive; RST included).
POSITIVE_KINDS: tuple[int, ...] = (
    KIND_ECHO,
    KIND_SYNACK,
    KIND_RST,
    KIND_UDP_VALID,
    KIND_UDP_INVALID,
)
#: Negative replies for the headline: RST and every ICMP error.
NEGATIVE_KINDS: tuple[int, ...] = (KIND_RST, ERR_TARGET, ERR_ROUTER)

#: A reply class: (probe, reply kind, retransmission) packed in one small integer.
N_CLASSES = N_PROBES * N_KINDS * 2


def class_of(probe: int, kind: int, retransmission: bool) -> int:
    """The class number of (probe index, reply kind, answered a retransmission)."""
    return (probe * N_KINDS + kind) * 2 + int(retransmission)


#: ICMP error kinds: destination-unreachable codes 0..15, then the other error types.
ERROR_KINDS: tuple[str, ...] = (
    *(f"unreach_code_{code}" for code in range(16)),
    "time_exceeded",
    "redirect",
    "source_quench",
    "param_problem",
    "other",
)
N_ERROR_KINDS = len(ERROR_KINDS)
N_ERROR_CLASSES = N_PROBES * N_ERROR_KINDS * 2


def error_class_of(probe: int, error_kind: int, from_target: bool) -> int:
    """The error class number of (probe index, error kind, sourced by the target)."""
    return (probe * N_ERROR_KINDS + error_kind) * 2 + int(from_target)


#: Layers of the address map, lowest first: the highest one reached colours a /24.
LAYERS: tuple[str, ...] = (
    "silent",
    "network-alive",
    "transport-active",
    "transport-alive",
    "application-alive",
)


#: What ``app_proto`` says an answer's bytes are (``--app-layer``), in table order; ``other``
#: stands for any value outside the list (an ``app_data`` row should have none).
APP_PROTOS: tuple[str, ...] = ("http", "tls", "ssh", "telnet", "text", "binary", "other")
#: ``app_proto`` values read as another: early files named other printable text ``banner``.
APP_PROTO_ALIASES: dict[str, str] = {"banner": "text"}
#: The protocols recognised by name; on a port that expects another, a service found there.
KNOWN_APP_PROTOS: tuple[str, ...] = ("http", "tls", "ssh", "telnet")
#: The protocol each of the study's ports is expected to speak (the random port, and every
#: port outside the default set, expect none: every known protocol there is unexpected).
EXPECTED_APP_PROTO: dict[str, str] = {
    "tcp_syn:22": "ssh",
    "tcp_syn:23": "telnet",
    "tcp_syn:80": "http",
    "tcp_syn:443": "tls",
    "tcp_syn:7547": "http",
}

#: Application groups: what a TCP probe's follow-up drew from an address. The first four are
#: the rows' own kinds (``app_data`` valid for the port's profile or not, ``app_ack``,
#: ``app_rst``); an address is also in ``active`` for any ``app_active`` answer (data or an
#: ACK of our payload), and in ``proto_<p>`` for data that looks like ``p``.
APP_DATA_VALID = 0
APP_DATA_OTHER = 1
APP_ACK = 2
APP_RST = 3
APP_ACTIVE = 4
APP_PROTO_BASE = 5
APP_GROUP_NAMES: tuple[str, ...] = (
    "data_valid",
    "data_other",
    "ack",
    "rst",
    "active",
    *(f"proto_{p}" for p in APP_PROTOS),
)
N_APP_GROUPS = len(APP_GROUP_NAMES)
N_APP_CLASSES = N_PROBES * N_APP_GROUPS


def app_class_of(probe: int, group: int) -> int:
    """The application class number of (probe index, application group)."""
    return probe * N_APP_GROUPS + group
