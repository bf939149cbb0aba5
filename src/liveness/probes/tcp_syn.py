"""TCP SYN probes: one per fixed port (``tcp_syn:443``), and ``tcp_syn:random``.

Token words: 0 -> sequence number (a SYN-ACK or RST+ACK acknowledges it + 1), 1 -> source port
(with the attempt added), 2 -> the random port. ``tcp_syn:random`` sends each target to one
high port (49152-65535) derived from the key, never one of the scan's fixed ports: a host that
answers SYN-ACK there as well as on every probed port is a tarpit.

Replies: a SYN-ACK or a RST (with or without ACK) from the probed port to our source port; an
ACK must acknowledge our sequence number + 1 (a bare RST is validated through the ports only, as
in ZMap). ICMP errors quote our SYN: its ports and sequence number are checked.

With ``--app-layer`` (``ctx.app_layer``) the scan answers each SYN-ACK with an ACK carrying the
port's profile payload (:mod:`liveness.probes.app_profiles`), so later segments of the same
connection are replies too, validated statelessly like the SYN-ACK: ports from the key, and an
acknowledgement of our SYN (ISN + 1) or of our whole payload (ISN + 1 + its length). They are
``app_data`` (payload: ``app_active``, its protocol in ``app_proto``, its first bytes in
``banner``, ``app_valid`` when it speaks the profile), ``app_ack`` (no payload, acknowledging
ours: ``app_active``) and ``app_rst`` (a RST with a sequence number, which a RST answering a
SYN never has, RFC 9293 3.10.7.1: without ACK, or acknowledging our payload). Other segments
(a FIN or window update acknowledging only the SYN) are dropped as unexpected flags.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.packet.checksum import finish, word_sum32
from liveness.packet.layout import L4_OFF, PROTO_TCP
from liveness.probes.app_profiles import recognise, speaks_profile
from liveness.probes.base import (
    Fields,
    Probe,
    Verdict,
    attempt_port,
    category,
    failed,
    port_attempt,
)
from liveness.probes.context import ScanContext

__all__ = ["RANDOM_PORT_BASE", "RANDOM_PORT_COUNT", "TcpSyn", "TcpSynRandom"]

TCP_LEN = 24  # 20-byte header + MSS option, as a kernel's SYN would carry
MSS = 1460
SYN = 0x02
RST = 0x04
ACK = 0x10
SYN_ACK = 0x12
RANDOM_PORT_BASE = 49152
RANDOM_PORT_COUNT = 65536 - RANDOM_PORT_BASE
PROBE_ID_RANDOM = 4
PROBE_ID_PORT_BASE = 0x10000


def _tcp_header(dport: int) -> bytes:
    """A SYN with every per-target field 0."""
    return struct.pack(
        "!HHIIBBHHH", 0, dport, 0, 0, (TCP_LEN // 4) << 4, SYN, 65535, 0, 0
    ) + struct.pack("!BBH", 2, 4, MSS)


class _TcpSynBase(Probe):
    protocol = PROTO_TCP
    reply_fields: ClassVar[tuple[str, ...]] = ("sport", "dport", "tcp_seq", "tcp_ack", "tcp_flags")
    quote_fields: ClassVar[tuple[str, ...]] = ("q_sport", "q_dport", "q_seq")
    fields: ClassVar[dict[str, tuple[str, int]]] = {
        "sport": (">u2", L4_OFF),
        "dport": (">u2", L4_OFF + 2),
        "seq": (">u4", L4_OFF + 4),
        "tcp_sum": (">u2", L4_OFF + 16),
    }

    @property
    def frame_len(self) -> int:
        return L4_OFF + TCP_LEN

    @classmethod
    def reply_validator(cls) -> type[Probe]:
        return _TcpSynBase  # fixed and random ports validate their replies alike

    @classmethod
    def quote_validator(cls) -> type[Probe]:
        return _TcpSynBase

    def validate_reply(
        self,
        ctx: ScanContext,
        f: Fields,
        tokens: NDArray[np.uint32],
        payload: NDArray[np.uint8],
        payload_len: NDArray[np.int64],
    ) -> Verdict:
        port_ok, attempt = port_attempt(ctx, f["dport"], tokens)
        flags = f["tcp_flags"]
        columns = {
            "tcp_flags": flags,
            "sport": f["sport"],
            "dport": f["dport"],
            "tcp_seq": f["tcp_seq"],
            "tcp_ack": f["tcp_ack"],
        }
        if ctx.app_layer is not None:
            return self._validate_app(
                ctx, f, tokens, payload, payload_len, port_ok, attempt, columns
            )
        ack_ok = ((flags & ACK) == 0) | (f["tcp_ack"] == tokens[:, 0] + np.uint32(1))
        valid = port_ok & ack_ok
        is_rst = (flags & RST) != 0
        keep = valid & (is_rst | ((flags & SYN_ACK) == SYN_ACK))
        reply = np.where(is_rst, category("rst"), category("synack"))
        drops = {
            "validation_failed": int((~valid).sum()),
            "unexpected_tcp_flags": int((valid & ~keep).sum()),
        }
        return Verdict(keep, attempt, reply, columns, drops)

    def _validate_app(
        self,
        ctx: ScanContext,
        f: Fields,
        tokens: NDArray[np.uint32],
        payload: NDArray[np.uint8],
        payload_len: NDArray[np.int64],
        port_ok: NDArray[np.bool_],
        attempt: NDArray[np.int64],
        columns: dict[str, NDArray[Any]],
    ) -> Verdict:
        """Replies of a ``--app-layer`` scan: the SYN's answers and the follow-up's."""
        app = ctx.app_layer
        assert app is not None
        flags = f["tcp_flags"]
        family = int(f["af"][0]) if len(f["af"]) else 4
        sent = app.payload_lengths(f["sport"], family)
        isn1 = tokens[:, 0] + np.uint32(1)
        acks_syn = f["tcp_ack"] == isn1
        acks_all = f["tcp_ack"] == isn1 + sent.astype(np.uint32)
        has_ack = (flags & ACK) != 0
        valid = port_ok & (~has_ack | acks_syn | acks_all)
        synack = (flags & SYN_ACK) == SYN_ACK
        is_rst = (flags & RST) != 0
        later = ~synack & ~is_rst & has_ack
        data = later & (payload_len > 0)
        acked = later & (payload_len <= 0) & acks_all & (sent > 0)
        app_rst = is_rst & (f["tcp_seq"] != 0) & (~has_ack | (acks_all & (sent > 0)))
        keep = valid & (synack | is_rst | data | acked)
        reply = np.where(synack, category("synack"), category("rst"))
        reply = np.where(app_rst, category("app_rst"), reply)
        reply = np.where(data, category("app_data"), np.where(acked, category("app_ack"), reply))
        kept = np.minimum(np.maximum(payload_len, 0), payload.shape[1])
        proto = np.where(data, recognise(payload, np.where(data, kept, 0)), 0)
        columns.update(
            app_active=data | acked,
            app_proto=proto,
            app_valid=data & speaks_profile(proto, app.profile_codes(f["sport"])),
            banner_len=np.where(data, kept, -1),
            banner=payload,
        )
        drops = {
            "validation_failed": int((~valid).sum()),
            "unexpected_tcp_flags": int((valid & ~keep).sum()),
        }
        return Verdict(keep, attempt, reply, columns, drops)

    def validate_quote(self, ctx: ScanContext, f: Fields, tokens: NDArray[np.uint32]) -> Verdict:
        port_ok, attempt = port_attempt(ctx, f["q_sport"], tokens)
        keep = port_ok & (f["q_seq"] == tokens[:, 0])
        ports = {"sport": f["q_dport"], "dport": f["q_sport"]}
        return Verdict(keep, attempt, columns=ports, drops=failed(keep))

    def _ports(self, tokens: NDArray[np.uint32]) -> NDArray[np.uint32] | None:
        """Per-target destination ports, or None when the template holds a fixed one."""
        return None

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
        seq = tokens[:, 0]
        view["sport"] = sport
        view["seq"] = seq
        total = l4_sum0 + dst_sum + sport + word_sum32(seq)
        dport = self._ports(tokens)
        if dport is not None:
            view["dport"] = dport
            total += dport
        view["tcp_sum"] = finish(total)


class TcpSyn(_TcpSynBase):
    """A SYN to one fixed port (``tcp_syn:443``, or ``tcp_syn:random``: see
    :class:`TcpSynRandom`)."""

    kind = "tcp_syn"

    def __init__(self, port: int) -> None:
        if not 1 <= port <= 65535:
            raise ValueError(f"TCP port {port} outside 1..65535")
        self.port = port
        self.target_port = port
        self.name = f"tcp_syn:{port}"
        self.probe_id = PROBE_ID_PORT_BASE + port
        super().__init__()

    def l4_template(self) -> bytes:
        return _tcp_header(self.port)

    @classmethod
    def from_spec(cls, args: str, context: dict[str, Any]) -> list[Probe]:
        """``tcp_syn:PORT``, ``tcp_syn:LO-HI``, bare ``tcp_syn`` (the ``-p`` ports) or
        ``tcp_syn:random`` (avoiding the scan's fixed ports, ``context["ports"]``)."""
        if args == "random":
            return [TcpSynRandom(exclude=context.get("ports", ()))]
        from liveness.probes.registry import parse_ports

        if not args:
            raise InputError("--probes: bare tcp_syn needs ports (-p/--target-ports)")
        return [cls(port) for port in parse_ports(args, where=f"--probes: tcp_syn:{args}")]


class TcpSynRandom(_TcpSynBase):
    """A SYN to one keyed random high port per target, avoiding the scan's fixed ports."""

    name = "tcp_syn:random"
    probe_id = PROBE_ID_RANDOM

    def __init__(self, exclude: Iterable[int] = ()) -> None:
        self.exclude = np.array(
            sorted({p for p in exclude if p >= RANDOM_PORT_BASE}), dtype=np.uint32
        )
        super().__init__()

    def l4_template(self) -> bytes:
        return _tcp_header(0)

    def _ports(self, tokens: NDArray[np.uint32]) -> NDArray[np.uint32]:
        return self.ports_from_tokens(tokens)

    def reply_selector(self) -> None:
        return None

    def quote_selector(self) -> None:
        return None

    def selector_from_tokens(self, tokens: NDArray[np.uint32]) -> NDArray[np.uint32]:
        return self.ports_from_tokens(tokens)

    def ports_from_tokens(self, tokens: NDArray[np.uint32]) -> NDArray[np.uint32]:
        """The random port of each token (stepping past excluded ports, wrapping in range)."""
        port = tokens[:, 2] % np.uint32(RANDOM_PORT_COUNT) + np.uint32(RANDOM_PORT_BASE)
        for _ in range(len(self.exclude) + 1):
            clash = np.isin(port, self.exclude)
            if not clash.any():
                break
            stepped = (port[clash] - RANDOM_PORT_BASE + 1) % RANDOM_PORT_COUNT + RANDOM_PORT_BASE
            port[clash] = stepped
        return port
