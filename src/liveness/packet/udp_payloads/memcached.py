"""memcached: ``stats`` behind the 8-byte UDP frame header (request id from token word 0);
valid: a reply with our request id whose text starts ``STAT ``."""

from __future__ import annotations

import struct

import numpy as np
from numpy.typing import NDArray

from liveness.packet.udp_payloads import Patch, UdpPayload, be16, starts_with

FRAME_HEADER = struct.pack("!HHHH", 0, 0, 1, 0)  # request id, sequence 0, 1 datagram, reserved


def _check(
    payload: NDArray[np.uint8], payload_len: NDArray[np.int64], tokens: NDArray[np.uint32]
) -> NDArray[np.bool_]:
    ours: NDArray[np.bool_] = be16(payload, 0) == (tokens[:, 0] & np.uint32(0xFFFF))
    return ours & starts_with(payload, payload_len, b"STAT ", off=len(FRAME_HEADER))


PAYLOAD = UdpPayload(
    "memcached",
    FRAME_HEADER + b"stats\r\n",
    port=11211,
    description="memcached stats",
    patches=(Patch(0, 2, 0),),
    check=_check,
)
