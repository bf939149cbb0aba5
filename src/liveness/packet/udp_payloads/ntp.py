"""NTP: an NTPv4 client request whose transmit timestamp is token words 2 and 3; valid: a
server-mode reply whose origin timestamp echoes it."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from liveness.packet.payloads import NTP_LEN, NTP_ORIGIN_OFF, NTP_TRANSMIT_OFF, ntp_request
from liveness.packet.udp_payloads import Patch, UdpPayload, be32

MODE_SERVER = 4


def _check(
    payload: NDArray[np.uint8], payload_len: NDArray[np.int64], tokens: NDArray[np.uint32]
) -> NDArray[np.bool_]:
    echoes = (be32(payload, NTP_ORIGIN_OFF) == tokens[:, 2]) & (
        be32(payload, NTP_ORIGIN_OFF + 4) == tokens[:, 3]
    )
    server = (payload[:, 0] & 0x07) == MODE_SERVER
    valid: NDArray[np.bool_] = (payload_len >= NTP_LEN) & server & echoes
    return valid


PAYLOAD = UdpPayload(
    "ntp",
    ntp_request(),
    port=123,
    description="NTPv4 client request",
    patches=(Patch(NTP_TRANSMIT_OFF, 4, 2), Patch(NTP_TRANSMIT_OFF + 4, 4, 3)),
    check=_check,
)
