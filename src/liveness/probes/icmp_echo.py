"""The ICMP echo request probe.

Token word 0 gives the identifier (low 16 bits) and the base of the sequence number (high 16
bits); the attempt is added to the sequence number, so an echo reply tells which transmission it
answers. No payload: an 8-byte ICMP header, as ZMap's ``icmp_echoscan`` minimum.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from liveness.packet.checksum import finish
from liveness.packet.layout import L4_OFF, PROTO_ICMP
from liveness.probes.base import Probe
from liveness.scan.context import ScanContext

__all__ = ["IcmpEcho", "echo_id_seq"]

ECHO_REQUEST = 8
ICMP_LEN = 8
PROBE_ID = 1


def echo_id_seq(
    tokens: NDArray[np.uint32], attempt: int | NDArray[np.uint32] = 0
) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
    """ICMP identifier and sequence number of each token for ``attempt``."""
    word = tokens[:, 0]
    ident = word & np.uint32(0xFFFF)
    seq = ((word >> np.uint32(16)) + np.asarray(attempt, dtype=np.uint32)) & np.uint32(0xFFFF)
    return ident, seq


class IcmpEcho(Probe):
    """ICMP echo request (ping)."""

    name = "icmp_echo"
    probe_id = PROBE_ID
    protocol = PROTO_ICMP
    fields: ClassVar[dict[str, tuple[str, int]]] = {
        "icmp_sum": (">u2", L4_OFF + 2),
        "icmp_id": (">u2", L4_OFF + 4),
        "icmp_seq": (">u2", L4_OFF + 6),
    }

    @property
    def frame_len(self) -> int:
        return L4_OFF + ICMP_LEN

    def l4_template(self) -> bytes:
        return bytes([ECHO_REQUEST]) + bytes(ICMP_LEN - 1)

    def _patch(
        self,
        ctx: ScanContext,
        view: NDArray[np.void],
        tokens: NDArray[np.uint32],
        dst_sum: NDArray[np.uint32],
        l4_sum0: np.uint32,
        attempt: int,
    ) -> None:
        ident, seq = echo_id_seq(tokens, attempt)
        view["icmp_id"] = ident
        view["icmp_seq"] = seq
        view["icmp_sum"] = finish(l4_sum0 + ident + seq)
