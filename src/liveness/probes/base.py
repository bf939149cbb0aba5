"""The probe interface: one probe type = one module that owns everything about it.

As ZMap's ``probe_module_t``, a probe class builds its frames, says which replies are its own
(direct answers and the ICMP errors that quote it), validates and classifies them, and names its
reply category.

*Building.* A probe builds the frames for a batch of targets at once: it copies a per-scan
template (all constant bytes and the checksums of the constant part) into an ``(n, frame_len)``
array and patches only the per-target fields through a structured view: destination address,
the validation bits of the token, the attempt, and the checksums by incremental update.

*Both families.* The same probe builds IPv4 frames (:meth:`Probe.build`, uint32 targets) and
IPv6 frames (:meth:`Probe.build6`, 16-byte targets): the fields a probe declares at IPv4
offsets are moved 20 bytes on for IPv6 (:func:`~liveness.packet.layout.shift_fields`), the
transport checksum gets the IPv6 pseudo-header (ICMPv6 has one; ICMPv4 has none), and ICMP
probes name their ICMPv6 types (:meth:`Probe.icmp6_type`). A probe with no IPv6 meaning sets
``ipv6 = False``. Replies of both families reach the same validators, through fields of the
same names.

*Replies.* The classifier (``classify.py``) parses frames and hands each probe the rows that are
its own, found by a *selector*: the source port of a TCP or UDP answer, the ICMP type of an
ICMP answer; the quoted destination port or quoted ICMP type of an error. A probe whose selector
differs per target (``tcp_syn:random``) computes it from the tokens. The probe then checks the
token bits the rows carry (:meth:`Probe.validate_reply`, :meth:`Probe.validate_quote`) and
returns a :class:`Verdict`. Validation depends on the probe's class and the scan context only,
so the rows of every probe of one class are validated in one call.

New probe types register themselves: defining a subclass with a ``kind`` adds it to
:data:`PROBE_CLASSES`, where ``--probes`` finds it by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from liveness.output.schema import REPLY_CATEGORIES
from liveness.packet.checksum import address_sum16, finish, partial_sum, word_sum32
from liveness.packet.layout import (
    ETHERTYPE_IPV6,
    IPV6_SHIFT,
    L4_OFF,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    ethernet_header,
    field_view,
    ipv4_header,
    ipv6_header,
    shift_fields,
    struct_dtype,
)
from liveness.probes.context import ScanContext

__all__ = [
    "PROBE_CLASSES",
    "Fields",
    "Probe",
    "Targets6",
    "Template",
    "Template6",
    "UdpProbe",
    "Verdict",
    "attempt_port",
    "category",
    "failed",
    "port_attempt",
    "prepare6",
]

Fields = dict[str, NDArray[np.integer[Any]]]
"""Parsed reply fields by name (see :data:`liveness.packet.parse.VIEW`), one entry per row."""

PROBE_CLASSES: dict[str, type[Probe]] = {}
"""Probe types by ``kind`` (the name before the colon in ``--probes``), filled by subclassing."""

# Fields common to every frame we build (byte offsets in the frame).
IP_FIELDS: dict[str, tuple[str, int]] = {"ip_sum": (">u2", 24), "ip_dst": (">u4", 30)}
IP6_DST_OFF = 38  # Ethernet 14 + 24 bytes of the IPv6 header before the destination


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


@dataclass(frozen=True)
class Targets6:
    """A batch of IPv6 targets with what every probe's frames share: the addresses
    (``(n, 16)`` uint8), their checksum share and the per-target part of the token."""

    addresses: NDArray[np.uint8]
    dst_sum: NDArray[np.uint32]
    chain: NDArray[np.uint8]


def prepare6(ctx: ScanContext, targets: NDArray[np.uint8]) -> Targets6:
    """:class:`Targets6` of ``targets`` under the scan's key and IPv6 source."""
    if ctx.src_ip6 is None:
        raise ValueError("an IPv6 probe needs an IPv6 source address")
    addresses = np.ascontiguousarray(targets, dtype=np.uint8).reshape(-1, 16)
    return Targets6(
        addresses, address_sum16(addresses), ctx.validator.chain6(ctx.src_ip6, addresses)
    )


