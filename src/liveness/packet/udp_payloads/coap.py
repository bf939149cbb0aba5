"""CoAP: a confirmable ``GET /.well-known/core`` (RFC 6690), message id from token word 0 and a
4-byte token from word 2. Valid: an ACK or RST with our message id, or a response (code class
2, 4 or 5) carrying our token."""

from __future__ import annotations

import struct

import numpy as np
from numpy.typing import NDArray

from liveness.packet.udp_payloads import Patch, UdpPayload, be16, be32

VERSION, CON, ACK, RST = 1, 0, 2, 3
GET = 0x01
URI_PATH = 11
TOKEN_LEN = 4


def _option(delta: int, value: bytes) -> bytes:
    """One option with a delta and a length below 13 (no extended forms needed here)."""
    return bytes([(delta << 4) | len(value)]) + value


def _check(
    payload: NDArray[np.uint8], payload_len: NDArray[np.int64], tokens: NDArray[np.uint32]
) -> NDArray[np.bool_]:
    first = payload[:, 0]
    version = (first >> 6) == VERSION
    kind = (first >> 4) & 0x3
    mid = be16(payload, 2) == (tokens[:, 0] & np.uint32(0xFFFF))
    token = ((first & 0x0F) == TOKEN_LEN) & (be32(payload, 4) == tokens[:, 2])
    response = (payload[:, 1] >> 5) >= 2
    acked = ((kind == ACK) | (kind == RST)) & mid
    answered = token & response & (payload_len >= 4 + TOKEN_LEN)
    whole = payload_len >= 4 + (first & 0x0F)  # the header and all of its token
    valid: NDArray[np.bool_] = whole & version & (acked | answered)
    return valid


PAYLOAD = UdpPayload(
    "coap",
    bytes([(VERSION << 6) | (CON << 4) | TOKEN_LEN, GET])
    + struct.pack("!HI", 0, 0)
    + _option(URI_PATH, b".well-known")
    + _option(0, b"core"),
    port=5683,
    description="CoAP GET /.well-known/core",
    patches=(Patch(2, 2, 0), Patch(4, 4, 2)),
    check=_check,
)
