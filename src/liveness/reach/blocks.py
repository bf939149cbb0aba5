"""Block names of both address families, vectorised: the ``target`` text of block observations.

An IPv4 block is ``a.b.c.d/len`` (the /24 of Trinocular by default); an IPv6 block is its
network address in RFC 5952 text with the prefix length, ``2001:db8:1::/48`` (a /48 by
default, or a /64), as :func:`ipaddress.ip_network` prints it. Every reader and the monitor
name blocks this way, with ``af`` 4 or 6 on the row, so the detectors (which compare names)
and ``--vp-blocks`` (which compares canonical CIDR text) agree.

IPv6 blocks are keyed by the high 64 bits of the address (``uint64``), so a prefix is at most
/64 (the longest Trinocular-style IPv6 block).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from liveness.errors import InputError
from liveness.output.addresses import format_ipv6, join_strings
from liveness.output.schema import ADDR6

__all__ = [
    "PREFIX6_RANGE",
    "PREFIX_RANGE",
    "block_af",
    "block_keys6",
    "block_names6",
    "check_prefixes",
    "high64",
]

PREFIX_RANGE = (8, 32)
"""IPv4 block lengths the readers accept."""
PREFIX6_RANGE = (8, 64)
"""IPv6 block lengths the readers accept (a block is keyed by the address's high 64 bits)."""

U64 = npt.NDArray[np.uint64]


def check_prefixes(
    prefix: int, prefix6: int, names: tuple[str, str] = ("block_prefix", "block_prefix6")
) -> None:
    """Refuse block lengths outside :data:`PREFIX_RANGE` / :data:`PREFIX6_RANGE`."""
    for value, (low, high), name in (
        (prefix, PREFIX_RANGE, names[0]),
        (prefix6, PREFIX6_RANGE, names[1]),
    ):
        if not low <= value <= high:
            raise InputError(f"{name}: {value} is not between {low} and {high}")


def _bytes16(addresses: npt.ArrayLike | pa.Array[Any]) -> npt.NDArray[np.uint8]:
    """IPv6 addresses as an ``(n, 16)`` uint8 array (network order), from numpy or Arrow."""
    if isinstance(addresses, pa.ChunkedArray):
        addresses = addresses.combine_chunks()
    if isinstance(addresses, pa.Array):
        array = addresses.cast(ADDR6)
        data = array.buffers()[1]
        if data is None or len(array) == 0:
            return np.zeros((0, 16), np.uint8)
        flat = np.frombuffer(memoryview(data), np.uint8)
        return flat[array.offset * 16 : (array.offset + len(array)) * 16].reshape(-1, 16)
    grid = np.asarray(addresses, dtype=np.uint8)
    if grid.ndim != 2 or grid.shape[1] != 16:
        raise InputError(f"IPv6 addresses: expected an (n, 16) byte array, got shape {grid.shape}")
    return grid


def high64(addresses: npt.ArrayLike | pa.Array[Any]) -> U64:
    """The high 64 bits of IPv6 addresses (``(n, 16)`` uint8 or ``binary(16)``) as uint64."""
    grid = _bytes16(addresses)
    return np.ascontiguousarray(grid[:, :8]).view(">u8").ravel().astype(np.uint64)


def block_keys6(addresses: npt.ArrayLike | pa.Array[Any], prefix: int = 48) -> U64:
    """Each IPv6 address's /``prefix`` block as a uint64 key (the prefix's bits, right-aligned)."""
    return high64(addresses) >> np.uint64(64 - prefix)


def block_names6(keys: U64, prefix: int = 48) -> pa.StringArray:
    """``2001:db8:1::/48`` strings for block keys of :func:`block_keys6` (RFC 5952), vectorised."""
    high = np.asarray(keys, dtype=np.uint64) << np.uint64(64 - prefix)
    grid = np.zeros((len(high), 16), np.uint8)
    grid[:, :8] = np.asarray(high, dtype=">u8").view(np.uint8).reshape(-1, 8)
    binary = pa.FixedSizeBinaryArray.from_buffers(
        ADDR6, len(high), [None, pa.py_buffer(grid.tobytes())]
    )
    names = join_strings([format_ipv6(binary), f"/{prefix}"], "")
    assert isinstance(names, pa.StringArray)
    return names


def block_af(name: str) -> int | None:
    """The address family of a block or address name, or None when it is neither (a service)."""
    try:
        return ipaddress.ip_network(name.strip(), strict=False).version
    except ValueError:
        return None
