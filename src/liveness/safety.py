"""The network rule, in code: where the testbed may build and what the tests may touch.

The testbed refuses any address outside the benchmarking range 198.18.0.0/15 (RFC 2544).
The scanner's own rule (refuse blocklisted targets unless an allowlist names them) lives in
``liveness.targets``.
"""

from __future__ import annotations

import ipaddress

from liveness.errors import InputError

__all__ = ["BENCHMARK_NET", "require_benchmark_range"]

BENCHMARK_NET = ipaddress.IPv4Network("198.18.0.0/15")


def require_benchmark_range(value: str, where: str) -> ipaddress.IPv4Network:
    """Parse an address or CIDR and insist it lies inside 198.18.0.0/15.

    ``where`` names the place the value came from (file and key) for the error message.
    """
    try:
        net = ipaddress.IPv4Network(value, strict=False)
    except ValueError as exc:
        raise InputError(f"{where}: {value!r} is not an IPv4 address or CIDR ({exc})") from None
    if not net.subnet_of(BENCHMARK_NET):
        raise InputError(
            f"{where}: {value} is outside the benchmarking range {BENCHMARK_NET}; "
            "the testbed builds nothing else"
        )
    return net
