"""NetBIOS name service: a node status query (NBSTAT) for the wildcard name ``*``, the
transaction id from token word 0. Valid: a response (R bit, opcode 0) carrying our id."""

from __future__ import annotations

import struct

import numpy as np
from numpy.typing import NDArray

from liveness.packet.udp_payloads import Patch, UdpPayload, be16

NBSTAT, CLASS_IN = 0x21, 1


def encode_name(name: bytes) -> bytes:
    """RFC 1001 first-level encoding of a 16-byte NetBIOS name (each nibble + 'A')."""
    padded = name.ljust(16, b"\x00")
    halves = bytes(c for byte in padded for c in (0x41 + (byte >> 4), 0x41 + (byte & 0x0F)))
    return bytes([32]) + halves + b"\x00"


def _check(
    payload: NDArray[np.uint8], payload_len: NDArray[np.int64], tokens: NDArray[np.uint32]
) -> NDArray[np.bool_]:
    ours = be16(payload, 0) == (tokens[:, 0] & np.uint32(0xFFFF))
    response = (payload[:, 2] & 0xF8) == 0x80  # R = 1, opcode 0 (query)
    valid: NDArray[np.bool_] = (payload_len >= 12) & ours & response
    return valid


PAYLOAD = UdpPayload(
    "netbios",
    struct.pack("!HHHHHH", 0, 0x0000, 1, 0, 0, 0)
    + encode_name(b"*")
    + struct.pack("!HH", NBSTAT, CLASS_IN),
    port=137,
    description="NetBIOS node status query for *",
    patches=(Patch(0, 2, 0),),
    check=_check,
)