class Template6(Template):
    """The IPv6 frame of one probe for one scan; ``l4_sum0`` includes the pseudo-header's
    source, length and next header (the destination is added per target)."""

    def __init__(self, ctx: ScanContext, next_header: int, l4: bytes) -> None:
        if ctx.src_ip6 is None:
            raise ValueError("an IPv6 probe needs an IPv6 source address")
        ip = ipv6_header(ctx.src_ip6, bytes(16), next_header, len(l4), ctx.ttl)
        eth = ethernet_header(ctx.src_mac, ctx.next_hop_mac6, ETHERTYPE_IPV6)
        self.frame = np.frombuffer(eth + ip + l4, dtype=np.uint8).copy()
        self.ip_sum0 = np.uint32(0)
        pseudo = ctx.src_ip6 + len(l4).to_bytes(4, "big") + bytes([0, 0, 0, next_header])
        self.l4_sum0 = np.uint32(partial_sum(pseudo + l4))


def attempt_port(ctx: ScanContext, word: NDArray[np.uint32], attempt: int) -> NDArray[np.uint32]:
    """The source port of ``attempt``: ``base + (word + attempt) mod count`` (as uint32)."""
    offset = (word % np.uint32(ctx.sport_count) + np.uint32(attempt)) % np.uint32(ctx.sport_count)
    return offset + np.uint32(ctx.sport_base)


def port_attempt(
    ctx: ScanContext, our_port: NDArray[np.integer[Any]], tokens: NDArray[np.uint32]
) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """Whether our port is the token's port for some attempt (:func:`attempt_port` inverted),
    and that attempt."""
    base = (tokens[:, 1] % np.uint32(ctx.sport_count)).astype(np.int64)
    attempt = (our_port.astype(np.int64) - ctx.sport_base - base) % ctx.sport_count
    in_range = (our_port >= ctx.sport_base) & (our_port < ctx.sport_base + ctx.sport_count)
    return in_range & (attempt < ctx.max_attempts), attempt


@dataclass
class Verdict:
    """A probe's decision on the rows it was handed (all arrays one entry per row).

    ``keep``: valid replies to keep. ``attempt``: the transmission each answers. ``reply``: the
    category code (:data:`liveness.output.schema.REPLY_CATEGORIES` index) of direct replies;
    the classifier sets it for errors. ``columns``: reply-record columns the probe fills
    (``tcp_flags``, ``app_valid``, ``icmp_type``, ``icmp_code``, ``sport``, ``dport``).
    ``drops``: the count of rows not kept, by reason (``validation_failed`` and the like).
    """

    keep: NDArray[np.bool_]
    attempt: NDArray[np.int64]
    reply: NDArray[np.int64] | int = -1
    columns: dict[str, NDArray[Any]] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)


