"""Parsing captured IPv4 frames in batches: screening, IP-option realignment, field reads.

The reply classifier reads every frame through one fixed-offset structured view (:data:`VIEW`).
That only works when the outer IPv4 header, and the IPv4 header an ICMP error quotes, are 20
bytes long, so rows carrying IP options are first copied into a window with the options cut
out (:func:`screen`). Screening also sorts out what is not an IPv4 packet for us, counting each
reason, so every frame ends in exactly one outcome. Nothing here indexes past a row: lengths
decide what is readable, and malformed or random frames are counted, never raised on.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from liveness.packet.layout import ETHERTYPE_IPV4, PROTO_ICMP, field_view, struct_dtype

__all__ = [
    "OUTER_L4",
    "QUOTE_IP",
    "QUOTE_L4",
    "SCREEN_REASONS",
    "UDP_PAYLOAD",
    "VIEW",
    "WINDOW",
    "Screened",
    "narrow_view",
    "read_fields",
    "screen",
]

WINDOW = 96  # bytes of each frame the classifier reads (after realignment)
OUTER_L4 = 34  # Ethernet + 20-byte IPv4
UDP_PAYLOAD = OUTER_L4 + 8
QUOTE_IP = 42  # ... + 8-byte ICMP header
QUOTE_L4 = 62  # ... + 20-byte quoted IPv4

ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
ICMP_TIMESTAMP = 13
ICMP_TIMESTAMP_REPLY = 14
# ICMP messages that are queries or answers, not errors: they quote no packet (a lookup table
# by type, faster than np.isin on every batch).
ICMP_INFORMATIONAL = np.zeros(256, dtype=bool)
ICMP_INFORMATIONAL[[ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_TIMESTAMP, ICMP_TIMESTAMP_REPLY]] = (
    True
)

VIEW = struct_dtype(
    {
        "eth_type": (">u2", 12),
        "ver_ihl": ("u1", 14),
        "ip_len": (">u2", 16),
        "ipid": (">u2", 18),
        "frag": (">u2", 20),
        "ttl": ("u1", 22),
        "proto": ("u1", 23),
        "src": (">u4", 26),
        "dst": (">u4", 30),
        "sport": (">u2", 34),
        "dport": (">u2", 36),
        "tcp_seq": (">u4", 38),
        "tcp_ack": (">u4", 42),
        "tcp_doff": ("u1", 46),
        "tcp_flags": ("u1", 47),
        "icmp_type": ("u1", 34),
        "icmp_code": ("u1", 35),
        "icmp_id": (">u2", 38),
        "icmp_seq": (">u2", 40),
        "icmp_originate": (">u4", 42),
        "q_ver_ihl": ("u1", 42),
        "q_proto": ("u1", 51),
        "q_src": (">u4", 54),
        "q_dst": (">u4", 58),
        "q_sport": (">u2", 62),
        "q_dport": (">u2", 64),
        "q_seq": (">u4", 66),
        "q_icmp_type": ("u1", 62),
        "q_icmp_id": (">u2", 66),
        "q_icmp_seq": (">u2", 68),
    },
    WINDOW,
)

SCREEN_REASONS: tuple[str, ...] = ("truncated", "not_ip", "malformed", "not_for_us", "fragment")


@dataclass
class Screened:
    """Frames after screening: ``hdr`` (realigned where needed) read through ``rec``,
    ``lengths`` adjusted for the options cut out, ``for_us`` the rows worth classifying,
    ``drops`` the count of every other row by reason (:data:`SCREEN_REASONS`)."""

    hdr: NDArray[np.uint8]
    rec: NDArray[np.void]
    lengths: NDArray[np.int64]
    for_us: NDArray[np.bool_]
    drops: dict[str, int]


def screen(frames: NDArray[np.uint8], lengths: NDArray[np.int64], our_addr: int) -> Screened:
    """Sort ``frames`` (``(n, >= WINDOW)``) into IPv4-for-``our_addr`` or a drop reason, and
    realign IP options (outer, and quoted in ICMP errors) away."""
    rec = field_view(frames, VIEW)
    has_eth = lengths >= 14
    is_ip = has_eth & (rec["eth_type"] == ETHERTYPE_IPV4)
    ver_ihl = rec["ver_ihl"]
    ihl = (ver_ihl & 0x0F).astype(np.int64)
    well_formed = is_ip & ((ver_ihl >> 4) == 4) & (ihl >= 5)
    complete = well_formed & (lengths >= 14 + 4 * ihl)
    to_us = complete & (rec["dst"] == our_addr)
    for_us = to_us & ((rec["frag"] & 0x1FFF) == 0)
    drops = {
        "truncated": int((~has_eth).sum() + (well_formed & ~complete).sum()),
        "not_ip": int((has_eth & ~is_ip).sum()),
        "malformed": int((is_ip & ~well_formed).sum()),
        "not_for_us": int((complete & ~to_us).sum()),
        "fragment": int((to_us & ~for_us).sum()),
    }
    outer_shift = np.where(for_us, 4 * (ihl - 5), 0)
    shifted = np.flatnonzero(outer_shift)
    hdr = frames
    if len(shifted):
        hdr = frames[:, :WINDOW].copy()
        hdr[shifted] = _gather(frames, shifted, outer_shift[shifted], 0)
        rec = field_view(hdr, VIEW)
        lengths = lengths - outer_shift
    # Quoted headers with options, in the ICMP messages that quote one (errors).
    quoting = for_us & (rec["proto"] == PROTO_ICMP) & ~ICMP_INFORMATIONAL[rec["icmp_type"]]
    q_ihl = (rec["q_ver_ihl"] & 0x0F).astype(np.int64)
    q_shift = np.where(
        quoting & (q_ihl > 5) & (lengths >= QUOTE_IP + 4 * q_ihl), 4 * (q_ihl - 5), 0
    )
    q_rows = np.flatnonzero(q_shift)
    if len(q_rows):
        if hdr is frames:
            hdr = frames[:, :WINDOW].copy()
            rec = field_view(hdr, VIEW)
        hdr[q_rows] = _gather(frames, q_rows, outer_shift[q_rows], q_shift[q_rows])
        lengths = lengths - q_shift
    return Screened(hdr, rec, lengths, for_us, drops)


@functools.cache
def narrow_view(view: np.dtype[np.void], names: tuple[str, ...]) -> np.dtype[np.void]:
    """The part of the record dtype ``view`` holding ``names``, cut after the last of them
    (a narrow gather reads only those bytes)."""
    fields = {name: (view.fields[name][0].str, view.fields[name][1]) for name in names}  # type: ignore[index]
    end = max(view.fields[name][1] + view[name].itemsize for name in names)  # type: ignore[index]
    return struct_dtype(fields, end)


def read_fields(
    hdr: NDArray[np.uint8], rows: NDArray[np.int64], names: tuple[str, ...]
) -> dict[str, NDArray[np.integer[Any]]]:
    """Fields of the records ``rows`` as native-endian arrays (one narrow gather, then casts)."""
    view = narrow_view(VIEW, names)
    sub = field_view(hdr[rows, : view.itemsize], view)
    return {name: sub[name].astype(view[name].newbyteorder("=")) for name in names}


def _gather(
    frames: NDArray[np.uint8],
    rows: NDArray[np.int64],
    outer_shift: NDArray[np.int64] | int,
    quote_shift: NDArray[np.int64] | int,
) -> NDArray[np.uint8]:
    """The header windows of ``rows`` with IP options cut out (outer at 34, quoted at 62)."""
    col = np.arange(WINDOW)
    outer = np.broadcast_to(np.asarray(outer_shift), rows.shape)[:, None]
    quote = np.broadcast_to(np.asarray(quote_shift), rows.shape)[:, None]
    cols = col[None, :] + np.where(col >= OUTER_L4, outer, 0) + np.where(col >= QUOTE_L4, quote, 0)
    np.minimum(cols, frames.shape[1] - 1, out=cols)
    return frames[rows[:, None], cols]
