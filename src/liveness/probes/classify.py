"""Reply classification: captured frames -> validated reply records, a whole batch at once.

Frames are grouped by masks (IPv4 for us; TCP, UDP, ICMP echo reply, ICMP with a quoted
header), each group is read through one structured view and validated against tokens
recomputed from the reply (one AES call per group). Every frame ends in exactly one outcome:
a record, or one counter naming why it was dropped, so ``counters["frames"]`` equals
``counters["valid"]`` plus the drop reasons.

Rows whose IP header (outer or quoted) carries options are first realigned into a copy of the
header window, so every later read is at a fixed offset. Nothing here indexes past a row:
lengths decide what is readable, and malformed or random frames are counted, never raised on.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from liveness.output.schema import REPLY_CATEGORIES, REPLY_SCHEMA
from liveness.packet.layout import (
    ETHERTYPE_IPV4,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    field_view,
    struct_dtype,
)
from liveness.probes.base import UDP_PAYLOAD_OFF, Probe, UdpProbe
from liveness.probes.icmp_echo import IcmpEcho, echo_id_seq
from liveness.probes.tcp_syn import TcpSynRandom
from liveness.scan.context import ScanContext

__all__ = ["DROP_REASONS", "ReplyClassifier"]

WINDOW = 96  # bytes of each frame the classifier reads (after realignment)
OUTER_L4 = 34  # Ethernet + 20-byte IPv4
QUOTE_IP = 42  # ... + 8-byte ICMP header
QUOTE_L4 = 62  # ... + 20-byte quoted IPv4

VIEW = struct_dtype(
    {
        "eth_type": (">u2", 12),
        "ver_ihl": ("u1", 14),
        "ipid": (">u2", 18),
        "frag": (">u2", 20),
        "ttl": ("u1", 22),
        "proto": ("u1", 23),
        "src": (">u4", 26),
        "dst": (">u4", 30),
        "sport": (">u2", 34),
        "dport": (">u2", 36),
        "tcp_seq": (">u4", 38),
        "tcp_ack": (">u4", 42),
        "tcp_flags": ("u1", 47),
        "icmp_type": ("u1", 34),
        "icmp_code": ("u1", 35),
        "icmp_id": (">u2", 38),
        "icmp_seq": (">u2", 40),
        "q_ver_ihl": ("u1", 42),
        "q_proto": ("u1", 51),
        "q_src": (">u4", 54),
        "q_dst": (">u4", 58),
        "q_sport": (">u2", 62),
        "q_dport": (">u2", 64),
        "q_seq": (">u4", 66),
        "q_icmp_type": ("u1", 62),
        "q_icmp_id": (">u2", 66),
        "q_icmp_seq": (">u2", 68),
    },
    WINDOW,
)

DROP_REASONS: tuple[str, ...] = (
    "truncated",  # captured too short for the headers its kind needs
    "not_ip",  # not Ethernet II + IPv4
    "malformed",  # IPv4 version/IHL (outer or quoted) impossible
    "not_for_us",  # IP destination is not our source address
    "fragment",  # a non-first IP fragment (no transport header to validate)
    "other_protocol",  # IP protocol other than TCP, UDP, ICMP
    "not_a_reply",  # ICMP echo request
    "quote_not_ours",  # ICMP error quoting a packet we did not send
    "unknown_probe",  # no probe of this scan matches the ports / protocol
    "validation_failed",  # a probe matches but the token bits do not
    "unexpected_tcp_flags",  # validated TCP that is neither SYN-ACK nor RST
)

CATEGORY = {name: i for i, name in enumerate(REPLY_CATEGORIES)}
_ICMP_ERROR_CATEGORY = np.full(256, CATEGORY["icmp_other"], dtype=np.int32)
_ICMP_ERROR_CATEGORY[3] = CATEGORY["icmp_unreach"]
_ICMP_ERROR_CATEGORY[4] = CATEGORY["icmp_source_quench"]
_ICMP_ERROR_CATEGORY[5] = CATEGORY["icmp_redirect"]
_ICMP_ERROR_CATEGORY[11] = CATEGORY["icmp_time_exceeded"]
_ICMP_ERROR_CATEGORY[12] = CATEGORY["icmp_param_problem"]

ECHO_REPLY = 0
ECHO_REQUEST = 8
TCP_RST = 0x04
TCP_SYN_ACK = 0x12
TCP_ACK = 0x10

_Cols = dict[str, NDArray[np.int64]]
_Ints = NDArray[np.integer[Any]]


class ReplyClassifier:
    """Validates and classifies captured reply frames for one scan's context and probes."""

    def __init__(self, ctx: ScanContext, probes: Sequence[Probe]) -> None:
        self.ctx = ctx
        self.probes = list(probes)
        self.counters: dict[str, int] = {"frames": 0, "valid": 0} | dict.fromkeys(DROP_REASONS, 0)
        self._probe_ids = np.array([p.probe_id for p in self.probes], dtype=np.uint32)
        self._tcp_by_port = np.full(65536, -1, dtype=np.int64)
        self._udp_by_port = np.full(65536, -1, dtype=np.int64)
        self._random = -1
        self._echo = -1
        for index, probe in enumerate(self.probes):
            if isinstance(probe, TcpSynRandom):
                self._random = index
            elif isinstance(probe, IcmpEcho):
                self._echo = index
            elif probe.target_port is not None:
                table = self._udp_by_port if isinstance(probe, UdpProbe) else self._tcp_by_port
                table[probe.target_port] = index
        self._probe_dict = pa.array([p.name for p in self.probes], pa.string())
        self._category_dict = pa.array(REPLY_CATEGORIES, pa.string())
        self._vp_dict = pa.array([ctx.vp], pa.string())

    # -- public ---------------------------------------------------------------------------

    def classify(
        self,
        frames: NDArray[np.uint8],
        lengths: _Ints,
        ts_ns: NDArray[np.int64],
    ) -> pa.RecordBatch:
        """Reply records (``REPLY_SCHEMA``, input order, ``repeat`` False) for valid replies.

        ``frames`` is ``(n, snaplen)`` uint8 starting at the Ethernet header, ``lengths`` the
        captured length of each (clamped to snaplen), ``ts_ns`` the receive times.
        """
        frames = np.asarray(frames, dtype=np.uint8)
        if frames.ndim != 2:
            raise ValueError("frames must be a 2-D (n, snaplen) uint8 array")
        n = len(frames)
        lengths64 = np.clip(np.asarray(lengths, dtype=np.int64), 0, frames.shape[1])
        if lengths64.shape != (n,):
            raise ValueError("lengths must have one entry per frame")
        ts_ns = np.asarray(ts_ns, dtype=np.int64)
        self.counters["frames"] += n
        if frames.shape[1] < WINDOW or frames.strides[1] != 1:
            padded = np.zeros((n, max(WINDOW, frames.shape[1])), dtype=np.uint8)
            padded[:, : frames.shape[1]] = frames
            frames = padded
        hdr, rec, lengths64, for_us = self._screen(frames, lengths64)

        proto = rec["proto"]
        parts: list[_Cols] = []
        tcp_rows = np.flatnonzero(for_us & (proto == PROTO_TCP))
        udp_rows = np.flatnonzero(for_us & (proto == PROTO_UDP))
        icmp_rows = np.flatnonzero(for_us & (proto == PROTO_ICMP))
        self._count(
            "other_protocol", int(for_us.sum()) - len(tcp_rows) - len(udp_rows) - len(icmp_rows)
        )
        parts.append(self._tcp(hdr, lengths64, tcp_rows))
        parts.append(self._udp(hdr, lengths64, udp_rows))
        parts.append(self._icmp(hdr, rec, lengths64, icmp_rows))
        return self._batch(rec, ts_ns, parts)

    # -- screening and realignment ----------------------------------------------------------

    def _count(self, reason: str, count: int | np.integer) -> None:
        self.counters[reason] += int(count)

    def _screen(
        self, frames: NDArray[np.uint8], lengths: NDArray[np.int64]
    ) -> tuple[NDArray[np.uint8], NDArray[np.void], NDArray[np.int64], NDArray[np.bool_]]:
        """Sort frames into IPv4-for-us or a drop reason; realign IP options away."""
        rec = field_view(frames, VIEW)
        has_eth = lengths >= 14
        is_ip = has_eth & (rec["eth_type"] == ETHERTYPE_IPV4)
        ver_ihl = rec["ver_ihl"]
        ihl = (ver_ihl & 0x0F).astype(np.int64)
        well_formed = is_ip & ((ver_ihl >> 4) == 4) & (ihl >= 5)
        complete = well_formed & (lengths >= 14 + 4 * ihl)
        to_us = complete & (rec["dst"] == self.ctx.src_ip)
        for_us = to_us & ((rec["frag"] & 0x1FFF) == 0)
        self._count("truncated", (~has_eth).sum() + (well_formed & ~complete).sum())
        self._count("not_ip", (has_eth & ~is_ip).sum())
        self._count("malformed", (is_ip & ~well_formed).sum())
        self._count("not_for_us", (complete & ~to_us).sum())
        self._count("fragment", (to_us & ~for_us).sum())

        outer_shift = np.where(for_us, 4 * (ihl - 5), 0)
        shifted = np.flatnonzero(outer_shift)
        hdr = frames
        if len(shifted):
            hdr = frames[:, :WINDOW].copy()
            hdr[shifted] = _gather(frames, shifted, outer_shift[shifted], 0)
            rec = field_view(hdr, VIEW)
            lengths = lengths - outer_shift
        # quoted headers with options, in ICMP messages that carry one
        icmp_type = rec["icmp_type"]
        quoting = for_us & (rec["proto"] == PROTO_ICMP) & (icmp_type != ECHO_REPLY)
        quoting &= icmp_type != ECHO_REQUEST
        q_ihl = (rec["q_ver_ihl"] & 0x0F).astype(np.int64)
        q_shift = np.where(
            quoting & (q_ihl > 5) & (lengths >= QUOTE_IP + 4 * q_ihl), 4 * (q_ihl - 5), 0
        )
        q_rows = np.flatnonzero(q_shift)
        if len(q_rows):
            if hdr is frames:
                hdr = frames[:, :WINDOW].copy()
                rec = field_view(hdr, VIEW)
            hdr[q_rows] = _gather(frames, q_rows, outer_shift[q_rows], q_shift[q_rows])
            lengths = lengths - q_shift
        return hdr, rec, lengths, for_us

    # -- validation helpers ---------------------------------------------------------------

    def _tokens(self, targets: _Ints, probe_index: NDArray[np.int64]) -> NDArray[np.uint32]:
        ids = self._probe_ids[np.maximum(probe_index, 0)] if len(self._probe_ids) else probe_index
        return self.ctx.validator.tokens(self.ctx.src_ip, targets, ids.astype(np.uint32))

    def _port_attempt(
        self, our_port: _Ints, tokens: NDArray[np.uint32]
    ) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
        """Whether our port is the token's port for some attempt, and that attempt."""
        ctx = self.ctx
        base = (tokens[:, 1] % np.uint32(ctx.sport_count)).astype(np.int64)
        attempt = (our_port.astype(np.int64) - ctx.sport_base - base) % ctx.sport_count
        in_range = (our_port >= ctx.sport_base) & (our_port < ctx.sport_base + ctx.sport_count)
        return in_range & (attempt < ctx.max_attempts), attempt

    def _probe_for_port(
        self,
        table: NDArray[np.int64],
        port: _Ints,
        allow_random: bool,
    ) -> NDArray[np.int64]:
        """Probe index by target port; -2 marks "maybe the random port" (checked later)."""
        index = table[port]
        if allow_random and self._random >= 0:
            index = np.where(index < 0, -2, index)
        return index

    def _resolve_random(
        self,
        index: NDArray[np.int64],
        port: _Ints,
        targets: _Ints,
    ) -> NDArray[np.int64]:
        """Turn -2 into the random probe where the port is the target's random port, else -1."""
        maybe = np.flatnonzero(index == -2)
        if len(maybe) == 0:
            return index
        index = index.copy()
        probe = self.probes[self._random]
        assert isinstance(probe, TcpSynRandom)
        tokens = self.ctx.validator.tokens(self.ctx.src_ip, targets[maybe], probe.probe_id)
        hit = probe.ports_from_tokens(tokens) == port[maybe]
        index[maybe] = np.where(hit, self._random, -1)
        return index

    # -- groups ---------------------------------------------------------------------------

    def _tcp(
        self, hdr: NDArray[np.uint8], lengths: NDArray[np.int64], rows: NDArray[np.int64]
    ) -> _Cols:
        rows = self._need(rows, lengths, OUTER_L4 + 20)
        f = _fields(hdr, rows, ("src", "sport", "dport", "tcp_ack", "tcp_flags"))
        target, their_port, our_port = f["src"], f["sport"], f["dport"]
        index = self._probe_for_port(self._tcp_by_port, their_port, allow_random=True)
        index = self._resolve_random(index, their_port, target)
        known = index >= 0
        tokens = self._tokens(target, index)
        port_ok, attempt = self._port_attempt(our_port, tokens)
        flags = f["tcp_flags"]
        ack_ok = ((flags & TCP_ACK) == 0) | (f["tcp_ack"] == tokens[:, 0] + np.uint32(1))
        valid = known & port_ok & ack_ok
        is_rst = (flags & TCP_RST) != 0
        expected = is_rst | ((flags & TCP_SYN_ACK) == TCP_SYN_ACK)
        keep = valid & expected
        self._count("unknown_probe", len(rows) - int(known.sum()))
        self._count("validation_failed", int(known.sum()) - int(valid.sum()))
        self._count("unexpected_tcp_flags", int(valid.sum()) - int(keep.sum()))
        category = np.where(is_rst[keep], CATEGORY["rst"], CATEGORY["synack"])
        return _cols(
            rows[keep],
            target[keep],
            target[keep],
            category,
            index[keep],
            sport=their_port[keep],
            dport=our_port[keep],
            attempt=attempt[keep],
            tcp_flags=flags[keep],
        )

    def _udp(
        self,
        hdr: NDArray[np.uint8],
        lengths: NDArray[np.int64],
        rows: NDArray[np.int64],
    ) -> _Cols:
        rows = self._need(rows, lengths, UDP_PAYLOAD_OFF)
        f = _fields(hdr, rows, ("src", "sport", "dport"))
        target, their_port, our_port = f["src"], f["sport"], f["dport"]
        index = self._udp_by_port[their_port]
        known = index >= 0
        tokens = self._tokens(target, index)
        port_ok, attempt = self._port_attempt(our_port, tokens)
        keep = known & port_ok
        self._count("unknown_probe", len(rows) - int(known.sum()))
        self._count("validation_failed", int(known.sum()) - int(keep.sum()))
        rows, index, tokens = rows[keep], index[keep], tokens[keep]
        app_valid = np.zeros(len(rows), dtype=bool)
        for probe_index in np.unique(index):
            probe = self.probes[int(probe_index)]
            if not isinstance(probe, UdpProbe):
                continue
            mine = np.flatnonzero(index == probe_index)
            payload = hdr[rows[mine], UDP_PAYLOAD_OFF:WINDOW]
            payload_len = lengths[rows[mine]] - UDP_PAYLOAD_OFF
            app_valid[mine] = probe.app_valid(payload, payload_len, tokens[mine])
        return _cols(
            rows,
            target[keep],
            target[keep],
            np.full(len(rows), CATEGORY["udp"]),
            index,
            sport=their_port[keep],
            dport=our_port[keep],
            attempt=attempt[keep],
            app_valid=app_valid,
        )

    def _icmp(
        self,
        hdr: NDArray[np.uint8],
        rec: NDArray[np.void],
        lengths: NDArray[np.int64],
        rows: NDArray[np.int64],
    ) -> _Cols:
        rows = self._need(rows, lengths, OUTER_L4 + 8)
        icmp_type = rec["icmp_type"][rows]
        echo = rows[icmp_type == ECHO_REPLY]
        request = icmp_type == ECHO_REQUEST
        self._count("not_a_reply", int(request.sum()))
        errors = rows[(icmp_type != ECHO_REPLY) & ~request]
        return _concat([self._echo_replies(hdr, echo), self._errors(hdr, lengths, errors)])

    def _echo_replies(self, hdr: NDArray[np.uint8], rows: NDArray[np.int64]) -> _Cols:
        if self._echo < 0:
            self._count("unknown_probe", len(rows))
            rows = rows[:0]
        f = _fields(hdr, rows, ("src", "icmp_code", "icmp_id", "icmp_seq"))
        target = f["src"]
        index = np.full(len(rows), self._echo, dtype=np.int64)
        tokens = self._tokens(target, index)
        ident, seq0 = echo_id_seq(tokens)
        attempt = (f["icmp_seq"].astype(np.int64) - seq0) & 0xFFFF
        keep = (f["icmp_id"] == ident) & (attempt < self.ctx.max_attempts)
        kept = int(keep.sum())
        self._count("validation_failed", len(rows) - kept)
        return _cols(
            rows[keep],
            target[keep],
            target[keep],
            np.full(kept, CATEGORY["echo_reply"]),
            index[keep],
            icmp_type=np.zeros(kept, np.int64),
            icmp_code=f["icmp_code"][keep],
            attempt=attempt[keep],
        )

    def _errors(
        self, hdr: NDArray[np.uint8], lengths: NDArray[np.int64], rows: NDArray[np.int64]
    ) -> _Cols:
        rows = self._need(rows, lengths, QUOTE_L4 + 8)
        f = _fields(hdr, rows, ERROR_FIELDS)
        q_ver_ihl = f["q_ver_ihl"]
        sane = ((q_ver_ihl >> 4) == 4) & ((q_ver_ihl & 0x0F) >= 5)
        ours = sane & (f["q_src"] == self.ctx.src_ip)
        target = f["q_dst"]
        q_proto = f["q_proto"]
        is_tcp, is_udp = q_proto == PROTO_TCP, q_proto == PROTO_UDP
        is_echo = (q_proto == PROTO_ICMP) & (f["q_icmp_type"] == ECHO_REQUEST)
        their_port, our_port = f["q_dport"], f["q_sport"]
        index = np.where(is_udp, self._udp_by_port[their_port], -1)
        index = np.where(is_tcp, self._probe_for_port(self._tcp_by_port, their_port, True), index)
        index = np.where(is_echo, self._echo, index)
        index = np.where(ours, index, -1)
        index = self._resolve_random(index, their_port, target)
        known = index >= 0
        tokens = self._tokens(target, index)
        port_ok, attempt = self._port_attempt(our_port, tokens)
        seq_ok = f["q_seq"] == tokens[:, 0]
        ident, seq0 = echo_id_seq(tokens)
        echo_attempt = (f["q_icmp_seq"].astype(np.int64) - seq0) & 0xFFFF
        echo_ok = (f["q_icmp_id"] == ident) & (echo_attempt < self.ctx.max_attempts)
        keep = known & np.where(is_echo, echo_ok, port_ok & (seq_ok | ~is_tcp))
        self._count("malformed", len(rows) - int(sane.sum()))
        self._count("quote_not_ours", int(sane.sum()) - int(ours.sum()))
        self._count("unknown_probe", int(ours.sum()) - int(known.sum()))
        self._count("validation_failed", int(known.sum()) - int(keep.sum()))
        ports = ~is_echo[keep]
        icmp_type = f["icmp_type"][keep]
        return _cols(
            rows[keep],
            target[keep],
            f["src"][keep],
            _ICMP_ERROR_CATEGORY[icmp_type],
            index[keep],
            icmp_type=icmp_type,
            icmp_code=f["icmp_code"][keep],
            sport=np.where(ports, their_port[keep], 0),
            dport=np.where(ports, our_port[keep], 0),
            attempt=np.where(ports, attempt[keep], echo_attempt[keep]),
        )

    def _need(
        self, rows: NDArray[np.int64], lengths: NDArray[np.int64], size: int
    ) -> NDArray[np.int64]:
        """Rows whose captured length holds ``size`` bytes; the rest counted as truncated."""
        enough = lengths[rows] >= size
        self._count("truncated", len(rows) - int(enough.sum()))
        return rows[enough]

    # -- output ---------------------------------------------------------------------------

    def _batch(
        self, rec: NDArray[np.void], ts_ns: NDArray[np.int64], parts: list[_Cols]
    ) -> pa.RecordBatch:
        cols = _concat(parts)
        order = np.argsort(cols["row"], kind="stable")
        rows = cols["row"][order]
        self.counters["valid"] += len(rows)
        n = len(rows)

        def dictionary(indices: NDArray[np.int64], values: pa.Array[Any]) -> pa.Array[Any]:
            return pa.DictionaryArray.from_arrays(indices.astype(np.int32), values)

        arrays = [
            pa.array(ts_ns[rows], pa.int64()),
            dictionary(cols["probe"][order], self._probe_dict),
            pa.array(cols["target"][order].astype(np.uint32)),
            pa.array(cols["responder"][order].astype(np.uint32)),
            dictionary(cols["reply"][order], self._category_dict),
            pa.array(cols["icmp_type"][order].astype(np.int16)),
            pa.array(cols["icmp_code"][order].astype(np.int16)),
            pa.array(cols["tcp_flags"][order].astype(np.uint8)),
            pa.array(rec["ttl"][rows].astype(np.uint8)),
            pa.array(rec["ipid"][rows].astype(np.uint16)),
            pa.array(cols["sport"][order].astype(np.uint16)),
            pa.array(cols["dport"][order].astype(np.uint16)),
            pa.array(cols["attempt"][order].astype(np.uint8)),
            pa.array(np.zeros(n, dtype=bool)),
            pa.array(cols["app_valid"][order].astype(bool)),
            dictionary(np.zeros(n, dtype=np.int64), self._vp_dict),
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=REPLY_SCHEMA)


