"""ZMap's probe-module names (``-M``) and their liveness probes, for users of ZMap.

``-M icmp_echoscan`` is ``--probes icmp_echo``; ``-M tcp_synscan -p 80,443`` is one
``tcp_syn`` probe per port; ``-M dns --probe-args A,example.com`` asks that question;
``-M ntp`` is ``udp_ntp``; ``-M udp -p 161 --probe-args file:snmp2_161.pkt`` (or ``hex:``,
``text:``, or one of our named payloads, or nothing: the port's well-known payload) is one
``udp:PORT`` probe per port, the payload bytes carried in the probe list as hex.
"""

from __future__ import annotations

from liveness.errors import InputError
from liveness.packet.udp_payloads import default_payload, parse_payload, payloads

__all__ = ["PROBE_MODULES", "probes_for_module"]

PROBE_MODULES: dict[str, str] = {
    "icmp_echoscan": "ICMP echo request (liveness: icmp_echo)",
    "tcp_synscan": "TCP SYN to each -p port (liveness: tcp_syn:PORT)",
    "dns": "DNS query, --probe-args TYPE,NAME (liveness: udp_dns:TYPE:NAME)",
    "ntp": "NTP client request (liveness: udp_ntp)",
    "udp": "a UDP payload to each -p port, --probe-args text:TEXT, hex:HEX, file:PATH or NAME "
    f"(named: {', '.join(payloads())}; default: the port's) (liveness: udp:PORT[:PAYLOAD])",
}


def probes_for_module(module: str, ports: str | None, probe_args: str | None) -> str:
    """The ``--probes`` text that ZMap's ``-M module`` (with ``-p``, ``--probe-args``) means."""
    if module == "udp":
        return _udp_probes(ports, probe_args)
    if module not in PROBE_MODULES:
        known = ", ".join(PROBE_MODULES)
        raise InputError(f"-M/--probe-module: unknown module {module!r}; known: {known}")
    if probe_args is not None and module != "dns":
        raise InputError(f"--probe-args: -M {module} takes no probe arguments")
    if module == "icmp_echoscan":
        return "icmp_echo"
    if module == "ntp":
        return "udp_ntp"
    if module == "tcp_synscan":
        if not ports:
            raise InputError("-M tcp_synscan needs ports (-p/--target-ports), as in ZMap")
        return "tcp_syn"
    if probe_args is None:
        return "udp_dns"
    qtype, sep, name = probe_args.partition(",")
    if not sep or not qtype.strip() or not name.strip():
        raise InputError(
            f"--probe-args: {probe_args!r} is not TYPE,NAME (as ZMap's dns module: A,example.com)"
        )
    return f"udp_dns:{qtype.strip()}:{name.strip()}"


def _udp_probes(ports: str | None, probe_args: str | None) -> str:
    """``udp:PORT:...`` for each -p port: a named payload by name, raw bytes as hex (so paths
    and text with commas survive the probe list, and the list records the bytes sent)."""
    from liveness.probes.registry import parse_ports

    if not ports:
        raise InputError("-M udp needs ports (-p/--target-ports), as in ZMap")
    port_list = parse_ports(ports)
    if probe_args is None:
        missing = [port for port in port_list if default_payload(port) is None]
        if missing:
            raise InputError(
                f"-M udp: port {missing[0]} has no default payload; give --probe-args "
                "(text:TEXT, hex:HEX, file:PATH or a payload name)"
            )
        return ",".join(f"udp:{port}" for port in port_list)
    payload = parse_payload(probe_args, "--probe-args")
    spec = payload.name or f"hex:{payload.data.hex()}"
    return ",".join(f"udp:{port}:{spec}" for port in port_list)
