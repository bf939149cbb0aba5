"""The DNS probe: a recursive query ``udp_dns[:TYPE[:NAME]]`` (default ``A liveness.test``).

Token word 0 gives the DNS id (low 16 bits), word 1 the source port (attempt added). A reply
is application-valid when it is a DNS response (QR set) carrying our id.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from liveness.packet.checksum import finish
from liveness.packet.layout import L4_OFF
from liveness.packet.payloads import DNS_HEADER_LEN, dns_query
from liveness.probes.base import UDP_PAYLOAD_OFF, Probe, UdpProbe, attempt_port
from liveness.probes.context import ScanContext

__all__ = ["DEFAULT_DNS_NAME", "DEFAULT_DNS_TYPE", "UdpDns"]

DEFAULT_DNS_TYPE = "A"
DEFAULT_DNS_NAME = "liveness.test"
DNS_PORT = 53
PROBE_ID = 2


class UdpDns(UdpProbe):
    """A DNS query to port 53."""

    kind = "udp_dns"
    name = "udp_dns"
    probe_id = PROBE_ID
    target_port = DNS_PORT
    fields: ClassVar[dict[str, tuple[str, int]]] = {
        "sport": (">u2", L4_OFF),
        "udp_sum": (">u2", L4_OFF + 6),
        "dns_id": (">u2", UDP_PAYLOAD_OFF),
    }

    def __init__(self, qtype: str = DEFAULT_DNS_TYPE, qname: str = DEFAULT_DNS_NAME) -> None:
        self.qtype = qtype.upper()
        self.qname = qname
        self._query = dns_query(self.qtype, qname)
        super().__init__()

    @classmethod
    def from_spec(cls, args: str, context: dict[str, Any]) -> list[Probe]:
        """``udp_dns[:TYPE[:NAME]]``."""
        qtype, _, qname = args.partition(":")
        return [cls(qtype or DEFAULT_DNS_TYPE, qname or DEFAULT_DNS_NAME)]

    @property
    def frame_len(self) -> int:
        return UDP_PAYLOAD_OFF + len(self._query)

    def l4_template(self) -> bytes:
        length = 8 + len(self._query)
        return struct.pack("!HHHH", 0, DNS_PORT, length, 0) + self._query

    @staticmethod
    def dns_id(tokens: NDArray[np.uint32]) -> NDArray[np.uint32]:
        """The DNS id of each token."""
        return tokens[:, 0] & np.uint32(0xFFFF)

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
        ident = self.dns_id(tokens)
        view["sport"] = sport
        view["dns_id"] = ident
        view["udp_sum"] = finish(l4_sum0 + dst_sum + sport + ident, udp=True)

    def app_valid(
        self,
        payload: NDArray[np.uint8],
        payload_len: NDArray[np.int64],
        tokens: NDArray[np.uint32],
    ) -> NDArray[np.bool_]:
        reply_id = (payload[:, 0].astype(np.uint32) << np.uint32(8)) | payload[:, 1]
        is_response = (payload[:, 2] & 0x80) != 0
        valid: NDArray[np.bool_] = (
            (payload_len >= DNS_HEADER_LEN) & is_response & (reply_id == self.dns_id(tokens))
        )
        return valid