ERROR_FIELDS = (
    "src",
    "icmp_type",
    "icmp_code",
    "q_ver_ihl",
    "q_proto",
    "q_src",
    "q_dst",
    "q_sport",
    "q_dport",
    "q_seq",
    "q_icmp_type",
    "q_icmp_id",
    "q_icmp_seq",
)


@functools.cache
def _narrow_view(names: tuple[str, ...]) -> np.dtype[np.void]:
    """The part of :data:`VIEW` holding ``names``, cut after the last of them."""
    fields = {name: (VIEW.fields[name][0].str, VIEW.fields[name][1]) for name in names}  # type: ignore[index]
    end = max(VIEW.fields[name][1] + VIEW[name].itemsize for name in names)  # type: ignore[index]
    return struct_dtype(fields, end)


def _fields(
    hdr: NDArray[np.uint8], rows: NDArray[np.int64], names: tuple[str, ...]
) -> dict[str, NDArray[np.integer]]:
    """Fields of the records ``rows`` as native-endian arrays (one narrow gather, then casts)."""
    view = _narrow_view(names)
    sub = field_view(hdr[rows, : view.itemsize], view)
    return {name: sub[name].astype(view[name].newbyteorder("=")) for name in names}


_COLUMNS = ("row", "target", "responder", "reply", "probe")
_DEFAULTS = {
    "icmp_type": -1,
    "icmp_code": -1,
    "tcp_flags": 0,
    "sport": 0,
    "dport": 0,
    "attempt": 0,
    "app_valid": 0,
}


