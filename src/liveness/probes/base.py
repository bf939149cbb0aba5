"""The probe interface: one probe type = one kind of frame sent to every target.

A probe builds the frames for a batch of targets at once: it copies a per-scan template (all
constant bytes and the checksums of the constant part) into an ``(n, frame_len)`` array and
patches only the per-target fields through a structured view: destination address, the
validation bits of the token, the attempt, and the checksums by incremental update.

Reply classification is shared (``classify.py``); a probe only says which protocol and port its
replies come from and, for UDP probes, whether a reply payload is a valid answer
(:meth:`UdpProbe.app_valid`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from liveness.packet.checksum import finish, partial_sum, word_sum32
from liveness.packet.layout import (
    L4_OFF,
    PROTO_TCP,
    PROTO_UDP,
    ethernet_header,
    field_view,
    ipv4_header,
    struct_dtype,
)
from liveness.scan.context import ScanContext

__all__ = ["Probe", "Template", "UdpProbe", "attempt_port"]

# Fields common to every frame we build (byte offsets in the frame).
IP_FIELDS: dict[str, tuple[str, int]] = {"ip_sum": (">u2", 24), "ip_dst": (">u4", 30)}


class Template:
    """One probe's constant frame for one scan, with the unfolded sums of its checksums.

    ``ip_sum0`` is the IPv4 header sum with destination and checksum 0; ``l4_sum0`` the
    transport checksum sum (pseudo-header included, destination and per-target fields 0).
    """

    def __init__(self, ctx: ScanContext, protocol: int, l4: bytes) -> None:
        ip = ipv4_header(ctx.src_ip, 0, protocol, len(l4), ctx.ttl)
        self.frame = np.frombuffer(
            ethernet_header(ctx.src_mac, ctx.gw_mac) + ip + l4, dtype=np.uint8
        ).copy()
        self.ip_sum0 = np.uint32(partial_sum(ip))
        if protocol in (PROTO_TCP, PROTO_UDP):
            pseudo = (
                ctx.src_ip.to_bytes(4, "big") + bytes([0, protocol]) + len(l4).to_bytes(2, "big")
            )
            self.l4_sum0 = np.uint32(partial_sum(pseudo + l4))
        else:
            self.l4_sum0 = np.uint32(partial_sum(l4))

    def copies(self, n: int) -> NDArray[np.uint8]:
        """``n`` copies of the frame as a C-contiguous ``(n, frame_len)`` array."""
        out = np.empty((n, len(self.frame)), dtype=np.uint8)
        out[...] = self.frame
        return out


def attempt_port(ctx: ScanContext, word: NDArray[np.uint32], attempt: int) -> NDArray[np.uint32]:
    """The source port of ``attempt``: ``base + (word + attempt) mod count`` (as uint32)."""
    offset = (word % np.uint32(ctx.sport_count) + np.uint32(attempt)) % np.uint32(ctx.sport_count)
    return offset + np.uint32(ctx.sport_base)


class Probe(ABC):
    """A probe type. Subclasses set the class attributes and implement :meth:`_patch`.

    ``probe_id`` is stable across runs (it is part of the validation token, so ``decode``
    must recompute the same value); ``target_port`` is the fixed L4 port the probe goes to
    (None for ICMP and for a per-target port).
    """

    name: str
    probe_id: int
    protocol: ClassVar[int]
    target_port: int | None = None
    fields: ClassVar[dict[str, tuple[str, int]]] = {}

    def __init__(self) -> None:
        self._templates: dict[ScanContext, Template] = {}
        self._dtype = struct_dtype({**IP_FIELDS, **self.fields}, self.frame_len)

    @property
    @abstractmethod
    def frame_len(self) -> int:
        """Bytes per frame (Ethernet header included)."""

    @abstractmethod
    def l4_template(self) -> bytes:
        """The transport header and payload with every per-target field 0."""

    @abstractmethod
    def _patch(
        self,
        ctx: ScanContext,
        view: NDArray[np.void],
        tokens: NDArray[np.uint32],
        dst_sum: NDArray[np.uint32],
        l4_sum0: np.uint32,
        attempt: int,
    ) -> None:
        """Write the per-target transport fields and the transport checksum."""

    def template(self, ctx: ScanContext) -> Template:
        """The per-scan template (cached per context)."""
        tpl = self._templates.get(ctx)
        if tpl is None:
            tpl = self._templates[ctx] = Template(ctx, self.protocol, self.l4_template())
        return tpl

    def tokens(self, ctx: ScanContext, targets: NDArray[np.uint32]) -> NDArray[np.uint32]:
        """The validation tokens of this probe for ``targets``: ``(n, 4)`` uint32."""
        return ctx.validator.tokens(ctx.src_ip, targets, self.probe_id)

    def build(
        self, ctx: ScanContext, targets: NDArray[np.uint32], attempt: int = 0
    ) -> NDArray[np.uint8]:
        """Frames for ``targets`` (uint32, host order): ``(n, frame_len)`` uint8, ready to send."""
        if not 0 <= attempt < ctx.max_attempts:
            raise ValueError(f"attempt {attempt} outside 0..{ctx.max_attempts - 1}")
        targets = np.asarray(targets, dtype=np.uint32)
        tpl = self.template(ctx)
        frames = tpl.copies(len(targets))
        if len(targets) == 0:
            return frames
        view = field_view(frames, self._dtype)
        view["ip_dst"] = targets
        dst_sum = word_sum32(targets)
        view["ip_sum"] = finish(tpl.ip_sum0 + dst_sum)
        self._patch(ctx, view, self.tokens(ctx, targets), dst_sum, tpl.l4_sum0, attempt)
        return frames

    def __repr__(self) -> str:
        return f"<probe {self.name} id={self.probe_id}>"


class UdpProbe(Probe):
    """A UDP probe to a fixed port whose payload can be checked as an application reply."""

    protocol = PROTO_UDP
    target_port: int

    @abstractmethod
    def app_valid(
        self,
        payload: NDArray[np.uint8],
        payload_len: NDArray[np.int64],
        tokens: NDArray[np.uint32],
    ) -> NDArray[np.bool_]:
        """Which reply payloads are valid answers to our query.

        ``payload`` is ``(m, k)``: the first k bytes of each UDP payload (zero-padded),
        ``payload_len`` the captured payload lengths, ``tokens`` the token of each reply's probe.
        """


UDP_PAYLOAD_OFF = L4_OFF + 8
