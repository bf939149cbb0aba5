"""The ICMP echo request probe.

Token word 0 gives the identifier (low 16 bits) and the base of the sequence number (high 16
bits); the attempt is added to the sequence number, so an echo reply tells which transmission it
answers. No payload: an 8-byte ICMP header, as ZMap's ``icmp_echoscan`` minimum. Its replies
are echo replies (type 0) and the ICMP errors quoting an echo request (type 8); over IPv6,
ICMPv6 echo reply (129) and the ICMPv6 errors quoting an echo request (128).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from liveness.packet.checksum import finish
from liveness.packet.layout import L4_OFF, PROTO_ICMP
from liveness.probes.base import Fields, Probe, Verdict, category, failed
from liveness.probes.context import ScanContext

__all__ = ["IcmpEcho", "IcmpQuery", "echo_id_seq", "id_seq_attempt"]

ECHO_REPLY = 0
ECHO_REQUEST = 8
ECHO_REQUEST6 = 128
ECHO_REPLY6 = 129
ICMP6_TYPES = {ECHO_REQUEST: ECHO_REQUEST6, ECHO_REPLY: ECHO_REPLY6}
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


def id_seq_attempt(
    ctx: ScanContext,
    ident: NDArray[np.integer[Any]],
    seq: NDArray[np.integer[Any]],
    tokens: NDArray[np.uint32],
) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """Whether an (identifier, sequence) pair is a token's for some attempt, and that attempt."""
    want_id, seq0 = echo_id_seq(tokens)
    attempt = (seq.astype(np.int64) - seq0) & 0xFFFF
    return (ident == want_id) & (attempt < ctx.max_attempts), attempt


class IcmpQuery(Probe):
    """An ICMP query probe (echo, timestamp): identifier and sequence number from the token,
    the attempt added to the sequence number. Errors quoting one are validated alike."""

    protocol = PROTO_ICMP
    quote_fields: ClassVar[tuple[str, ...]] = ("q_icmp_id", "q_icmp_seq")

    @classmethod
    def quote_validator(cls) -> type[Probe]:
        return IcmpQuery

    def validate_quote(self, ctx: ScanContext, f: Fields, tokens: NDArray[np.uint32]) -> Verdict:
        keep, attempt = id_seq_attempt(ctx, f["q_icmp_id"], f["q_icmp_seq"], tokens)
        return Verdict(keep, attempt, drops=failed(keep))

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
        extra = self._extra_sum(view, tokens)
        view["icmp_sum"] = finish(l4_sum0 + dst_sum + ident + seq + extra)

    def _extra_sum(self, view: NDArray[np.void], tokens: NDArray[np.uint32]) -> Any:
        """Write further per-target fields; their checksum contribution (none for echo)."""
        return np.uint32(0)


class IcmpEcho(IcmpQuery):
    """ICMP echo request (ping)."""

    kind = "icmp_echo"
    name = "icmp_echo"
    probe_id = PROBE_ID
    reply_fields: ClassVar[tuple[str, ...]] = ("icmp_type", "icmp_id", "icmp_seq", "icmp_code")
    fields: ClassVar[dict[str, tuple[str, int]]] = {
        "icmp_sum": (">u2", L4_OFF + 2),
        "icmp_id": (">u2", L4_OFF + 4),
        "icmp_seq": (">u2", L4_OFF + 6),
    }

    def reply_selector(self) -> int:
        return ECHO_REPLY

    def icmp6_type(self, icmp_type: int) -> int:
        return ICMP6_TYPES[icmp_type]

    def quote_selector(self) -> int:
        return ECHO_REQUEST

    def validate_reply(
        self,
        ctx: ScanContext,
        f: Fields,
        tokens: NDArray[np.uint32],
        payload: NDArray[np.uint8],
        payload_len: NDArray[np.int64],
    ) -> Verdict:
        keep, attempt = id_seq_attempt(ctx, f["icmp_id"], f["icmp_seq"], tokens)
        columns = {"icmp_type": f["icmp_type"], "icmp_code": f["icmp_code"]}
        return Verdict(keep, attempt, category("echo_reply"), columns, failed(keep))

    @property
    def frame_len(self) -> int:
        return L4_OFF + ICMP_LEN

    def l4_template(self) -> bytes:
        return bytes([ECHO_REQUEST]) + bytes(ICMP_LEN - 1)
