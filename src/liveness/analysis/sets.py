"""Named address sets over a merged reduction: the vocabulary the analyses are written in.

:class:`ReplySets` answers "which addresses replied to these probes with these reply kinds"
by unions of the class bitmaps of a :class:`~liveness.analysis.partial.ReplyPartial`, and
provides the taxonomy's sets (network-alive, transport-active/alive, application-active/alive);
:meth:`ReplySets.app_responders` gives those of the TCP application layer (``--app-layer``).
The sets of an IPv6 partial hold address ids (:mod:`liveness.output.address_book6`); its
blocks are prefixes (``/48`` by default) where IPv4's are /24s (:meth:`ReplySets.blocks`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
from pyroaring import BitMap

from liveness.analysis.bitmaps import from_sorted, from_unsorted
from liveness.analysis.partial import ReplyPartial
from liveness.analysis.taxonomy import (
    ALL_PROBES,
    ERR_ROUTER,
    ERR_TARGET,
    FAMILIES,
    KIND_ECHO,
    KIND_RST,
    KIND_SYNACK,
    KIND_UDP_INVALID,
    KIND_UDP_VALID,
    N_PROBES,
    OTHER_PROBES,
    OTHER_UDP_PROBES,
    POSITIVE_KINDS,
    REPLY_KINDS,
    TCP_PORT_PROBES,
    UDP_PROBES,
    app_class_of,
    class_of,
    error_class_of,
)

__all__ = ["DEFAULT_PREFIX6", "ReplySets", "mask24", "union"]

#: The IPv6 prefix length the analyses count blocks of (IPv4's blocks are /24s).
DEFAULT_PREFIX6 = 48

#: Probe names by index; the last index stands for every probe outside the default set.
ALL_PROBES_AND_UNKNOWN: tuple[str, ...] = (*ALL_PROBES, OTHER_UDP_PROBES, OTHER_PROBES)
_PROBE_INDEX = {name: i for i, name in enumerate(ALL_PROBES_AND_UNKNOWN)}
#: ("r", (probe, kinds) pairs, first attempt only), ("e", error classes, None) or
#: ("a", application classes, None)
_CacheKey = tuple[str, tuple[Any, ...], bool | None]


def union(bitmaps: Iterable[BitMap]) -> BitMap:
    """The union of ``bitmaps`` as a new bitmap (empty for none); one multi-way union in C."""
    items = list(bitmaps)
    return BitMap.union(*items) if items else BitMap()


def _union_shared(bitmaps: Iterable[BitMap]) -> BitMap:
    """Like :func:`union`, but one bitmap is returned as it is (for read-only results)."""
    items = list(bitmaps)
    return items[0] if len(items) == 1 else union(items)


#: Sets larger than this are masked one /8 at a time, bounding the temporary arrays (64 MB).
_MASK_CHUNK = 1 << 24


def mask24(addresses: BitMap) -> BitMap:
    """The /24 blocks (address >> 8) holding at least one of ``addresses``."""
    if len(addresses) <= _MASK_CHUNK:
        parts: Iterable[BitMap] = [addresses]
    else:  # one /8 at a time (a generator: one part in memory at once)
        parts = (addresses & BitMap(range(i << 24, (i + 1) << 24)) for i in range(256))
    blocks = BitMap()
    for part in parts:
        values = np.frombuffer(part.to_array(), dtype=np.uint32) >> np.uint32(8)
        if values.size:  # sorted: keep the first of each run of equal blocks
            values = values[np.concatenate(([True], values[1:] != values[:-1]))]
        blocks |= from_sorted(values)  # the parts' blocks lie in distinct containers
    return blocks


class ReplySets:
    """Address sets of one merged reduction, built on demand from its class bitmaps.

    Unions are cached, least recently used first out, within ``cache_bytes`` (analyses ask for
    the same sets many times; at the study's scale one set can take hundreds of MB).
    """

    def __init__(
        self, partial: ReplyPartial, cache_bytes: int = 1 << 29, prefix6: int = DEFAULT_PREFIX6
    ) -> None:
        """``prefix6``: the length of the blocks of an IPv6 partial (1..64)."""
        self.partial = partial
        self.cache_bytes = cache_bytes
        self.prefix6 = prefix6
        self._cache: OrderedDict[_CacheKey, BitMap] = OrderedDict()
        self._cached_bytes = 0

    @property
    def block_name(self) -> str:
        """What a block is: ``/24`` (IPv4) or ``/48`` (IPv6, the prefix length asked for)."""
        return "/24" if self.partial.af == 4 else f"/{self.prefix6}"

    @cached_property
    def _prefix_of_id(self) -> npt.NDArray[np.uint32]:
        """IPv6: each address id's prefix index (prefixes numbered in address order)."""
        return self.partial.book6.prefixes(self.prefix6)[1]

    def blocks(self, addresses: BitMap) -> BitMap:
        """The blocks holding at least one of ``addresses``: /24s (``address >> 8``) for
        IPv4, for IPv6 the indices of their ``/prefix6`` prefixes."""
        if self.partial.af == 4:
            return mask24(addresses)
        ids = np.frombuffer(addresses.to_array(), dtype=np.uint32)
        return from_unsorted(self._prefix_of_id.take(ids), in_place=True)

    @staticmethod
    def probe_indices(probes: Iterable[str] | None) -> list[int]:
        """Indices of ``probes`` (None: every probe, unknown ones included)."""
        if probes is None:
            return list(range(N_PROBES))
        return [_PROBE_INDEX[p] for p in probes]

    def responders(
        self,
        probes: Iterable[str] | None = None,
        kinds: Iterable[int] = REPLY_KINDS,
        *,
        first_attempt_only: bool = False,
    ) -> BitMap:
        """Addresses that sent a reply of one of ``kinds`` to one of ``probes``.

        Results are cached (analyses ask for the same sets many times); do not modify them.
        """
        attempts = (False,) if first_attempt_only else (False, True)
        found = self.partial.responders
        wanted = sorted(set(kinds))
        # Only the (probe, kind) pairs that drew replies matter: the key names those, so that
        # questions with the same answer share one cached set.
        parts = tuple(
            (p, present)
            for p in self.probe_indices(probes)
            if (
                present := tuple(
                    k for k in wanted if any(class_of(p, k, r) in found for r in attempts)
                )
            )
        )
        return self._responders(parts, first_attempt_only)

    def _responders(
        self, parts: tuple[tuple[int, tuple[int, ...]], ...], first_attempt_only: bool
    ) -> BitMap:
        """:meth:`responders` for ``parts`` ((probe, kinds that drew replies) pairs)."""
        key: _CacheKey = ("r", parts, first_attempt_only)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        protocol = [(p, tuple(k for k in ks if k in POSITIVE_KINDS)) for p, ks in parts]
        errors = [(p, tuple(k for k in ks if k not in POSITIVE_KINDS)) for p, ks in parts]
        if any(ks for _, ks in protocol) and any(ks for _, ks in errors):
            # replies in the probe's protocol | ICMP errors: analyses ask for both on their own
            halves = (tuple(part for part in half if part[1]) for half in (protocol, errors))
            result = _union_shared(self._responders(h, first_attempt_only) for h in halves)
        elif len(parts) > 1:  # a union of per-probe sets, which are cached and deduplicated
            result = _union_shared(self._responders((part,), first_attempt_only) for part in parts)
        elif not parts:
            result = BitMap()
        elif len(parts[0][1]) > 1 and not first_attempt_only:
            # a union of per-kind sets, in which the two attempts' answers are already merged
            p, ks = parts[0]
            result = _union_shared(self._responders(((p, (k,)),), False) for k in ks)
        else:
            p, ks = parts[0]
            attempts = (False,) if first_attempt_only else (False, True)
            found = self.partial.responders
            result = _union_shared(
                found[c] for k in ks for r in attempts if (c := class_of(p, k, r)) in found
            )
        self._remember(key, result)
        return result

    def _cached_union(self, tag: str, classes: tuple[int, ...], found: Any) -> BitMap:
        """The union of ``found[c]`` over ``classes``, cached under ``(tag, classes)``."""
        key: _CacheKey = (tag, classes, None)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        result = _union_shared(found[c] for c in classes)
        self._remember(key, result)
        return result

    def _remember(self, key: _CacheKey, value: BitMap) -> None:
        size = value.__sizeof__()
        while self._cache and self._cached_bytes + size > self.cache_bytes:
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= dropped.__sizeof__()
        if size <= self.cache_bytes:
            self._cache[key] = value
            self._cached_bytes += size

    def error_targets(
        self, probes: Iterable[str] | None, error_kinds: Iterable[int], from_target: bool | None
    ) -> BitMap:
        """Probed addresses that drew an ICMP error of ``error_kinds`` (None: either source)."""
        sources = (False, True) if from_target is None else (from_target,)
        found = self.partial.error_targets
        classes = tuple(
            sorted(
                c
                for p in self.probe_indices(probes)
                for k in set(error_kinds)
                for s in sources
                if (c := error_class_of(p, k, s)) in found
            )
        )
        return self._cached_union("e", classes, found)

    def app_responders(self, probes: Iterable[str] | None, groups: Iterable[int]) -> BitMap:
        """Addresses whose answers to the TCP follow-up of ``probes`` (``--app-layer``) put
        them in one of the application ``groups`` (:data:`~.taxonomy.APP_GROUP_NAMES`)."""
        found = self.partial.app_responders
        classes = tuple(
            sorted(
                c
                for p in self.probe_indices(probes)
                for g in set(groups)
                if (c := app_class_of(p, g)) in found
            )
        )
        return self._cached_union("a", classes, found)

    def app_rows(self, probes: Iterable[str] | None, groups: Iterable[int]) -> int:
        """How many application rows of ``probes`` are of the kinds ``groups`` (the first
        four application groups; each row counts in one of them)."""
        rows = self.partial.app_rows
        return int(
            sum(rows[app_class_of(p, g)] for p in self.probe_indices(probes) for g in set(groups))
        )

    def error_rows(
        self, probes: Iterable[str] | None, error_kinds: Iterable[int], from_target: bool | None
    ) -> int:
        """How many ICMP error replies of ``error_kinds`` answered ``probes``."""
        sources = (False, True) if from_target is None else (from_target,)
        rows = self.partial.error_rows
        return int(
            sum(
                rows[error_class_of(p, k, s)]
                for p in self.probe_indices(probes)
                for k in error_kinds
                for s in sources
            )
        )

    # The taxonomy's sets.
    @cached_property
    def network_alive(self) -> BitMap:
        """Every address that sent any IP packet in reply (router error sources included)."""
        return self.responders()

    @cached_property
    def network_blocks(self) -> BitMap:
        """The blocks (/24s, or IPv6 prefixes) holding a network-alive address."""
        return self.blocks(self.network_alive)

    @cached_property
    def udp_active(self) -> BitMap:
        """Application-active for any UDP probe: any UDP payload in reply."""
        return self.responders(UDP_PROBES, [KIND_UDP_VALID, KIND_UDP_INVALID])

    def family_alive(self, family: str) -> BitMap:
        """Network-alive addresses found by the probes of ``family``."""
        return self.responders(FAMILIES[family])

    def synack(self, probe: str) -> BitMap:
        """Transport-alive on ``probe``'s port: SYN-ACK from it."""
        return self.responders([probe], [KIND_SYNACK])

    def rst(self, probe: str) -> BitMap:
        """Addresses that sent a TCP RST from ``probe``'s port."""
        return self.responders([probe], [KIND_RST])

    def port_active(self, probe: str) -> BitMap:
        """Transport-active on ``probe``'s port: SYN-ACK or RST from it."""
        return self.responders([probe], [KIND_SYNACK, KIND_RST])

    @cached_property
    def transport_active(self) -> BitMap:
        """SYN-ACK or RST from at least one of the five probed TCP ports."""
        return self.responders(TCP_PORT_PROBES, [KIND_SYNACK, KIND_RST])

    @cached_property
    def transport_alive(self) -> BitMap:
        """SYN-ACK from at least one of the five probed TCP ports."""
        return self.responders(TCP_PORT_PROBES, [KIND_SYNACK])

    def app_active(self, probe: str) -> BitMap:
        """Application-active for ``probe``: any UDP payload in reply."""
        return self.responders([probe], [KIND_UDP_VALID, KIND_UDP_INVALID])

    def app_alive(self, probe: str) -> BitMap:
        """Application-alive for ``probe``: a valid reply of its protocol."""
        return self.responders([probe], [KIND_UDP_VALID])

    def echo_alive(self) -> BitMap:
        """Addresses that sent an ICMP echo reply."""
        return self.responders(["icmp_echo"], [KIND_ECHO])

    def error_responders(self, probes: Iterable[str] | None = None) -> BitMap:
        """Addresses that sourced an ICMP error (targets themselves, or routers)."""
        return self.responders(probes, [ERR_TARGET, ERR_ROUTER])
