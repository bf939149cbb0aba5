"""The network rule, in code: where the testbed may build and what the tests may touch.

The testbed refuses any address outside the benchmarking ranges: 198.18.0.0/15 for IPv4
(RFC 2544) and 2001:2::/48 for IPv6 (RFC 5180). The scanner's own rule (refuse blocklisted
targets unless an allowlist names them) lives in ``liveness.targets``.
"""

from __future__ import annotations

import ipaddress

from liveness.errors import InputError

__all__ = [
    "BENCHMARK_NET",
    "BENCHMARK_NET6",
    "in_benchmark_range",
    "require_benchmark_net",
    "require_benchmark_range",
    "require_benchmark_range6",
]

BENCHMARK_NET = ipaddress.IPv4Network("198.18.0.0/15")
BENCHMARK_NET6 = ipaddress.IPv6Network("2001:2::/48")


def _outside(where: str, value: str, bench: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return (
        f"{where}: {value} is outside the benchmarking range {bench}; "
        "the testbed builds nothing else"
    )


def require_benchmark_range(value: str, where: str) -> ipaddress.IPv4Network:
    """Parse an IPv4 address or CIDR and insist it lies inside 198.18.0.0/15.

    ``where`` names the place the value came from (file and key) for the error message.
    """
    try:
        net = ipaddress.IPv4Network(value, strict=False)
    except ValueError as exc:
        hint = "; IPv6 goes in the keys ending in 6" if ":" in value else ""
        raise InputError(
            f"{where}: {value!r} is not an IPv4 address or CIDR ({exc}){hint}"
        ) from None
    if not net.subnet_of(BENCHMARK_NET):
        raise InputError(_outside(where, value, BENCHMARK_NET))
    return net


def require_benchmark_range6(value: str, where: str) -> ipaddress.IPv6Network:
    """Parse an IPv6 address or CIDR and insist it lies inside 2001:2::/48."""
    try:
        net = ipaddress.IPv6Network(value, strict=False)
    except ValueError as exc:
        raise InputError(f"{where}: {value!r} is not an IPv6 address or CIDR ({exc})") from None
    if not net.subnet_of(BENCHMARK_NET6):
        raise InputError(_outside(where, value, BENCHMARK_NET6))
    return net


def require_benchmark_net(value: str, where: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Either family: IPv4 inside 198.18.0.0/15 or IPv6 inside 2001:2::/48 (told by a ':')."""
    if ":" in value:
        return require_benchmark_range6(value, where)
    return require_benchmark_range(value, where)


def in_benchmark_range(address: str) -> bool:
    """Whether one textual address lies inside either benchmarking range (for capture checks)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        return ip in BENCHMARK_NET6
    return ip in BENCHMARK_NET
