"""Where to send from: the interface, source address and gateway MAC for a target, as the kernel
would choose them (``ip route get`` and the neighbour table: ARP for IPv4, NDP for IPv6)."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from dataclasses import dataclass

from liveness.errors import RunError

__all__ = ["Route", "lookup_route", "parse_mac", "sending_defaults"]


@dataclass(frozen=True)
class Route:
    """The kernel's choice for reaching one target."""

    ifname: str
    src_ip: str
    gateway_ip: str | None
    gateway_mac: bytes | None


def parse_mac(text: str, flag: str = "-G/--gateway-mac") -> bytes:
    """``aa:bb:cc:dd:ee:ff`` (or with dashes) to 6 bytes; InputError naming ``flag`` otherwise."""
    from liveness.errors import InputError
    from liveness.packet.layout import mac_bytes

    try:
        return mac_bytes(text.strip())
    except ValueError:
        raise InputError(f"{flag}: {text!r} is not a MAC address (aa:bb:cc:dd:ee:ff)") from None


def _ip_json(args: list[str]) -> list[dict[str, object]]:
    try:
        done = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise RunError("the 'ip' command (iproute2) is not installed") from None
    if done.returncode != 0:
        raise RunError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    parsed = json.loads(done.stdout or "[]")
    return parsed if isinstance(parsed, list) else []


def lookup_route(target: str, ifname: str | None = None) -> Route:
    """Ask the kernel how it would reach ``target`` (optionally forced out of ``ifname``)."""
    family = ["-6"] if ipaddress.ip_address(target).version == 6 else []
    args = [*family, "route", "get", target] + (["oif", ifname] if ifname else [])
    routes = _ip_json(args)
    if not routes:
        raise RunError(f"no route to {target}")
    route = routes[0]
    dev = str(route.get("dev", ""))
    src = str(route.get("prefsrc", ""))
    gateway = route.get("gateway")
    neighbour = str(gateway) if gateway else target
    mac: bytes | None = None
    for entry in _ip_json([*family, "neigh", "show", neighbour, "dev", dev]):
        lladdr = entry.get("lladdr")
        if isinstance(lladdr, str):
            mac = parse_mac(lladdr)
            break
    return Route(
        ifname=dev, src_ip=src, gateway_ip=str(gateway) if gateway else None, gateway_mac=mac
    )


def sending_defaults(
    first_target: str, interface: str | None, source_ip: str | None, gateway_mac: str | None
) -> tuple[str, str, str]:
    """``-i``, ``-S`` and ``-G`` where not given, from the kernel's route toward
    ``first_target`` and its neighbour table (as ZMap does); InputError when the gateway's MAC
    address is unknown."""
    from liveness.errors import InputError

    route = lookup_route(first_target, interface)
    if gateway_mac is None and route.gateway_mac is None:
        raise InputError(
            f"-G/--gateway-mac: no neighbour entry for the gateway toward {first_target} on "
            f"{route.ifname}; pass the gateway's MAC address"
        )
    return (
        interface or route.ifname,
        source_ip or route.src_ip,
        gateway_mac or (route.gateway_mac or b"").hex(":"),
    )
