"""DNS: a recursive query ``A liveness.test``; valid: a response (QR) carrying our id."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from liveness.packet.payloads import DNS_HEADER_LEN, dns_query
from liveness.packet.udp_payloads import Patch, UdpPayload, be16


def _check(
    payload: NDArray[np.uint8], payload_len: NDArray[np.int64], tokens: NDArray[np.uint32]
) -> NDArray[np.bool_]:
    ours: NDArray[np.bool_] = be16(payload, 0) == (tokens[:, 0] & np.uint32(0xFFFF))
    valid: NDArray[np.bool_] = (payload_len >= DNS_HEADER_LEN) & ((payload[:, 2] & 0x80) != 0)
    return valid & ours


PAYLOAD = UdpPayload(
    "dns",
    dns_query("A", "liveness.test"),
    port=53,
    description="DNS query A liveness.test",
    patches=(Patch(0, 2, 0),),
    check=_check,
)
