"""Probe types by name, and the parser of a probe list (``--probes``, ``-p``).

Grammar: a comma-separated list of ``icmp_echo``, ``tcp_syn:PORT`` (or ``tcp_syn:LO-HI``),
bare ``tcp_syn`` (the ``-p`` ports), ``tcp_syn:random``, ``udp_dns[:TYPE[:NAME]]`` and
``udp_ntp``. When ports are given (``-p``), they replace every fixed ``tcp_syn`` port of the list
(at the place of the first one, or at the end), so ``-p 80`` with the default set probes ICMP,
TCP 80, the random port, DNS and NTP.
"""

from __future__ import annotations

from liveness.errors import InputError
from liveness.probes.base import Probe
from liveness.probes.icmp_echo import IcmpEcho
from liveness.probes.tcp_syn import TcpSyn, TcpSynRandom
from liveness.probes.udp_dns import DEFAULT_DNS_NAME, DEFAULT_DNS_TYPE, UdpDns
from liveness.probes.udp_ntp import UdpNtp

__all__ = ["DEFAULT_PROBES", "PROBE_TYPES", "parse_ports", "parse_probes"]

DEFAULT_PROBES = (
    "icmp_echo,tcp_syn:22,tcp_syn:23,tcp_syn:80,tcp_syn:443,tcp_syn:7547,"
    "tcp_syn:random,udp_dns,udp_ntp"
)
PROBE_TYPES: tuple[str, ...] = ("icmp_echo", "tcp_syn", "udp_dns", "udp_ntp")


def parse_ports(text: str, where: str = "-p/--target-ports") -> list[int]:
    """``"22,80-82"`` -> ``[22, 80, 81, 82]`` (order kept, duplicates dropped)."""
    ports: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise InputError(f"{where}: empty port in {text!r}")
        lo_text, _, hi_text = part.partition("-")
        try:
            lo = int(lo_text)
            hi = int(hi_text) if hi_text else lo
        except ValueError:
            raise InputError(f"{where}: {part!r} is not a port or a LO-HI range") from None
        if not 1 <= lo <= hi <= 65535:
            raise InputError(f"{where}: {part!r} must be ports within 1..65535, LO <= HI")
        ports.extend(range(lo, hi + 1))
    return list(dict.fromkeys(ports))


def parse_probes(spec: str, ports: str | None = None) -> list[Probe]:
    """Probes from a list such as :data:`DEFAULT_PROBES`; InputError on anything unknown or bad."""
    items = [item.strip() for item in spec.split(",")]
    if not spec.strip() or any(not item for item in items):
        raise InputError(f"--probes: empty entry in {spec!r}")
    port_list = parse_ports(ports) if ports is not None else None

    ordered: list[tuple[str, object]] = []  # (kind, arg); kind "tcp" holds a list of ports
    tcp_slot: list[int] | None = None
    for item in items:
        name, _, args = item.partition(":")
        if name == "tcp_syn" and args != "random":
            if args:
                fixed = parse_ports(args, where=f"--probes: {item}")
            elif port_list is None:
                raise InputError("--probes: bare tcp_syn needs ports (-p/--target-ports)")
            else:
                fixed = []
            if tcp_slot is None:
                tcp_slot = []
                ordered.append(("tcp", tcp_slot))
            tcp_slot.extend(fixed)
        elif name in PROBE_TYPES:
            ordered.append((name, args))
        else:
            known = ", ".join(PROBE_TYPES)
            raise InputError(f"--probes: unknown probe {name!r} in {item!r} (known: {known})")
    if port_list is not None:
        if tcp_slot is None:
            tcp_slot = []
            ordered.append(("tcp", tcp_slot))
        tcp_slot[:] = port_list
    fixed_ports = list(dict.fromkeys(tcp_slot or []))

    probes: list[Probe] = []
    seen: set[str] = set()
    for kind, arg in ordered:
        if kind == "tcp":
            probes.extend(TcpSyn(port) for port in fixed_ports)
            continue
        assert isinstance(arg, str)
        probe = _make(kind, arg, fixed_ports)
        if probe.name in seen:
            raise InputError(f"--probes: {probe.name} listed twice")
        seen.add(probe.name)
        probes.append(probe)
    if not probes:
        raise InputError("--probes: no probes to send")
    return probes


def _make(kind: str, args: str, fixed_ports: list[int]) -> Probe:
    """One non-fixed-port probe from its name and argument text."""
    if kind == "tcp_syn":  # only "tcp_syn:random" reaches here
        return TcpSynRandom(exclude=fixed_ports)
    if kind == "udp_dns":
        qtype, _, qname = args.partition(":")
        return UdpDns(qtype or DEFAULT_DNS_TYPE, qname or DEFAULT_DNS_NAME)
    if args:
        raise InputError(f"--probes: {kind} takes no arguments (got {args!r})")
    if kind == "icmp_echo":
        return IcmpEcho()
    return UdpNtp()
