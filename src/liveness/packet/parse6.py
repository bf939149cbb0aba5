"""Parsing captured IPv6 frames in batches: screening and field reads, as ``parse`` does for IPv4.

An IPv6 header has a fixed 40 bytes, so no realignment is needed; the reply classifier reads
every frame through one fixed-offset structured view (:data:`VIEW6`) whose transport and
quoted fields carry the *same names* as :data:`liveness.packet.parse.VIEW`'s, 20 (outer) or 40
(quoted) bytes later, so a probe's validator reads IPv6 replies with the code it uses for IPv4.
Addresses are 16-byte fields (``src``, ``dst``, ``q_src``, ``q_dst``) read as ``(n, 16)`` uint8.

Extension headers are not walked: a reply whose next header is not TCP, UDP or ICMPv6 is
counted (``other_protocol``; a fragment header as ``fragment``), and an ICMPv6 error whose
quoted packet carries one does not match a probe of ours (we send none). Screening sorts every
frame into "for us" or exactly one drop reason; nothing here indexes past a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from liveness.packet.layout import ETHERTYPE_IPV6, field_view, struct_dtype
from liveness.packet.parse import narrow_view

__all__ = [
    "ADDRESS_FIELDS",
    "ICMP6_INFORMATIONAL",
    "OUTER_L4_6",
    "QUOTE_L4_6",
    "UDP_PAYLOAD6",
    "VIEW6",
    "WINDOW6",
    "Screened6",
    "read_fields6",
    "screen6",
]

WINDOW6 = 128  # bytes of each frame the classifier reads
OUTER_L4_6 = 54  # Ethernet + 40-byte IPv6
UDP_PAYLOAD6 = OUTER_L4_6 + 8
QUOTE_IP6 = 62  # ... + 8-byte ICMPv6 header
QUOTE_L4_6 = 102  # ... + 40-byte quoted IPv6
NEXT_FRAGMENT = 44

ICMP6_INFORMATIONAL = np.zeros(256, dtype=bool)
ICMP6_INFORMATIONAL[128:] = True  # RFC 4443: types 0-127 are errors, 128-255 informational

ADDRESS_FIELDS: dict[str, int] = {"src": 22, "dst": 38, "q_src": 70, "q_dst": 86}
"""The 16-byte address fields and their offsets."""

VIEW6 = struct_dtype(
    {
        "eth_type": (">u2", 12),
        "ver": ("u1", 14),
        "payload_len": (">u2", 18),
        "proto": ("u1", 20),
        "ttl": ("u1", 21),
        "sport": (">u2", 54),
        "dport": (">u2", 56),
        "tcp_seq": (">u4", 58),
        "tcp_ack": (">u4", 62),
        "tcp_doff": ("u1", 66),
        "tcp_flags": ("u1", 67),
        "icmp_type": ("u1", 54),
        "icmp_code": ("u1", 55),
        "icmp_id": (">u2", 58),
        "icmp_seq": (">u2", 60),
        "q_ver": ("u1", 62),
        "q_proto": ("u1", 68),
        "q_sport": (">u2", 102),
        "q_dport": (">u2", 104),
        "q_seq": (">u4", 106),
        "q_icmp_type": ("u1", 102),
        "q_icmp_id": (">u2", 106),
        "q_icmp_seq": (">u2", 108),
    },
    WINDOW6,
)


@dataclass
class Screened6:
    """IPv6 frames after screening: ``rec`` the :data:`VIEW6` records, ``for_us`` the rows
    worth classifying, ``drops`` every other row's count by reason (as
    :data:`liveness.packet.parse.SCREEN_REASONS`)."""

    hdr: NDArray[np.uint8]
    rec: NDArray[np.void]
    for_us: NDArray[np.bool_]
    drops: dict[str, int]


def screen6(frames: NDArray[np.uint8], lengths: NDArray[np.int64], our_addr: bytes) -> Screened6:
    """Sort ``frames`` (``(n, >= WINDOW6)``) into IPv6-for-``our_addr`` or a drop reason."""
    rec = field_view(frames, VIEW6)
    has_eth = lengths >= 14
    is_ip = has_eth & (rec["eth_type"] == ETHERTYPE_IPV6)
    well_formed = is_ip & ((rec["ver"] >> 4) == 6)
    complete = well_formed & (lengths >= OUTER_L4_6)
    ours = np.frombuffer(our_addr, dtype=np.uint8)
    to_us = complete & (frames[:, 38:54] == ours).all(axis=1)
    for_us = to_us & (rec["proto"] != NEXT_FRAGMENT)
    drops = {
        "truncated": int((~has_eth).sum() + (well_formed & ~complete).sum()),
        "not_ip": int((has_eth & ~is_ip).sum()),
        "malformed": int((is_ip & ~well_formed).sum()),
        "not_for_us": int((complete & ~to_us).sum()),
        "fragment": int((to_us & ~for_us).sum()),
    }
    return Screened6(frames, rec, for_us, drops)


def read_fields6(
    hdr: NDArray[np.uint8], rows: NDArray[np.int64], names: tuple[str, ...]
) -> dict[str, NDArray[Any]]:
    """Fields of the records ``rows``: integers as native-endian arrays, the address fields
    (:data:`ADDRESS_FIELDS`) as ``(m, 16)`` uint8."""
    out: dict[str, NDArray[Any]] = {}
    scalars = tuple(name for name in names if name not in ADDRESS_FIELDS)
    if scalars:
        view = narrow_view(VIEW6, scalars)
        sub = field_view(hdr[rows, : view.itemsize], view)
        out = {name: sub[name].astype(view[name].newbyteorder("=")) for name in scalars}
    for name in names:
        offset = ADDRESS_FIELDS.get(name)
        if offset is not None:
            out[name] = np.ascontiguousarray(hdr[rows, offset : offset + 16])
    return out
