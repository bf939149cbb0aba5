"""Where to send from: the interface, source address and gateway MAC for a target, as the kernel
would choose them (``ip route get`` and the neighbour table)."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from dataclasses import dataclass

from liveness.errors import RunError

__all__ = ["Route", "lookup_route", "parse_mac"]


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

    cleaned = text.strip().replace("-", ":")
    parts = cleaned.split(":")
    try:
        raw = bytes(int(part, 16) for part in parts)
    except ValueError:
        raw = b""
    if len(parts) != 6 or len(raw) != 6 or any(len(p) not in (1, 2) for p in parts):
        raise InputError(f"{flag}: {text!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    return raw


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
    ipaddress.IPv4Address(target)
    args = ["route", "get", target] + (["oif", ifname] if ifname else [])
    routes = _ip_json(args)
    if not routes:
        raise RunError(f"no route to {target}")
    route = routes[0]
    dev = str(route.get("dev", ""))
    src = str(route.get("prefsrc", ""))
    gateway = route.get("gateway")
    neighbour = str(gateway) if gateway else target
    mac: bytes | None = None
    for entry in _ip_json(["neigh", "show", neighbour, "dev", dev]):
        lladdr = entry.get("lladdr")
        if isinstance(lladdr, str):
            mac = parse_mac(lladdr)
            break
    return Route(
        ifname=dev, src_ip=src, gateway_ip=str(gateway) if gateway else None, gateway_mac=mac
    )
