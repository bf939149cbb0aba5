"""ZMap's probe-module names (``-M``) and their liveness probes, for users of ZMap.

``-M icmp_echoscan`` is ``--probes icmp_echo``; ``-M tcp_synscan -p 80,443`` is one
``tcp_syn`` probe per port; ``-M dns --probe-args A,example.com`` asks that question;
``-M ntp`` is ``udp_ntp``. ZMap's generic ``udp`` module (a payload from ``--probe-args``) has
no liveness counterpart yet, and says so.
"""

from __future__ import annotations

from liveness.errors import InputError

__all__ = ["PROBE_MODULES", "probes_for_module"]

PROBE_MODULES: dict[str, str] = {
    "icmp_echoscan": "ICMP echo request (liveness: icmp_echo)",
    "tcp_synscan": "TCP SYN to each -p port (liveness: tcp_syn:PORT)",
    "dns": "DNS query, --probe-args TYPE,NAME (liveness: udp_dns:TYPE:NAME)",
    "ntp": "NTP client request (liveness: udp_ntp)",
}


def probes_for_module(module: str, ports: str | None, probe_args: str | None) -> str:
    """The ``--probes`` text that ZMap's ``-M module`` (with ``-p``, ``--probe-args``) means."""
    if module == "udp":
        raise InputError(
            "-M/--probe-module: udp (a payload of your own) is not available yet; use -M dns "
            "or -M ntp, or --probes udp_dns / udp_ntp"
        )
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
