"""The frames of ``--app-layer``'s stateless follow-up to a SYN-ACK: one ACK carrying the port's
profile payload, and later one RST closing the connection.

Everything comes from the SYN-ACK itself: our sequence number is its acknowledgement (our ISN +
1), theirs its sequence number + 1, the ports swapped. The RST carries the sequence number just
past our payload and no ACK, which a host accepts in any state (RFC 9293 3.10.7, RFC 5961 3.2:
it equals what the host expects next). Frames are built for a whole batch at once: the headers
column by column, the checksums with :func:`~liveness.packet.checksum.checksum_rows` over the
pseudo-header and segment.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from liveness.packet.checksum import checksum_rows
from liveness.packet.layout import ETHERTYPE_IPV4, ETHERTYPE_IPV6, IP_ID, PROTO_TCP
from liveness.probes.app_profiles import PROFILES, TLS_HELLO, AppLayer, host_texts, http_request
from liveness.probes.context import ScanContext

__all__ = ["ACK", "PSH_ACK", "RST", "Segments", "profile_payloads", "tcp_frames"]

ACK = 0x10
PSH_ACK = 0x18
RST = 0x04
WINDOW = 64240  # what Linux advertises on Ethernet


class Segments:
    """The per-segment fields of a batch of TCP segments to one family's targets."""

    def __init__(
        self,
        targets: NDArray[Any],
        our_port: NDArray[np.integer[Any]],
        their_port: NDArray[np.integer[Any]],
        seq: NDArray[np.integer[Any]],
        ack: NDArray[np.integer[Any]],
        flags: int | NDArray[np.integer[Any]],
    ) -> None:
        self.targets = targets  # uint32 IPv4, or (n, 16) uint8 IPv6
        self.our_port = np.asarray(our_port, np.uint16)
        self.their_port = np.asarray(their_port, np.uint16)
        self.seq = np.asarray(seq, np.uint64).astype(np.uint32)
        self.ack = np.asarray(ack, np.uint64).astype(np.uint32)
        self.flags = np.broadcast_to(np.asarray(flags, np.uint8), self.seq.shape)

    @property
    def ipv6(self) -> bool:
        return bool(self.targets.ndim == 2)


def profile_payloads(
    app: AppLayer, targets: NDArray[Any], their_port: NDArray[np.integer[Any]]
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Each target's payload (``(n, longest)`` zero-padded) and its length, by port profile."""
    n = len(targets)
    af = 6 if targets.ndim == 2 else 4
    codes = app.profile_codes(their_port)
    http = codes == PROFILES.index("http")
    tls = codes == PROFILES.index("tls")
    request = http_request(host_texts(targets[http]), af) if http.any() else None
    width = max(request.shape[1] if request is not None else 0, len(TLS_HELLO) if tls.any() else 0)
    payload = np.zeros((n, width), np.uint8)
    lengths = np.zeros(n, np.int64)
    if request is not None:
        payload[http, : request.shape[1]] = request
        lengths[http] = request.shape[1]
    if tls.any():
        payload[tls, : len(TLS_HELLO)] = np.frombuffer(TLS_HELLO, np.uint8)
        lengths[tls] = len(TLS_HELLO)
    return payload, lengths


def _put(frames: NDArray[np.uint8], offset: int, dtype: str, values: Any) -> None:
    """Write one big-endian field (``dtype``: ``>u2``/``>u4``) or byte column at ``offset``."""
    column = np.ascontiguousarray(np.broadcast_to(np.asarray(values).astype(dtype), (len(frames),)))
    size = column.dtype.itemsize
    frames[:, offset : offset + size] = column.view(np.uint8).reshape(len(frames), size)


def tcp_frames(
    ctx: ScanContext,
    segments: Segments,
    payload: NDArray[np.uint8] | None = None,
    payload_len: NDArray[np.int64] | None = None,
) -> tuple[NDArray[np.uint8], NDArray[np.uint32]]:
    """Ethernet frames of TCP segments from the scanner (20-byte header, no options), each
    carrying ``payload[i, :payload_len[i]]`` (none when ``payload`` is None)."""
    n = len(segments.seq)
    if payload is None or payload_len is None:
        payload = np.zeros((n, 0), np.uint8)
        payload_len = np.zeros(n, np.int64)
    six = segments.ipv6
    ip_len = 40 if six else 20
    l4 = 14 + ip_len
    width = l4 + 20 + payload.shape[1]
    frames = np.zeros((n, width), np.uint8)
    if six:
        frames[:, 0:6] = np.frombuffer(ctx.next_hop_mac6, np.uint8)
    else:
        frames[:, 0:6] = np.frombuffer(ctx.gw_mac, np.uint8)
    frames[:, 6:12] = np.frombuffer(ctx.src_mac, np.uint8)
    _put(frames, 12, ">u2", ETHERTYPE_IPV6 if six else ETHERTYPE_IPV4)
    segment_len = 20 + payload_len
    if six:
        assert ctx.src_ip6 is not None
        _put(frames, 14, ">u4", 6 << 28)
        _put(frames, 18, ">u2", segment_len)
        frames[:, 20] = PROTO_TCP
        frames[:, 21] = ctx.ttl
        frames[:, 22:38] = np.frombuffer(ctx.src_ip6, np.uint8)
        frames[:, 38:54] = np.asarray(segments.targets, np.uint8)
    else:
        frames[:, 14] = 0x45
        _put(frames, 16, ">u2", ip_len + segment_len)
        _put(frames, 18, ">u2", IP_ID)
        _put(frames, 20, ">u2", 0x4000)  # don't fragment, as a kernel's TCP sends
        frames[:, 22] = ctx.ttl
        frames[:, 23] = PROTO_TCP
        _put(frames, 26, ">u4", ctx.src_ip)
        _put(frames, 30, ">u4", np.asarray(segments.targets, np.uint32))
        _put(frames, 24, ">u2", checksum_rows(frames[:, 14:34]))
    _put(frames, l4, ">u2", segments.our_port)
    _put(frames, l4 + 2, ">u2", segments.their_port)
    _put(frames, l4 + 4, ">u4", segments.seq)
    _put(frames, l4 + 8, ">u4", segments.ack)
    frames[:, l4 + 12] = 5 << 4
    frames[:, l4 + 13] = segments.flags
    _put(frames, l4 + 14, ">u2", np.where(segments.flags & RST, 0, WINDOW))
    if payload.shape[1]:
        inside = np.arange(payload.shape[1]) < payload_len[:, None]
        frames[:, l4 + 20 :] = np.where(inside, payload, 0)
    # The pseudo-header and the segment, summed as one row: IPv4 (RFC 793) is the addresses,
    # a zero byte, the protocol and the 16-bit length; IPv6 (RFC 8200 8.1) the addresses, the
    # 32-bit length, three zero bytes and the next header.
    addresses = frames[:, 22:54] if six else frames[:, 26:34]
    tail = np.zeros((n, 8 if six else 4), np.uint8)
    if six:
        tail[:, 0:4] = segment_len.astype(">u4").view(np.uint8).reshape(n, 4)
        tail[:, 7] = PROTO_TCP
    else:
        tail[:, 1] = PROTO_TCP
        tail[:, 2:4] = segment_len.astype(">u2").view(np.uint8).reshape(n, 2)
    _put(
        frames,
        l4 + 16,
        ">u2",
        checksum_rows(np.concatenate([addresses, tail, frames[:, l4:]], axis=1)),
    )
    lengths = (l4 + segment_len).astype(np.uint32)
    return frames, lengths
