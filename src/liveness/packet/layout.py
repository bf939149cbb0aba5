"""Byte layout of the frames we send and receive: Ethernet II + IPv4 or IPv6 (+ L4), and numpy
views.

An IPv6 frame is an IPv4 frame with a 40-byte network header instead of a 20-byte one: every
transport field sits :data:`IPV6_SHIFT` bytes later (:func:`shift_fields`), so a probe describes
its fields once, at IPv4 offsets.

Headers are written once into a template; per-frame fields are then written through a
*structured view* of the 2-D ``(n, frame_len)`` uint8 batch: a numpy dtype whose named fields sit
at fixed byte offsets with big-endian formats, so ``view["ip_dst"] = targets`` writes one field of
every frame in a single strided, byte-swapping copy.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ETHERTYPE_IPV4",
    "ETHERTYPE_IPV6",
    "ETH_LEN",
    "IPV4_LEN",
    "IPV6_LEN",
    "IPV6_SHIFT",
    "IP_OFF",
    "L4_OFF",
    "L4_OFF6",
    "PROTO_ICMP",
    "PROTO_ICMPV6",
    "PROTO_TCP",
    "PROTO_UDP",
    "ethernet_header",
    "field_view",
    "ipv4_header",
    "ipv6_header",
    "mac_bytes",
    "mac_text",
    "shift_fields",
    "struct_dtype",
]

ETH_LEN = 14
IPV4_LEN = 20
IP_OFF = ETH_LEN
L4_OFF = ETH_LEN + IPV4_LEN
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
IPV6_LEN = 40
IPV6_SHIFT = IPV6_LEN - IPV4_LEN
L4_OFF6 = ETH_LEN + IPV6_LEN
PROTO_ICMPV6 = 58
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
IP_ID = 54321  # constant IP ID, as ZMap sends


def struct_dtype(fields: Mapping[str, tuple[str, int]], itemsize: int) -> np.dtype[np.void]:
    """A structured dtype: ``name -> (format, byte offset)`` over rows of ``itemsize`` bytes.

    Fields may overlap (one view serves TCP, UDP and ICMP interpretations of the same bytes).
    """
    names = list(fields)
    return np.dtype(
        {
            "names": names,
            "formats": [fields[name][0] for name in names],
            "offsets": [fields[name][1] for name in names],
            "itemsize": itemsize,
        }
    )


def field_view(rows: NDArray[np.uint8], dtype: np.dtype[np.void]) -> NDArray[np.void]:
    """View the first ``dtype.itemsize`` bytes of each row of a 2-D uint8 array as one record.

    The rows must have unit byte stride (any row stride); writes go to ``rows``.
    """
    return rows[:, : dtype.itemsize].view(dtype)[:, 0]


def mac_bytes(text: str) -> bytes:
    """``"02:00:00:00:00:01"`` -> 6 bytes; ValueError if malformed."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    return bytes(int(p, 16) for p in parts)


def mac_text(mac: bytes) -> str:
    """6 bytes -> ``"02:00:00:00:00:01"``."""
    return ":".join(f"{b:02x}" for b in mac)


def ethernet_header(src_mac: bytes, dst_mac: bytes, ethertype: int = ETHERTYPE_IPV4) -> bytes:
    """An Ethernet II header (carrying IPv4 unless ``ethertype`` says otherwise)."""
    return dst_mac + src_mac + struct.pack("!H", ethertype)


def shift_fields(fields: Mapping[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    """Fields given at IPv4 frame offsets moved to their IPv6 frame offsets (transport fields
    :data:`IPV6_SHIFT` bytes later; IPv4 header fields have no IPv6 place and are left out)."""
    return {
        name: (fmt, offset + IPV6_SHIFT)
        for name, (fmt, offset) in fields.items()
        if offset >= L4_OFF
    }


def ipv6_header(
    src: bytes, dst: bytes, next_header: int, payload_len: int, hop_limit: int
) -> bytes:
    """A 40-byte IPv6 header (traffic class and flow label 0)."""
    return struct.pack("!IHBB", 6 << 28, payload_len, next_header, hop_limit) + src + dst


def ipv4_header(src_ip: int, dst_ip: int, protocol: int, payload_len: int, ttl: int) -> bytes:
    """A 20-byte IPv4 header with checksum field 0 (filled in per frame)."""
    return struct.pack(
        "!BBHHHBBHII",
        0x45,
        0,
        IPV4_LEN + payload_len,
        IP_ID,
        0,
        ttl,
        protocol,
        0,
        src_ip,
        dst_ip,
    )