class Probe(ABC):
    """A probe type. Subclasses set the class attributes and implement :meth:`_patch` and the
    reply hooks.

    ``kind`` names the type in ``--probes`` (``tcp_syn`` in ``tcp_syn:443``); ``name`` the
    instance (``tcp_syn:443``). ``probe_id`` is stable across runs (it is part of the
    validation token, so ``decode`` must recompute the same value), unique per name;
    ``target_port`` is the fixed L4 port the probe goes to (None for ICMP and for a per-target
    port). ``reply_fields`` and ``quote_fields`` are the parsed fields the validators read.
    """

    kind: ClassVar[str] = ""
    name: str
    probe_id: int
    protocol: ClassVar[int]
    target_port: int | None = None
    fields: ClassVar[dict[str, tuple[str, int]]] = {}
    reply_fields: ClassVar[tuple[str, ...]] = ()
    quote_fields: ClassVar[tuple[str, ...]] = ()
    ipv6: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("kind"):
            if cls.kind in PROBE_CLASSES:
                raise TypeError(f"probe kind {cls.kind!r} is defined twice")
            PROBE_CLASSES[cls.kind] = cls

    @classmethod
    def from_spec(cls, args: str, context: dict[str, Any]) -> list[Probe]:
        """The probes ``--probes KIND:ARGS`` stands for (``context``: other flags, e.g.
        ``ports``, the fixed TCP ports of the scan). The default takes no arguments."""
        if args:
            from liveness.errors import InputError

            raise InputError(f"--probes: {cls.kind} takes no arguments (got {args!r})")
        return [cls()]

    def __init__(self) -> None:
        self._templates: dict[ScanContext, Template] = {}
        self._templates6: dict[ScanContext, Template] = {}
        self._dtype = struct_dtype({**IP_FIELDS, **self.fields}, self.frame_len)
        self._dtype6 = struct_dtype(shift_fields(self.fields), self.frame_len + IPV6_SHIFT)

    # -- which replies are ours -------------------------------------------------------------

    @property
    def reply_protocol(self) -> int:
        """The IP protocol of direct replies (the probe's own, but for ICMP answers)."""
        return self.protocol

    def reply_selector(self) -> int | None:
        """The selector of direct replies: their source port (TCP, UDP) or ICMP type; None when
        it differs per target (see :meth:`selector_from_tokens`) or there are none."""
        return self.target_port

    def quote_selector(self) -> int | None:
        """The selector of ICMP errors quoting this probe: the quoted destination port (TCP,
        UDP) or quoted ICMP type; None when per target."""
        return self.target_port

    def selector_from_tokens(self, tokens: NDArray[np.uint32]) -> NDArray[np.uint32]:
        """Per-target selectors, for a probe whose :meth:`reply_selector` is None."""
        raise NotImplementedError(f"{self.name} has a fixed selector")

    @property
    def protocol6(self) -> int:
        """The IPv6 next header of the probe (ICMPv6 for an ICMP probe)."""
        return PROTO_ICMPV6 if self.protocol == PROTO_ICMP else self.protocol

    @property
    def reply_protocol6(self) -> int:
        """The IPv6 next header of direct replies."""
        return PROTO_ICMPV6 if self.reply_protocol == PROTO_ICMP else self.reply_protocol

    def icmp6_type(self, icmp_type: int) -> int:
        """The ICMPv6 type standing for this probe's ICMPv4 ``icmp_type`` (ICMP probes
        override; TCP and UDP selectors are ports, the same in both families)."""
        return icmp_type

    def reply_selector6(self) -> int | None:
        """:meth:`reply_selector` for IPv6 replies."""
        selector = self.reply_selector()
        if selector is None or self.reply_protocol != PROTO_ICMP:
            return selector
        return self.icmp6_type(selector)

    def quote_selector6(self) -> int | None:
        """:meth:`quote_selector` for ICMPv6 errors quoting this probe."""
        selector = self.quote_selector()
        if selector is None or self.protocol != PROTO_ICMP:
            return selector
        return self.icmp6_type(selector)

    @property
    def dynamic(self) -> bool:
        """The selector is computed per target (a keyed port)."""
        return self.reply_selector() is None and self.quote_selector() is None

    # -- are they valid ---------------------------------------------------------------------

    @classmethod
    def reply_validator(cls) -> type[Probe]:
        """Probes answering to the same class here are validated together (one call per batch):
        by default their own class; a family sharing one validator names its base class."""
        return cls

    @classmethod
    def quote_validator(cls) -> type[Probe]:
        """As :meth:`reply_validator`, for the ICMP errors that quote the probe."""
        return cls

    def validate_reply(
        self,
        ctx: ScanContext,
        f: Fields,
        tokens: NDArray[np.uint32],
        payload: NDArray[np.uint8],
        payload_len: NDArray[np.int64],
    ) -> Verdict:
        """Check direct replies (``f`` holds :attr:`reply_fields`; ``payload`` the first bytes
        after the transport header, zero-padded, for UDP)."""
        raise NotImplementedError(f"{self.name} expects no direct replies")

    @abstractmethod
    def validate_quote(self, ctx: ScanContext, f: Fields, tokens: NDArray[np.uint32]) -> Verdict:
        """Check ICMP errors quoting this probe (``f`` holds :attr:`quote_fields`); the
        verdict's columns carry ``sport``/``dport`` from the quote."""

    @property
    @abstractmethod
    def frame_len(self) -> int:
        """Bytes per frame (Ethernet header included)."""

    @abstractmethod
    def l4_template(self) -> bytes:
        """The transport header and payload with every per-target field 0."""

    def l4_template6(self) -> bytes:
        """:meth:`l4_template` for IPv6 (ICMP probes put their ICMPv6 type first)."""
        l4 = self.l4_template()
        if self.protocol != PROTO_ICMP:
            return l4
        return bytes([self.icmp6_type(l4[0])]) + l4[1:]

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
        """Write the per-target transport fields and the transport checksum.

        ``dst_sum`` is the destination's share of the pseudo-header sum: 0 for ICMPv4, which
        has no pseudo-header, so every probe adds it to its checksum whatever the family.
        """

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
        pseudo_sum = dst_sum if self.protocol != PROTO_ICMP else np.uint32(0)
        self._patch(ctx, view, self.tokens(ctx, targets), pseudo_sum, tpl.l4_sum0, attempt)  # type: ignore[arg-type]
        return frames

    def template6(self, ctx: ScanContext) -> Template:
        """The per-scan IPv6 template (cached per context)."""
        tpl = self._templates6.get(ctx)
        if tpl is None:
            tpl = Template6(ctx, self.protocol6, self.l4_template6())
            self._templates6[ctx] = tpl
        return tpl

    def tokens6(self, ctx: ScanContext, targets: NDArray[np.uint8]) -> NDArray[np.uint32]:
        """The validation tokens of this probe for IPv6 ``targets`` (``(n, 16)`` uint8)."""
        assert ctx.src_ip6 is not None
        return ctx.validator.tokens6(ctx.src_ip6, targets, self.probe_id)

    def build6(
        self, ctx: ScanContext, targets: NDArray[np.uint8] | Targets6, attempt: int = 0
    ) -> NDArray[np.uint8]:
        """IPv6 frames for ``targets`` (``(n, 16)`` uint8, network byte order, or their
        :func:`prepare6` form, shared by every probe of a batch): ``(n, frame_len + 20)``
        uint8, ready to send."""
        if not self.ipv6:
            raise ValueError(f"{self.name} has no IPv6 form")
        if not 0 <= attempt < ctx.max_attempts:
            raise ValueError(f"attempt {attempt} outside 0..{ctx.max_attempts - 1}")
        prepared = targets if isinstance(targets, Targets6) else prepare6(ctx, targets)
        tpl = self.template6(ctx)
        frames = tpl.copies(len(prepared.addresses))
        if len(prepared.addresses) == 0:
            return frames
        frames[:, IP6_DST_OFF : IP6_DST_OFF + 16] = prepared.addresses
        view = field_view(frames, self._dtype6)
        tokens = ctx.validator.tokens6_from_chain(prepared.chain, self.probe_id)
        self._patch(ctx, view, tokens, prepared.dst_sum, tpl.l4_sum0, attempt)
        return frames

    def __repr__(self) -> str:
        return f"<probe {self.name} id={self.probe_id}>"


