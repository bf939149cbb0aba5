"""Synthetic replies to a batch of probe frames, built with numpy (for tests and benchmarks).

``synthesize(frames, kind)`` turns the frames a probe built into the frames a responder would
send back: echo reply, timestamp reply, SYN-ACK, RST (bare or with ACK), a UDP answer (DNS
response or NTP server reply echoing our timestamp) or an ICMP error quoting the probe (from
the target or from a router). Checksums are recomputed, so the result is also a realistic capture.
IPv6 probe frames get IPv6 replies: ICMPv6 echo reply, and ICMPv6 errors (``icmp_type`` 1-4)
quoting the probe's IPv6 header and transport bytes.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from liveness.packet.checksum import checksum_rows
from liveness.packet.layout import ETH_LEN, L4_OFF, PROTO_ICMP, PROTO_TCP, PROTO_UDP

__all__ = ["REPLY_KINDS", "synthesize", "udp_answer"]

REPLY_KINDS = ("echo_reply", "timestamp_reply", "synack", "rst", "rst_ack", "udp", "icmp_error")
_DST_MAC = slice(0, 6)
_SRC_MAC = slice(6, 12)
_IP_SRC = slice(26, 30)
_IP_DST = slice(30, 34)


def _swap(frames: NDArray[np.uint8], a: slice, b: slice) -> None:
    first = frames[:, a].copy()
    frames[:, a] = frames[:, b]
    frames[:, b] = first


def _put16(frames: NDArray[np.uint8], off: int, value: NDArray[np.integer] | int) -> None:
    value = np.asarray(value, dtype=np.uint32)
    frames[:, off] = (value >> 8) & 0xFF
    frames[:, off + 1] = value & 0xFF


def _fix_ip(frames: NDArray[np.uint8]) -> None:
    frames[:, 24:26] = 0
    _put16(frames, 24, checksum_rows(frames[:, ETH_LEN:L4_OFF]))


def _fix_l4(frames: NDArray[np.uint8], protocol: int, sum_off: int) -> None:
    """Recompute a TCP/UDP (pseudo-header) or ICMP checksum over the whole frame tail."""
    n, width = frames.shape
    frames[:, L4_OFF + sum_off : L4_OFF + sum_off + 2] = 0
    l4 = frames[:, L4_OFF:]
    if protocol == PROTO_ICMP:
        _put16(frames, L4_OFF + sum_off, checksum_rows(l4))
        return
    pseudo = np.zeros((n, 12), dtype=np.uint8)
    pseudo[:, 0:8] = frames[:, 26:34]
    pseudo[:, 9] = protocol
    length = width - L4_OFF
    pseudo[:, 10], pseudo[:, 11] = length >> 8, length & 0xFF
    _put_pseudo_sum(frames, L4_OFF, sum_off, pseudo, protocol)


def _put_pseudo_sum(
    frames: NDArray[np.uint8], l4_off: int, sum_off: int, pseudo: NDArray[np.uint8], protocol: int
) -> None:
    """Write the checksum of ``pseudo`` (either family's pseudo-header) + the transport bytes
    (UDP's 0 sent as 0xFFFF)."""
    value = checksum_rows(np.concatenate([pseudo, frames[:, l4_off:]], axis=1))
    if protocol == PROTO_UDP:
        value[value == 0] = 0xFFFF
    _put16(frames, l4_off + sum_off, value)


def synthesize(
    probe_frames: NDArray[np.uint8],
    kind: str,
    *,
    icmp_type: int = 3,
    icmp_code: int = 3,
    responder: int | None = None,
    ttl: int = 57,
) -> NDArray[np.uint8]:
    """Reply frames ``(n, len)`` for probe frames of one probe (all of the same length).

    For ``icmp_error`` the reply comes from ``responder`` (default: the target) and quotes the
    probe's IP header and its first 8 transport bytes.
    """
    if kind not in REPLY_KINDS:
        raise ValueError(f"unknown reply kind {kind!r}")
    probe = np.asarray(probe_frames, dtype=np.uint8)
    if len(probe) and probe[0, 12] == 0x86 and probe[0, 13] == 0xDD:
        responder6 = responder.to_bytes(16, "big") if responder is not None else None
        return _synthesize6(probe, kind, icmp_type, icmp_code, responder6, ttl)
    if kind == "icmp_error":
        return _icmp_error(probe, icmp_type, icmp_code, responder, ttl)
    frames = probe.copy()
    _swap(frames, _DST_MAC, _SRC_MAC)
    _swap(frames, _IP_SRC, _IP_DST)
    frames[:, 22] = ttl
    protocol = int(frames[0, 23]) if len(frames) else PROTO_TCP
    if kind in ("echo_reply", "timestamp_reply"):
        # Echo reply (type 0), or timestamp reply (type 14: id, seq and originate echoed,
        # receive and transmit timestamps filled in).
        frames[:, L4_OFF] = 0 if kind == "echo_reply" else 14
        if kind == "timestamp_reply":
            frames[:, L4_OFF + 12 : L4_OFF + 20] = 0x5A
        _fix_l4(frames, PROTO_ICMP, 2)
    elif protocol == PROTO_TCP:
        _swap(frames, slice(34, 36), slice(36, 38))
        seq = probe[:, 38:42].astype(np.uint32)
        ack = ((seq[:, 0] << 24) | (seq[:, 1] << 16) | (seq[:, 2] << 8) | seq[:, 3]) + np.uint32(1)
        frames[:, 38:42] = np.arange(4, dtype=np.uint8)  # the responder's own sequence number
        frames[:, 42:46] = ack.astype(">u4").view(np.uint8).reshape(-1, 4)
        flags = {"synack": 0x12, "rst": 0x04, "rst_ack": 0x14}[kind]
        frames[:, 47] = flags
        if kind == "rst":
            frames[:, 42:46] = 0
        _fix_l4(frames, PROTO_TCP, 16)
    else:  # UDP: DNS response or NTP server reply
        _swap(frames, slice(34, 36), slice(36, 38))
        payload = L4_OFF + 8
        if int(probe[0, 36]) * 256 + int(probe[0, 37]) == 123:
            frames[:, payload] = 0x24  # LI 0, VN 4, mode 4 (server)
            frames[:, payload + 1] = 2  # stratum
            frames[:, payload + 24 : payload + 32] = probe[:, payload + 40 : payload + 48]
            frames[:, payload + 40 : payload + 48] = 7
        else:
            frames[:, payload + 2] |= 0x80  # QR: response
            frames[:, payload + 3] |= 0x80  # RA
        _fix_l4(frames, PROTO_UDP, 6)
    _fix_ip(frames)
    return frames


def _icmp_error(
    probe: NDArray[np.uint8], icmp_type: int, icmp_code: int, responder: int | None, ttl: int
) -> NDArray[np.uint8]:
    n = len(probe)
    quote = probe[:, ETH_LEN : L4_OFF + 8]
    frames = np.zeros((n, L4_OFF + 8 + quote.shape[1]), dtype=np.uint8)
    frames[:, _DST_MAC] = probe[:, _SRC_MAC]
    frames[:, _SRC_MAC] = probe[:, _DST_MAC]
    frames[:, 12:14] = probe[:, 12:14]
    frames[:, 14] = 0x45
    _put16(frames, 16, frames.shape[1] - ETH_LEN)
    frames[:, 22] = ttl
    frames[:, 23] = PROTO_ICMP
    if responder is None:
        frames[:, _IP_SRC] = probe[:, _IP_DST]
    else:
        frames[:, _IP_SRC] = np.frombuffer(responder.to_bytes(4, "big"), dtype=np.uint8)
    frames[:, _IP_DST] = probe[:, _IP_SRC]
    frames[:, L4_OFF] = icmp_type
    frames[:, L4_OFF + 1] = icmp_code
    frames[:, L4_OFF + 8 :] = quote
    _fix_l4(frames, PROTO_ICMP, 2)
    _fix_ip(frames)
    return frames


_L4_6 = 54  # Ethernet + IPv6 header
_SRC6 = slice(22, 38)
_DST6 = slice(38, 54)


def _fix_l4_6(frames: NDArray[np.uint8], next_header: int, sum_off: int) -> None:
    """Recompute a TCP, UDP or ICMPv6 checksum (all with the IPv6 pseudo-header)."""
    n, width = frames.shape
    frames[:, _L4_6 + sum_off : _L4_6 + sum_off + 2] = 0
    pseudo = np.zeros((n, 40), dtype=np.uint8)
    pseudo[:, 0:32] = frames[:, 22:54]
    length = width - _L4_6
    pseudo[:, 34], pseudo[:, 35] = length >> 8, length & 0xFF
    pseudo[:, 39] = next_header
    _put_pseudo_sum(frames, _L4_6, sum_off, pseudo, next_header)


def _synthesize6(
    probe: NDArray[np.uint8],
    kind: str,
    icmp_type: int,
    icmp_code: int,
    responder: bytes | None,
    ttl: int,
) -> NDArray[np.uint8]:
    """:func:`synthesize` for IPv6 probe frames."""
    if kind == "icmp_error":
        n = len(probe)
        quote = probe[:, ETH_LEN:]
        frames = np.zeros((n, _L4_6 + 8 + quote.shape[1]), dtype=np.uint8)
        frames[:, _DST_MAC] = probe[:, _SRC_MAC]
        frames[:, _SRC_MAC] = probe[:, _DST_MAC]
        frames[:, 12:14] = probe[:, 12:14]
        frames[:, 14] = 0x60
        _put16(frames, 18, frames.shape[1] - _L4_6)
        frames[:, 20] = 58
        frames[:, 21] = ttl
        if responder is None:
            frames[:, _SRC6] = probe[:, _DST6]
        else:
            frames[:, _SRC6] = np.frombuffer(responder, dtype=np.uint8)
        frames[:, _DST6] = probe[:, _SRC6]
        frames[:, _L4_6] = icmp_type
        frames[:, _L4_6 + 1] = icmp_code
        frames[:, _L4_6 + 8 :] = quote
        _fix_l4_6(frames, 58, 2)
        return frames
    frames = probe.copy()
    _swap(frames, _DST_MAC, _SRC_MAC)
    _swap(frames, _SRC6, _DST6)
    frames[:, 21] = ttl
    next_header = int(frames[0, 20])
    if kind == "echo_reply":
        frames[:, _L4_6] = 129
        _fix_l4_6(frames, 58, 2)
    elif next_header == PROTO_TCP:
        _swap(frames, slice(54, 56), slice(56, 58))
        seq = probe[:, 58:62].astype(np.uint32)
        ack = ((seq[:, 0] << 24) | (seq[:, 1] << 16) | (seq[:, 2] << 8) | seq[:, 3]) + np.uint32(1)
        frames[:, 58:62] = np.arange(4, dtype=np.uint8)
        frames[:, 62:66] = ack.astype(">u4").view(np.uint8).reshape(-1, 4)
        frames[:, 67] = {"synack": 0x12, "rst": 0x04, "rst_ack": 0x14}[kind]
        if kind == "rst":
            frames[:, 62:66] = 0
        _fix_l4_6(frames, PROTO_TCP, 16)
    elif next_header == PROTO_UDP:
        _swap(frames, slice(54, 56), slice(56, 58))
        payload = _L4_6 + 8
        if int(probe[0, 56]) * 256 + int(probe[0, 57]) == 123:
            frames[:, payload] = 0x24
            frames[:, payload + 1] = 2
            frames[:, payload + 24 : payload + 32] = probe[:, payload + 40 : payload + 48]
            frames[:, payload + 40 : payload + 48] = 7
        else:
            frames[:, payload + 2] |= 0x80
            frames[:, payload + 3] |= 0x80
        _fix_l4_6(frames, PROTO_UDP, 6)
    else:
        raise ValueError(f"no {kind} reply to an IPv6 frame with next header {next_header}")
    return frames


def udp_answer(
    probe_frames: NDArray[np.uint8], payload: NDArray[np.uint8] | bytes, *, ttl: int = 57
) -> NDArray[np.uint8]:
    """UDP answers to UDP probe frames of either family carrying ``payload`` (one ``bytes`` for
    every row, or ``(n, k)`` rows): addresses and ports swapped, lengths and checksums redone."""
    probe = np.asarray(probe_frames, dtype=np.uint8)
    n = len(probe)
    ipv6 = bool(n) and probe[0, 12] == 0x86 and probe[0, 13] == 0xDD
    l4 = _L4_6 if ipv6 else L4_OFF
    rows = np.asarray(
        np.frombuffer(payload, np.uint8)[None, :].repeat(n, 0)
        if isinstance(payload, bytes)
        else payload,
        dtype=np.uint8,
    )
    frames = np.concatenate([probe[:, : l4 + 8], rows], axis=1)
    _swap(frames, _DST_MAC, _SRC_MAC)
    _swap(frames, slice(l4, l4 + 2), slice(l4 + 2, l4 + 4))
    _put16(frames, l4 + 4, 8 + rows.shape[1])
    if ipv6:
        _swap(frames, _SRC6, _DST6)
        frames[:, 21] = ttl
        _put16(frames, 18, 8 + rows.shape[1])
        _fix_l4_6(frames, PROTO_UDP, 6)
        return frames
    _swap(frames, _IP_SRC, _IP_DST)
    frames[:, 22] = ttl
    _put16(frames, 16, frames.shape[1] - ETH_LEN)
    _fix_l4(frames, PROTO_UDP, 6)
    _fix_ip(frames)
    return frames
