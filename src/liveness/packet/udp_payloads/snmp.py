"""SNMPv2c ``GetRequest sysDescr.0`` with community ``public``; the request-id is token word 0
(kept 4 bytes long and positive: 0x40000000-0x7FFFFFFF). Valid: a v2c ``GetResponse`` PDU
carrying our request-id, read through the BER lengths."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from liveness.packet.udp_payloads import Patch, UdpPayload

COMMUNITY = b"public"
SYS_DESCR = bytes([0x2B, 6, 1, 2, 1, 1, 1, 0])  # 1.3.6.1.2.1.1.1.0
INTEGER, OCTET_STRING, NULL, OID, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
GET_REQUEST, GET_RESPONSE = 0xA0, 0xA2
VERSION_2C = 1
ID_BITS = 0x40000000
ID_MASK = 0x3FFFFFFF


def _tlv(tag: int, value: bytes) -> bytes:
    """One BER element with a short-form length (every element here is below 128 bytes)."""
    return bytes([tag, len(value)]) + value


def _message() -> tuple[bytes, int]:
    """The request and the offset of its 4-byte request-id."""
    binding = _tlv(SEQUENCE, _tlv(OID, SYS_DESCR) + _tlv(NULL, b""))
    request_id = _tlv(INTEGER, ID_BITS.to_bytes(4, "big"))
    pdu = _tlv(GET_REQUEST, request_id + _tlv(INTEGER, b"\x00") * 2 + _tlv(SEQUENCE, binding))
    head = _tlv(INTEGER, bytes([VERSION_2C])) + _tlv(OCTET_STRING, COMMUNITY)
    message = _tlv(SEQUENCE, head + pdu)
    return message, message.index(request_id) + 2


def _skip_header(
    payload: NDArray[np.uint8], at: NDArray[np.int64], tag: int, ok: NDArray[np.bool_]
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Past the tag and length of the element at ``at`` (short, 0x81 or 0x82 lengths)."""
    width = payload.shape[1]
    rows = np.arange(len(at))
    ok = ok & (at + 2 <= width)
    safe = np.minimum(at, width - 2)
    ok &= payload[rows, safe] == tag
    first = payload[rows, safe + 1].astype(np.int64)
    size = np.where(first < 0x80, 0, first - 0x80)
    ok &= size <= 2
    return at + 2 + np.minimum(size, 2), ok


def _check(
    payload: NDArray[np.uint8], payload_len: NDArray[np.int64], tokens: NDArray[np.uint32]
) -> NDArray[np.bool_]:
    n, width = payload.shape
    if width < 8:
        return np.zeros(n, dtype=bool)
    rows = np.arange(n)

    def byte(at: NDArray[np.int64]) -> NDArray[np.int64]:
        return payload[rows, np.clip(at, 0, width - 1)].astype(np.int64)

    at, ok = _skip_header(payload, np.zeros(n, np.int64), SEQUENCE, np.ones(n, dtype=bool))
    ok &= (byte(at) == INTEGER) & (byte(at + 1) == 1) & (byte(at + 2) == VERSION_2C)
    at = at + 3
    ok &= (byte(at) == OCTET_STRING) & (byte(at + 1) < 0x80)
    at = at + 2 + byte(at + 1)
    at, ok = _skip_header(payload, at, GET_RESPONSE, ok)
    ok &= (byte(at) == INTEGER) & (byte(at + 1) == 4)
    value = np.zeros(n, dtype=np.int64)
    for i in range(4):
        value = (value << 8) | byte(at + 2 + i)
    want = (tokens[:, 0] & np.uint32(ID_MASK)) | np.uint32(ID_BITS)
    end = at + 6
    valid: NDArray[np.bool_] = ok & (end <= width) & (end <= payload_len) & (value == want)
    return valid


_DATA, _ID_OFF = _message()

PAYLOAD = UdpPayload(
    "snmp",
    _DATA,
    port=161,
    description="SNMPv2c get sysDescr.0, community public",
    patches=(Patch(_ID_OFF, 4, 0, mask=ID_MASK, bits=ID_BITS),),
    check=_check,
)
