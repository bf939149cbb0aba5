"""Reply classification: captured frames -> validated replies, a whole batch at once.

A small dispatcher. Frames are screened and realigned by :func:`liveness.packet.parse.screen`,
split into four groups (TCP, UDP, ICMP answers, ICMP errors), and each group's rows are handed
to the probes they belong to, found by *selector* (see :mod:`liveness.probes.base`): a lookup
table per group for probes with fixed selectors, a token computation for probes whose selector
is keyed per target. Each probe class validates its rows in one call (one AES call per class
and group) and returns a :class:`~liveness.probes.base.Verdict`.

IPv6 frames (when the scan has an IPv6 source) take the same way through
:func:`liveness.packet.parse6.screen6`: the same four groups (ICMPv6 in place of ICMP), the
same selectors translated to ICMPv6 types, the same validators, reading fields of the same
names; their tokens are the IPv6 ones (:meth:`liveness.validate.Validator.tokens6`).

Every frame ends in exactly one outcome: a reply, or one counter naming why it was dropped, so
``counters["frames"]`` equals ``counters["valid"]`` plus the drop reasons.

:meth:`ReplyClassifier.classify_columns` returns the replies as integer columns (the probe as
its index in the scan's probe list), which the reply pipeline marks for repeats and counts
before it builds records; :meth:`ReplyClassifier.classify` builds the records directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from liveness.output.schema import ADDR6, REPLY_CATEGORIES, REPLY_SCHEMA
from liveness.packet.layout import ETHERTYPE_IPV6, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP
from liveness.packet.parse import (
    ICMP_INFORMATIONAL,
    OUTER_L4,
    QUOTE_L4,
    SCREEN_REASONS,
    UDP_PAYLOAD,
    WINDOW,
    read_fields,
    screen,
)
from liveness.packet.parse6 import (
    ICMP6_INFORMATIONAL,
    OUTER_L4_6,
    QUOTE_L4_6,
    UDP_PAYLOAD6,
    WINDOW6,
    read_fields6,
    screen6,
)
from liveness.probes.app_profiles import APP_PROTOS
from liveness.probes.base import Probe, Verdict
from liveness.probes.context import ScanContext

__all__ = ["DROP_REASONS", "Replies", "ReplyClassifier", "reply_records"]

DROP_REASONS: tuple[str, ...] = (
    *SCREEN_REASONS,
    "other_protocol",  # IP protocol other than TCP, UDP, ICMP
    "not_a_reply",  # an ICMP query (echo or timestamp request)
    "quote_not_ours",  # ICMP error quoting a packet we did not send
    "unknown_probe",  # no probe of this scan matches the ports / protocol
    "validation_failed",  # a probe matches but the token bits do not
    "unexpected_tcp_flags",  # validated TCP that is neither SYN-ACK nor RST
)

CATEGORY = {name: i for i, name in enumerate(REPLY_CATEGORIES)}
_APP_PROTO_DICT = pa.array(APP_PROTOS, pa.string())
_ICMP_ERROR_CATEGORY = np.full(256, CATEGORY["icmp_other"], dtype=np.int64)
_ICMP_ERROR_CATEGORY[3] = CATEGORY["icmp_unreach"]
_ICMP_ERROR_CATEGORY[4] = CATEGORY["icmp_source_quench"]
_ICMP_ERROR_CATEGORY[5] = CATEGORY["icmp_redirect"]
_ICMP_ERROR_CATEGORY[11] = CATEGORY["icmp_time_exceeded"]
_ICMP_ERROR_CATEGORY[12] = CATEGORY["icmp_param_problem"]
_ICMP_QUERY = np.zeros(256, dtype=bool)
_ICMP_QUERY[[8, 13]] = True  # echo and timestamp requests: someone probing us, not a reply
# ICMPv6 errors (RFC 4443): destination unreachable, packet too big, time exceeded, parameter
# problem; the unassigned rest of 0-127 is "other".
_ICMP6_ERROR_CATEGORY = np.full(256, CATEGORY["icmp_other"], dtype=np.int64)
_ICMP6_ERROR_CATEGORY[1] = CATEGORY["icmp_unreach"]
_ICMP6_ERROR_CATEGORY[3] = CATEGORY["icmp_time_exceeded"]
_ICMP6_ERROR_CATEGORY[4] = CATEGORY["icmp_param_problem"]
# ICMPv6 messages that are not answers to a probe: echo request, MLD, neighbour discovery.
_ICMP6_QUERY = np.zeros(256, dtype=bool)
_ICMP6_QUERY[[128, 130, 131, 132, 133, 134, 135, 136, 137, 143]] = True

Positions = NDArray[np.int64] | None  # rows of a group handed to a probe (None: all)
Replies = dict[str, NDArray[Any]]
"""Reply columns as int64 arrays: ``row`` (input frame), ``probe`` (index), ``target``,
``responder``, ``reply`` (category code), ``icmp_type``, ``icmp_code``, ``tcp_flags``, ``sport``,
``dport``, ``attempt``, ``app_valid``, ``ttl``, ``ipid``, ``ts``, the TCP ``tcp_seq`` and
``tcp_ack`` (for the follow-ups of ``--app-layer``), ``app_active``, ``app_proto`` (an
:data:`~liveness.probes.app_profiles.APP_PROTOS` code) and ``banner_len`` (-1: no banner); when
the batch holds IPv6 replies also ``af`` (4 or 6) and ``target6``, ``responder6`` (``(n, 16)``
uint8, zero on IPv4 rows; ``target`` and ``responder`` are 0 on IPv6 rows); when it holds
banners, ``banner`` (``(n, banner_bytes)`` uint8, the first ``banner_len`` bytes of a row)."""

_DEFAULTS = {
    "icmp_type": -1,
    "icmp_code": -1,
    "tcp_flags": 0,
    "sport": 0,
    "dport": 0,
    "app_valid": 0,
    "tcp_seq": 0,
    "tcp_ack": 0,
    "app_active": 0,
    "app_proto": 0,
    "banner_len": -1,
}
_COLUMNS = ("row", "probe", "target", "responder", "reply", "attempt", *_DEFAULTS)


class _Group:
    """The probes that answer in one group, by selector: a 65536-entry table for the fixed
    ones, a list for those whose selector is keyed per target."""

    def __init__(
        self, probes: Sequence[Probe], protocol: int, *, quoted: bool, ipv6: bool = False
    ) -> None:
        self.table = np.full(65536, -1, dtype=np.int64)
        self.dynamic: list[int] = []
        for index, probe in enumerate(probes):
            if ipv6:
                if not probe.ipv6:
                    continue
                own = probe.protocol6 if quoted else probe.reply_protocol6
                selector = probe.quote_selector6() if quoted else probe.reply_selector6()
            else:
                own = probe.protocol if quoted else probe.reply_protocol
                selector = probe.quote_selector() if quoted else probe.reply_selector()
            if own != protocol:
                continue
            if selector is not None:
                self.table[selector] = index
            elif probe.dynamic:
                self.dynamic.append(index)


class ReplyClassifier:
    """Validates and classifies captured reply frames for one scan's context and probes."""

    def __init__(self, ctx: ScanContext, probes: Sequence[Probe]) -> None:
        self.ctx = ctx
        self.probes = list(probes)
        self.counters: dict[str, int] = {"frames": 0, "valid": 0} | dict.fromkeys(DROP_REASONS, 0)
        self._probe_ids = np.array([p.probe_id for p in self.probes], dtype=np.uint32)
        # Probes sharing a validator are validated together: each probe's, as a small integer.
        self._reply_family = _families([p.reply_validator() for p in self.probes])
        self._quote_family = _families([p.quote_validator() for p in self.probes])

        protocols = (PROTO_TCP, PROTO_UDP, PROTO_ICMP)
        self._direct = {proto: _Group(self.probes, proto, quoted=False) for proto in protocols}
        self._quoted = {proto: _Group(self.probes, proto, quoted=True) for proto in protocols}
        protocols6 = (PROTO_TCP, PROTO_UDP, PROTO_ICMPV6)
        self._direct6 = {
            proto: _Group(self.probes, proto, quoted=False, ipv6=True) for proto in protocols6
        }
        self._quoted6 = {
            proto: _Group(self.probes, proto, quoted=True, ipv6=True) for proto in protocols6
        }
        # The parsed fields each group's validators read, decided once (not per batch: a scan
        # of every port has 65,535 probes).
        self._reply_fields = {
            proto: {
                name for p in self.probes if p.reply_protocol == proto for name in p.reply_fields
            }
            for proto in protocols
        }
        self._reply_fields6 = {
            proto: {
                name
                for p in self.probes
                if p.ipv6 and p.reply_protocol6 == proto
                for name in p.reply_fields
            }
            for proto in protocols6
        }
        self._quote_fields = {name for p in self.probes for name in p.quote_fields}
        self._probe_dict = pa.array([p.name for p in self.probes], pa.string())
        self._category_dict = pa.array(REPLY_CATEGORIES, pa.string())
        self._vp_dict = pa.array([ctx.vp], pa.string())

    # -- public ---------------------------------------------------------------------------

    def classify(
        self, frames: NDArray[np.uint8], lengths: NDArray[np.integer[Any]], ts_ns: NDArray[np.int64]
    ) -> pa.RecordBatch:
        """Reply records (``REPLY_SCHEMA``, input order, ``repeat`` False) for valid replies.

        ``frames`` is ``(n, snaplen)`` uint8 starting at the Ethernet header, ``lengths`` the
        captured length of each (clamped to snaplen), ``ts_ns`` the receive times.
        """
        replies = self.classify_columns(frames, lengths, ts_ns)
        return self.records(replies, np.zeros(replies["row"].size, dtype=bool))

    def records(self, replies: Replies, repeat: NDArray[np.bool_]) -> pa.RecordBatch:
        """Reply records of :meth:`classify_columns`'s output, with the ``repeat`` marks."""
        return reply_records(replies, repeat, self._probe_dict, self._category_dict, self._vp_dict)

    def classify_columns(
        self, frames: NDArray[np.uint8], lengths: NDArray[np.integer[Any]], ts_ns: NDArray[np.int64]
    ) -> Replies:
        """The valid replies among ``frames``, as integer columns in input order."""
        frames = np.asarray(frames, dtype=np.uint8)
        if frames.ndim != 2:
            raise ValueError("frames must be a 2-D (n, snaplen) uint8 array")
        n = len(frames)
        lengths64 = np.clip(np.asarray(lengths, dtype=np.int64), 0, frames.shape[1])
        if lengths64.shape != (n,):
            raise ValueError("lengths must have one entry per frame")
        ts_ns = np.asarray(ts_ns, dtype=np.int64)
        self.counters["frames"] += n
        window = WINDOW6 if self.ctx.src_ip6 is not None else WINDOW
        if frames.shape[1] < window or frames.strides[1] != 1:
            padded = np.zeros((n, max(window, frames.shape[1])), dtype=np.uint8)
            padded[:, : frames.shape[1]] = frames
            frames = padded
        if self.ctx.src_ip6 is not None:
            ethertype = (frames[:, 12].astype(np.uint16) << 8) | frames[:, 13]
            is6 = (lengths64 >= 14) & (ethertype == ETHERTYPE_IPV6)
            if is6.any():
                return self._both_families(frames, lengths64, ts_ns, is6)
        return self._classify4(frames, lengths64, ts_ns)

    def _both_families(
        self,
        frames: NDArray[np.uint8],
        lengths: NDArray[np.int64],
        ts_ns: NDArray[np.int64],
        is6: NDArray[np.bool_],
    ) -> Replies:
        """A batch holding IPv6 frames: each family classified on its own, merged in order."""
        if is6.all():
            return self._classify6(frames, lengths, ts_ns)
        rows6 = np.flatnonzero(is6)
        rows4 = np.flatnonzero(~is6)
        parts = [self._classify6(frames[rows6], lengths[rows6], ts_ns[rows6])]
        if rows4.size:
            parts.append(self._classify4(frames[rows4], lengths[rows4], ts_ns[rows4]))
            parts[1]["row"] = rows4[parts[1]["row"]]
        parts[0]["row"] = rows6[parts[0]["row"]]
        merged = _merge(parts)
        order = np.argsort(merged["row"], kind="stable")
        return {name: values[order] for name, values in merged.items()}

    def _classify6(
        self, frames: NDArray[np.uint8], lengths64: NDArray[np.int64], ts_ns: NDArray[np.int64]
    ) -> Replies:
        """The valid replies among IPv6 ``frames`` (rows relative to them)."""
        assert self.ctx.src_ip6 is not None
        screened = screen6(frames, lengths64, self.ctx.src_ip6)
        for reason, count in screened.drops.items():
            self.counters[reason] += count
        hdr, rec, for_us = screened.hdr, screened.rec, screened.for_us
        tcp_rows, udp_rows, answers, errors = self._split(
            rec, for_us, lengths64, PROTO_ICMPV6, OUTER_L4_6 + 8, _ICMP6_QUERY, ICMP6_INFORMATIONAL
        )
        sink = _Sink()
        layout = _V6
        self._direct_replies(
            hdr, lengths64, tcp_rows, PROTO_TCP, "sport", OUTER_L4_6 + 20, sink, layout, frames
        )
        self._direct_replies(
            hdr, lengths64, udp_rows, PROTO_UDP, "sport", UDP_PAYLOAD6, sink, layout
        )
        self._direct_replies(
            hdr, lengths64, answers, PROTO_ICMPV6, "icmp_type", OUTER_L4_6 + 8, sink, layout
        )
        self._errors6(hdr, lengths64, errors, sink)
        replies = sink.replies()
        rows = replies["row"]
        replies["ttl"] = rec["ttl"][rows].astype(np.int64)
        replies["ipid"] = np.zeros(rows.size, dtype=np.int64)
        replies["ts"] = ts_ns[rows]
        self.counters["valid"] += rows.size
        return replies

    def _classify4(
        self, frames: NDArray[np.uint8], lengths64: NDArray[np.int64], ts_ns: NDArray[np.int64]
    ) -> Replies:
        """The valid replies among IPv4 ``frames`` (and the drop counts of the rest)."""
        screened = screen(frames, lengths64, self.ctx.src_ip)
        for reason, count in screened.drops.items():
            self.counters[reason] += count
        hdr, rec, lengths64, for_us = screened.hdr, screened.rec, screened.lengths, screened.for_us
        tcp_rows, udp_rows, answers, errors = self._split(
            rec, for_us, lengths64, PROTO_ICMP, OUTER_L4 + 8, _ICMP_QUERY, ICMP_INFORMATIONAL
        )
        sink = _Sink()
        self._direct_replies(
            hdr, lengths64, tcp_rows, PROTO_TCP, "sport", OUTER_L4 + 20, sink, raw=frames
        )
        self._direct_replies(hdr, lengths64, udp_rows, PROTO_UDP, "sport", UDP_PAYLOAD, sink)
        self._direct_replies(hdr, lengths64, answers, PROTO_ICMP, "icmp_type", OUTER_L4 + 8, sink)
        self._errors(hdr, lengths64, errors, sink)
        replies = sink.replies()
        rows = replies["row"]
        replies["ttl"] = rec["ttl"][rows].astype(np.int64)
        replies["ipid"] = rec["ipid"][rows].astype(np.int64)
        replies["ts"] = ts_ns[rows]
        self.counters["valid"] += rows.size
        return replies

    # -- dispatch -------------------------------------------------------------------------

    def _count(self, reason: str, count: int) -> None:
        self.counters[reason] += int(count)

    def _split(
        self,
        rec: NDArray[np.void],
        for_us: NDArray[np.bool_],
        lengths: NDArray[np.int64],
        icmp: int,
        icmp_header_end: int,
        queries: NDArray[np.bool_],
        informational: NDArray[np.bool_],
    ) -> tuple[NDArray[np.int64], ...]:
        """The four groups of either family's rows: TCP, UDP, ICMP answers and ICMP errors
        (other protocols, truncated ICMP and queries counted)."""
        proto = rec["proto"]
        tcp_rows = np.flatnonzero(for_us & (proto == PROTO_TCP))
        udp_rows = np.flatnonzero(for_us & (proto == PROTO_UDP))
        icmp_rows = np.flatnonzero(for_us & (proto == icmp))
        others = int(for_us.sum()) - tcp_rows.size - udp_rows.size - icmp_rows.size
        self._count("other_protocol", others)
        icmp_rows = self._need(icmp_rows, lengths, icmp_header_end)
        icmp_type = rec["icmp_type"][icmp_rows]
        query = queries[icmp_type]
        info = informational[icmp_type]
        self._count("not_a_reply", int(query.sum()))
        return tcp_rows, udp_rows, icmp_rows[info & ~query], icmp_rows[~info]

    def _tokens(
        self, target: NDArray[Any], probe_id: int | NDArray[np.uint32]
    ) -> NDArray[np.uint32]:
        """The tokens of ``target`` (uint32 IPv4, or ``(n, 16)`` IPv6 rows)."""
        if target.ndim == 2:
            assert self.ctx.src_ip6 is not None
            return self.ctx.validator.tokens6(self.ctx.src_ip6, target, probe_id)
        return self.ctx.validator.tokens(self.ctx.src_ip, target, probe_id)

    def _need(
        self, rows: NDArray[np.int64], lengths: NDArray[np.int64], size: int
    ) -> NDArray[np.int64]:
        """Rows whose captured length holds ``size`` bytes; the rest counted as truncated."""
        enough = lengths[rows] >= size
        self._count("truncated", len(rows) - int(enough.sum()))
        return rows[enough]

    def _owners(
        self, group: _Group, selector: NDArray[np.integer[Any]], target: NDArray[np.integer[Any]]
    ) -> NDArray[np.int64]:
        """The probe (index) each row belongs to, -1 where none does."""
        index: NDArray[np.int64] = group.table[selector]
        for dynamic in group.dynamic:
            maybe = np.flatnonzero(index < 0)
            if maybe.size == 0:
                break
            probe = self.probes[dynamic]
            tokens = self._tokens(target[maybe], probe.probe_id)
            hit = probe.selector_from_tokens(tokens) == selector[maybe]
            index[maybe[hit]] = dynamic
        return index

    def _judge(
        self,
        index: NDArray[np.int64],
        target: NDArray[np.integer[Any]],
        check: Any,
        sink: _Sink,
        rows: NDArray[np.int64],
        responder: NDArray[np.integer[Any]],
        families: NDArray[np.int64],
        errors_extra: Any = None,
    ) -> NDArray[np.int64]:
        """Hand each probe class its rows (``check(probe, positions, tokens)`` -> Verdict;
        ``positions`` None means all of them) and write the kept ones into ``sink``; returns
        the kept positions."""
        known_mask = index >= 0
        everyone = bool(known_mask.all())
        known = np.arange(index.size) if everyone else np.flatnonzero(known_mask)
        self._count("unknown_probe", index.size - known.size)
        index_known = index if everyone else index[known]
        target_known = target if everyone else target[known]
        ids = self._probe_ids[index_known] if known.size else np.zeros(0, np.uint32)
        tokens = self._tokens(target_known, ids)
        classes = families[index_known]
        present = np.flatnonzero(np.bincount(classes, minlength=1))
        kept_all: list[NDArray[np.int64]] = []
        for cls in present:
            if present.size == 1 and everyone:
                # The common case: one class owns every row; boolean masks, no gathers.
                verdict: Verdict = check(self.probes[int(index[0])], None, tokens)
                keep = np.asarray(verdict.keep, dtype=bool)
                at: Any = keep
                kept_positions = np.flatnonzero(keep)
            else:
                mine = np.flatnonzero(classes == cls)
                positions = known[mine]
                verdict = check(self.probes[int(index[positions[0]])], positions, tokens[mine])
                keep = np.asarray(verdict.keep, dtype=bool)
                at = kept_positions = positions[keep]
            for reason, count in verdict.drops.items():
                self._count(reason, count)
            columns = {name: np.asarray(v)[keep] for name, v in verdict.columns.items()}
            columns["probe"] = index[at]
            if target.ndim == 2:
                columns["target6"] = target[at]
                columns["responder6"] = responder[at]
            else:
                columns["target"] = target[at]
                columns["responder"] = responder[at]
            columns["attempt"] = verdict.attempt[keep]
            reply = np.asarray(verdict.reply)
            columns["reply"] = reply[keep] if reply.ndim else np.full(kept_positions.size, reply)
            extra = errors_extra(at) if errors_extra is not None else {}
            sink.add(rows[at], {**columns, **extra})
            kept_all.append(kept_positions)
        return np.concatenate(kept_all) if kept_all else np.zeros(0, np.int64)

    def _direct_replies(
        self,
        hdr: NDArray[np.uint8],
        lengths: NDArray[np.int64],
        rows: NDArray[np.int64],
        protocol: int,
        selector_field: str,
        needed: int,
        sink: _Sink,
        layout: _Layout | None = None,
        raw: NDArray[np.uint8] | None = None,
    ) -> None:
        """Answers (TCP, UDP, ICMP echo/timestamp replies) from the probed address itself
        (``raw``: the frames as captured, where an ``--app-layer`` scan reads TCP payloads)."""
        rows = self._need(rows, lengths, needed)
        if rows.size == 0:
            return
        layout = layout or _V4
        if layout.ipv6:
            wanted = self._reply_fields6[protocol]
            group = self._direct6[protocol]
        else:
            wanted = self._reply_fields[protocol]
            group = self._direct[protocol]
        fields = {selector_field, "src"} | wanted
        tcp_payloads = protocol == PROTO_TCP and self.ctx.app_layer is not None and raw is not None
        if tcp_payloads:
            fields |= (
                {"tcp_doff", "payload_len"} if layout.ipv6 else {"tcp_doff", "ver_ihl", "ip_len"}
            )
        f = layout.read(hdr, rows, tuple(sorted(fields)))
        target = f["src"]
        index = self._owners(group, f[selector_field], target)
        # What follows the 8-byte UDP header: only UDP probes read a payload (an application
        # answer); everything else reads named fields. The same number of bytes in both
        # families, so the application validators see the same payload.
        start = layout.udp_payload
        payload = (
            hdr[rows, start : start + PAYLOAD_BYTES] if protocol == PROTO_UDP else hdr[rows, :0]
        )
        payload_len = lengths[rows] - start
        if tcp_payloads:
            assert raw is not None and self.ctx.app_layer is not None
            payload, payload_len = _tcp_payloads(
                raw, rows, f, lengths, layout.ipv6, self.ctx.app_layer.banner_bytes
            )
            f["af"] = np.full(rows.size, 6 if layout.ipv6 else 4, np.int64)

        def check(
            probe: Probe, at: NDArray[np.int64] | None, tokens: NDArray[np.uint32]
        ) -> Verdict:
            if at is None:
                return probe.validate_reply(self.ctx, f, tokens, payload, payload_len)
            mine = {name: f[name][at] for name in (*probe.reply_fields, "af") if name in f}
            return probe.validate_reply(self.ctx, mine, tokens, payload[at], payload_len[at])

        self._judge(index, target, check, sink, rows, target, self._reply_family)

    def _errors(
        self,
        hdr: NDArray[np.uint8],
        lengths: NDArray[np.int64],
        rows: NDArray[np.int64],
        sink: _Sink,
    ) -> None:
        """ICMP errors, linked to the probe they quote; the responder may be a router."""
        rows = self._need(rows, lengths, QUOTE_L4 + 8)
        if rows.size == 0:
            return
        names = {"src", "icmp_type", "icmp_code", "q_ver_ihl", "q_proto", "q_src", "q_dst"}
        names |= {"q_dport", "q_icmp_type"} | self._quote_fields
        f = read_fields(hdr, rows, tuple(sorted(names)))
        q_ver_ihl = f["q_ver_ihl"]
        sane = ((q_ver_ihl >> 4) == 4) & ((q_ver_ihl & 0x0F) >= 5)
        ours = sane & (f["q_src"] == self.ctx.src_ip)
        self._link_errors(f, sane, ours, rows, sink, self._quoted, PROTO_ICMP, _ICMP_ERROR_CATEGORY)

    def _errors6(
        self,
        hdr: NDArray[np.uint8],
        lengths: NDArray[np.int64],
        rows: NDArray[np.int64],
        sink: _Sink,
    ) -> None:
        """ICMPv6 errors, linked to the probe they quote through the quoted IPv6 header."""
        rows = self._need(rows, lengths, QUOTE_L4_6 + 8)
        if rows.size == 0:
            return
        names = {"src", "icmp_type", "icmp_code", "q_ver", "q_proto", "q_src", "q_dst"}
        names |= {"q_dport", "q_icmp_type"} | self._quote_fields
        f = read_fields6(hdr, rows, tuple(sorted(names)))
        sane = (f["q_ver"] >> 4) == 6
        assert self.ctx.src_ip6 is not None
        ours = sane & (f["q_src"] == np.frombuffer(self.ctx.src_ip6, np.uint8)).all(axis=1)
        self._link_errors(
            f, sane, ours, rows, sink, self._quoted6, PROTO_ICMPV6, _ICMP6_ERROR_CATEGORY
        )

    def _link_errors(
        self,
        f: dict[str, NDArray[Any]],
        sane: NDArray[np.bool_],
        ours: NDArray[np.bool_],
        rows: NDArray[np.int64],
        sink: _Sink,
        groups: dict[int, _Group],
        icmp: int,
        categories: NDArray[np.int64],
    ) -> None:
        """Either family's errors: those whose quote is no packet (not ``sane``) or not one of
        ours counted; those quoting our packets (``ours``) handed to the probe the quoted
        header names, the error's own type, code and category recorded."""
        self._count("malformed", rows.size - int(sane.sum()))
        self._count("quote_not_ours", int(sane.sum()) - int(ours.sum()))
        mine_rows = np.flatnonzero(ours)
        if mine_rows.size < rows.size:
            rows = rows[mine_rows]
            f = {name: values[mine_rows] for name, values in f.items()}
        target = f["q_dst"]
        index = np.full(rows.size, -1, dtype=np.int64)
        for protocol, selector_field in (
            (PROTO_TCP, "q_dport"),
            (PROTO_UDP, "q_dport"),
            (icmp, "q_icmp_type"),
        ):
            at = np.flatnonzero(f["q_proto"] == protocol)
            index[at] = self._owners(groups[protocol], f[selector_field][at], target[at])

        def check(
            probe: Probe, at: NDArray[np.int64] | None, tokens: NDArray[np.uint32]
        ) -> Verdict:
            sub = f if at is None else {name: f[name][at] for name in probe.quote_fields}
            return probe.validate_quote(self.ctx, sub, tokens)

        def outer(at: NDArray[Any]) -> dict[str, NDArray[Any]]:
            """The error's own type, code and category (the probe validated the quote)."""
            icmp_type = f["icmp_type"][at]
            return {
                "reply": categories[icmp_type],
                "icmp_type": icmp_type,
                "icmp_code": f["icmp_code"][at],
            }

        self._judge(index, target, check, sink, rows, f["src"], self._quote_family, outer)