class UdpProbe(Probe):
    """A UDP probe to a fixed port whose payload can be checked as an application reply."""

    protocol = PROTO_UDP
    target_port: int
    reply_fields: ClassVar[tuple[str, ...]] = ("sport", "dport")
    quote_fields: ClassVar[tuple[str, ...]] = ("q_sport", "q_dport")

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

    def validate_reply(
        self,
        ctx: ScanContext,
        f: Fields,
        tokens: NDArray[np.uint32],
        payload: NDArray[np.uint8],
        payload_len: NDArray[np.int64],
    ) -> Verdict:
        """Any UDP answer from our port's token is kept (application-active); ``app_valid``
        says whether it speaks the protocol asked."""
        keep, attempt = port_attempt(ctx, f["dport"], tokens)
        return Verdict(
            keep,
            attempt,
            category("udp"),
            {
                "app_valid": self.app_valid(payload, payload_len, tokens),
                "sport": f["sport"],
                "dport": f["dport"],
            },
            failed(keep),
        )

    @classmethod
    def quote_validator(cls) -> type[Probe]:
        return UdpProbe  # a quoted UDP header is checked the same way whatever the payload

    def validate_quote(self, ctx: ScanContext, f: Fields, tokens: NDArray[np.uint32]) -> Verdict:
        keep, attempt = port_attempt(ctx, f["q_sport"], tokens)
        ports = {"sport": f["q_dport"], "dport": f["q_sport"]}
        return Verdict(keep, attempt, columns=ports, drops=failed(keep))


def failed(keep: NDArray[np.bool_]) -> dict[str, int]:
    """The drop count of a verdict whose only reason is a token mismatch."""
    return {"validation_failed": int((~keep).sum())}


def category(name: str) -> int:
    """The code of a reply category (its index in ``REPLY_CATEGORIES``)."""
    return REPLY_CATEGORIES.index(name)


UDP_PAYLOAD_OFF = L4_OFF + 8
