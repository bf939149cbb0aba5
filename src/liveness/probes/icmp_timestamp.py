"""The ICMP timestamp request probe (type 13): network-layer liveness from hosts that filter echo.

Some hosts and firewalls drop ICMP echo but still answer a timestamp request with a timestamp
reply (type 14, RFC 792), so the probe finds network-alive addresses that ``icmp_echo`` misses.
Token word 0 gives the identifier and the base of the sequence number (the attempt is added, as
for echo); word 2 is the originate timestamp, which a reply must echo: 32 more bits of
validation than echo has. The replies are timestamp replies and the ICMP errors quoting a
timestamp request.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from liveness.packet.checksum import word_sum32
from liveness.packet.layout import L4_OFF
from liveness.probes.base import Fields, Verdict, category, failed
from liveness.probes.context import ScanContext
from liveness.probes.icmp_echo import IcmpQuery, id_seq_attempt

__all__ = ["IcmpTimestamp"]

TIMESTAMP_REQUEST = 13
TIMESTAMP_REPLY = 14
ICMP_LEN = 20  # type, code, checksum, identifier, sequence, originate, receive, transmit
PROBE_ID = 5


class IcmpTimestamp(IcmpQuery):
    """ICMP timestamp request."""

    kind = "icmp_timestamp"
    name = "icmp_timestamp"
    probe_id = PROBE_ID
    ipv6: ClassVar[bool] = False  # ICMPv6 has no timestamp message
    fields: ClassVar[dict[str, tuple[str, int]]] = {
        "icmp_sum": (">u2", L4_OFF + 2),
        "icmp_id": (">u2", L4_OFF + 4),
        "icmp_seq": (">u2", L4_OFF + 6),
        "originate": (">u4", L4_OFF + 8),
    }
    reply_fields: ClassVar[tuple[str, ...]] = ("icmp_id", "icmp_seq", "icmp_code", "icmp_originate")

    def reply_selector(self) -> int:
        return TIMESTAMP_REPLY

    def quote_selector(self) -> int:
        return TIMESTAMP_REQUEST

    @property
    def frame_len(self) -> int:
        return L4_OFF + ICMP_LEN

    def l4_template(self) -> bytes:
        return bytes([TIMESTAMP_REQUEST]) + bytes(ICMP_LEN - 1)

    def _extra_sum(self, view: NDArray[np.void], tokens: NDArray[np.uint32]) -> Any:
        view["originate"] = tokens[:, 2]
        return word_sum32(tokens[:, 2])

    def validate_reply(
        self,
        ctx: ScanContext,
        f: Fields,
        tokens: NDArray[np.uint32],
        payload: NDArray[np.uint8],
        payload_len: NDArray[np.int64],
    ) -> Verdict:
        matched, attempt = id_seq_attempt(ctx, f["icmp_id"], f["icmp_seq"], tokens)
        keep = matched & (f["icmp_originate"] == tokens[:, 2])
        columns: dict[str, NDArray[Any]] = {
            "icmp_type": np.full(keep.size, TIMESTAMP_REPLY, np.int64),
            "icmp_code": f["icmp_code"],
        }
        return Verdict(keep, attempt, category("timestamp_reply"), columns, failed(keep))