class _Layout:
    """Where one family's fields are: the field reader and the UDP payload's offset."""

    def __init__(self, ipv6: bool, read: Any, udp_payload: int) -> None:
        self.ipv6 = ipv6
        self.read = read
        self.udp_payload = udp_payload


def _tcp_payloads(
    raw: NDArray[np.uint8],
    rows: NDArray[np.int64],
    f: dict[str, NDArray[Any]],
    lengths: NDArray[np.int64],
    ipv6: bool,
    width: int,
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """The first ``width`` bytes of each TCP segment's payload, read from the captured frames
    (IPv4 options included), and the payload's length by the IP header (not the capture,
    which may hold Ethernet padding); bytes past the capture are 0."""
    doff = (f["tcp_doff"].astype(np.int64) >> 4) * 4
    if ipv6:
        ip_header = np.full(rows.size, 40, np.int64)
        ip_total = f["payload_len"].astype(np.int64) + 40
    else:
        ip_header = (f["ver_ihl"].astype(np.int64) & 0x0F) * 4
        ip_total = f["ip_len"].astype(np.int64)
    first = 14 + ip_header + doff
    size = np.where(doff >= 20, ip_total - ip_header - doff, 0)
    captured = np.clip(lengths[rows] + (0 if ipv6 else ip_header - 20) - first, 0, None)
    have = np.minimum(np.minimum(size, captured), width)
    columns = first[:, None] + np.arange(width)
    inside = np.arange(width) < have[:, None]
    np.minimum(columns, raw.shape[1] - 1, out=columns)
    payload = np.where(inside, raw[rows[:, None], columns], 0).astype(np.uint8)
    return payload, np.maximum(size, 0)


_V4 = _Layout(False, read_fields, UDP_PAYLOAD)
_V6 = _Layout(True, read_fields6, UDP_PAYLOAD6)
PAYLOAD_BYTES = WINDOW - UDP_PAYLOAD  # application bytes the UDP validators may read


def _merge(parts: list[Replies]) -> Replies:
    """Concatenate reply columns of both families (IPv6 columns zero on IPv4 rows)."""
    filled = []
    for part in parts:
        n = part["row"].size
        if "af" not in part:
            part = {
                **part,
                "af": np.full(n, 4, dtype=np.int64),
                "target6": np.zeros((n, 16), dtype=np.uint8),
                "responder6": np.zeros((n, 16), dtype=np.uint8),
            }
        filled.append(part)
    _fill_banners(filled)
    return {name: np.concatenate([p[name] for p in filled]) for name in filled[0]}


def _families(validators: list[type[Probe]]) -> NDArray[np.int64]:
    """Each probe's validator as a small integer (equal for probes validated together)."""
    distinct = list(dict.fromkeys(validators))
    return np.array([distinct.index(v) for v in validators], dtype=np.int64)


class _Sink:
    """Reply columns gathered chunk by chunk (one per probe class and group); :meth:`replies`
    puts them back in input order with one sort."""

    def __init__(self) -> None:
        self.chunks: list[Replies] = []
        self.ipv6 = False

    def add(self, rows: NDArray[np.int64], columns: dict[str, NDArray[Any]]) -> None:
        n = rows.size
        chunk: Replies = {"row": rows}
        for name in _COLUMNS[1:]:
            values = columns.get(name)
            if values is None:
                chunk[name] = np.full(n, _DEFAULTS.get(name, 0), dtype=np.int64)
            else:
                chunk[name] = np.asarray(values, dtype=np.int64)
        if "banner" in columns:
            chunk["banner"] = np.asarray(columns["banner"], dtype=np.uint8)
        if "target6" in columns:
            self.ipv6 = True
            chunk["af"] = np.full(n, 6, dtype=np.int64)
            chunk["target6"] = np.asarray(columns["target6"], dtype=np.uint8)
            chunk["responder6"] = np.asarray(columns["responder6"], dtype=np.uint8)
        self.chunks.append(chunk)

    def replies(self) -> Replies:
        names: tuple[str, ...] = _COLUMNS
        if self.ipv6:
            names = (*_COLUMNS, "af", "target6", "responder6")
        if not self.chunks:
            return {name: np.zeros(0, np.int64) for name in _COLUMNS}
        _fill_banners(self.chunks)
        if "banner" in self.chunks[0]:
            names = (*names, "banner")
        if len(self.chunks) == 1:
            merged = self.chunks[0]
        else:
            merged = {name: np.concatenate([c[name] for c in self.chunks]) for name in names}
        order = np.argsort(merged["row"], kind="stable")
        return {name: values[order] for name, values in merged.items()}


def _fill_banners(chunks: list[Replies]) -> None:
    """Give every chunk a ``banner`` of one width when any has one (zeros: no banner)."""
    width = max((c["banner"].shape[1] for c in chunks if "banner" in c), default=-1)
    if width < 0:
        return
    for chunk in chunks:
        banner = chunk.get("banner")
        n = chunk["row"].size
        if banner is None:
            chunk["banner"] = np.zeros((n, width), np.uint8)
        elif banner.shape[1] < width:
            chunk["banner"] = np.pad(banner, ((0, 0), (0, width - banner.shape[1])))


def _app_columns(replies: Replies, n: int, protos: pa.Array[Any]) -> list[pa.Array[Any]]:
    """``app_active``, ``app_proto``, ``banner`` (null where ``banner_len`` < 0)."""
    active = pa.array(replies["app_active"].astype(bool))
    proto = pa.DictionaryArray.from_arrays(replies["app_proto"].astype(np.int32), protos)
    lengths = replies["banner_len"]
    banner = replies.get("banner")
    if banner is None or not (lengths >= 0).any():
        return [active, proto, pa.nulls(n, pa.binary())]
    kept = np.maximum(lengths, 0)
    inside = np.arange(banner.shape[1]) < kept[:, None]
    data = np.ascontiguousarray(banner[inside], dtype=np.uint8)
    offsets = np.concatenate([[0], np.cumsum(kept)]).astype(np.int32)
    values = pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data.tobytes())]
    )
    return [active, proto, pc.if_else(pa.array(lengths >= 0), values, pa.scalar(None, pa.binary()))]