def _cols(
    row: NDArray[np.integer],
    target: NDArray[np.integer],
    responder: NDArray[np.integer],
    reply: NDArray[np.integer],
    probe: NDArray[np.integer],
    **extra: NDArray[np.generic],
) -> _Cols:
    """One group's output columns as int64 arrays (missing ones filled with their default)."""
    n = len(row)
    out: _Cols = {
        name: np.asarray(values, dtype=np.int64)
        for name, values in zip(_COLUMNS, (row, target, responder, reply, probe), strict=True)
    }
    for name, default in _DEFAULTS.items():
        values = extra.get(name)
        out[name] = (
            np.full(n, default, dtype=np.int64) if values is None else np.asarray(values, np.int64)
        )
    return out


def _concat(parts: list[_Cols]) -> _Cols:
    """Column-wise concatenation of group outputs."""
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _gather(
    frames: NDArray[np.uint8],
    rows: NDArray[np.int64],
    outer_shift: NDArray[np.int64] | int,
    quote_shift: NDArray[np.int64] | int,
) -> NDArray[np.uint8]:
    """The header windows of ``rows`` with IP options cut out (outer at 34, quoted at 62)."""
    col = np.arange(WINDOW)
    outer = np.broadcast_to(np.asarray(outer_shift), rows.shape)[:, None]
    quote = np.broadcast_to(np.asarray(quote_shift), rows.shape)[:, None]
    cols = col[None, :] + np.where(col >= OUTER_L4, outer, 0) + np.where(col >= QUOTE_L4, quote, 0)
    np.minimum(cols, frames.shape[1] - 1, out=cols)
    return frames[rows[:, None], cols]
