"""The NTP probe: an NTPv4 client request whose transmit timestamp is token words 2 and 3.

A server reply (mode 4) copies the client's transmit timestamp into its origin timestamp, so
an application-valid reply is one in server mode whose origin timestamp is our token.
Token word 1 gives the source port (attempt added).
"""

from __future__ import annotations

import struct
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from liveness.packet.checksum import finish, word_sum32
from liveness.packet.layout import L4_OFF
from liveness.packet.payloads import NTP_LEN, NTP_ORIGIN_OFF, NTP_TRANSMIT_OFF, ntp_request
from liveness.probes.base import UDP_PAYLOAD_OFF, UdpProbe, attempt_port
from liveness.probes.context import ScanContext

__all__ = ["UdpNtp"]

NTP_PORT = 123
MODE_SERVER = 4
PROBE_ID = 3


def _be32(payload: NDArray[np.uint8], off: int) -> NDArray[np.uint32]:
    cols = payload[:, off : off + 4].astype(np.uint32)
    shift = np.array([24, 16, 8, 0], dtype=np.uint32)
    value: NDArray[np.uint32] = np.bitwise_or.reduce(cols << shift, axis=1).astype(np.uint32)
    return value


class UdpNtp(UdpProbe):
    """An NTP client request to port 123."""

    kind = "udp_ntp"
    name = "udp_ntp"
    probe_id = PROBE_ID
    target_port = NTP_PORT
    fields: ClassVar[dict[str, tuple[str, int]]] = {
        "sport": (">u2", L4_OFF),
        "udp_sum": (">u2", L4_OFF + 6),
        "xmit_hi": (">u4", UDP_PAYLOAD_OFF + NTP_TRANSMIT_OFF),
        "xmit_lo": (">u4", UDP_PAYLOAD_OFF + NTP_TRANSMIT_OFF + 4),
    }

    @property
    def frame_len(self) -> int:
        return UDP_PAYLOAD_OFF + NTP_LEN

    def l4_template(self) -> bytes:
        return struct.pack("!HHHH", 0, NTP_PORT, 8 + NTP_LEN, 0) + ntp_request()

    def _patch(
        self,
        ctx: ScanContext,
        view: NDArray[np.void],
        tokens: NDArray[np.uint32],
        dst_sum: NDArray[np.uint32],
        l4_sum0: np.uint32,
        attempt: int,
    ) -> None:
        sport = attempt_port(ctx, tokens[:, 1], attempt)
        view["sport"] = sport
        view["xmit_hi"] = tokens[:, 2]
        view["xmit_lo"] = tokens[:, 3]
        total = l4_sum0 + dst_sum + sport + word_sum32(tokens[:, 2]) + word_sum32(tokens[:, 3])
        view["udp_sum"] = finish(total, udp=True)

    def app_valid(
        self,
        payload: NDArray[np.uint8],
        payload_len: NDArray[np.int64],
        tokens: NDArray[np.uint32],
    ) -> NDArray[np.bool_]:
        server = (payload[:, 0] & 0x07) == MODE_SERVER
        echoes = (_be32(payload, NTP_ORIGIN_OFF) == tokens[:, 2]) & (
            _be32(payload, NTP_ORIGIN_OFF + 4) == tokens[:, 3]
        )
        valid: NDArray[np.bool_] = (payload_len >= NTP_LEN) & server & echoes
        return valid