def _family_columns(replies: Replies, n: int) -> list[pa.Array[Any]]:
    """``af``, ``target6``, ``responder6``: nulls where the row is IPv4."""
    if "af" not in replies:
        return [pa.array(np.full(n, 4, dtype=np.uint8)), pa.nulls(n, ADDR6), pa.nulls(n, ADDR6)]
    af = replies["af"].astype(np.uint8)
    ipv4 = pa.array(af == 4)
    columns: list[pa.Array[Any]] = [pa.array(af)]
    for name in ("target6", "responder6"):
        raw = np.ascontiguousarray(replies[name], dtype=np.uint8)
        values = pa.FixedSizeBinaryArray.from_buffers(ADDR6, n, [None, pa.py_buffer(raw.tobytes())])
        columns.append(pc.if_else(ipv4, pa.scalar(None, ADDR6), values))
    return columns


def reply_records(
    replies: Replies,
    repeat: NDArray[np.bool_],
    probe_names: pa.Array[Any],
    categories: pa.Array[Any],
    vps: pa.Array[Any],
) -> pa.RecordBatch:
    """The :data:`REPLY_SCHEMA` record batch of integer reply columns (dictionaries given)."""
    n = replies["row"].size

    def dictionary(indices: NDArray[np.int64], values: pa.Array[Any]) -> pa.Array[Any]:
        return pa.DictionaryArray.from_arrays(indices.astype(np.int32), values)

    arrays = [
        pa.array(replies["ts"], pa.int64()),
        dictionary(replies["probe"], probe_names),
        pa.array(replies["target"].astype(np.uint32)),
        pa.array(replies["responder"].astype(np.uint32)),
        dictionary(replies["reply"], categories),
        pa.array(replies["icmp_type"].astype(np.int16)),
        pa.array(replies["icmp_code"].astype(np.int16)),
        pa.array(replies["tcp_flags"].astype(np.uint8)),
        pa.array(replies["ttl"].astype(np.uint8)),
        pa.array(replies["ipid"].astype(np.uint16)),
        pa.array(replies["sport"].astype(np.uint16)),
        pa.array(replies["dport"].astype(np.uint16)),
        pa.array(replies["attempt"].astype(np.uint8)),
        pa.array(np.asarray(repeat, dtype=bool)),
        pa.array(replies["app_valid"].astype(bool)),
        dictionary(np.zeros(n, dtype=np.int64), vps),
        *_family_columns(replies, n),
        *_app_columns(replies, n, _APP_PROTO_DICT),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=REPLY_SCHEMA)
