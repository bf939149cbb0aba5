"""SSDP: a unicast ``M-SEARCH`` for every device and service. The request carries no
per-target field, so replies are validated by the UDP ports only; valid: ``HTTP/1.x 200``."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from liveness.packet.udp_payloads import UdpPayload, starts_with

REQUEST = (
    b"M-SEARCH * HTTP/1.1\r\n"
    b"HOST: 239.255.255.250:1900\r\n"
    b'MAN: "ssdp:discover"\r\n'
    b"MX: 1\r\n"
    b"ST: ssdp:all\r\n"
    b"\r\n"
)


def _check(
    payload: NDArray[np.uint8], payload_len: NDArray[np.int64], tokens: NDArray[np.uint32]
) -> NDArray[np.bool_]:
    return starts_with(payload, payload_len, b"HTTP/1.") & starts_with(
        payload, payload_len, b" 200", off=8
    )


PAYLOAD = UdpPayload("ssdp", REQUEST, port=1900, description="SSDP M-SEARCH ssdp:all", check=_check)
