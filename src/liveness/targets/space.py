"""The target space: which addresses a scan may probe, and the index <-> address mapping over it.

Building it from the flags (ZMap-like, plus a safety rule), for IPv4 and IPv6 alike:

1. **Targets.** Each source that is given restricts the targets: positional CIDRs (and IPv6
   prefix walks ``P/L-b``), the allowlist (``-w``) and the list of IPs (``-I``); when several
   are given the targets are their intersection (positional CIDRs ∩ allowlist is ZMap's "scan
   these, but only where allowed"), family by family: a source that is given but names no
   address of a family allows none of it (``-w`` holding only IPv4 ranges allows no IPv6).
   Giving none is an error: the whole Internet must be asked for explicitly, as ``0.0.0.0/0``
   (IPv4) or a walk of ``::/0`` such as ``::/0-32`` (IPv6).
2. **User blocklist** (``-b``): always subtracted.
3. **Default blocklist** (the IANA special-purpose registries; IPv4 with 224/4 and 240/4, IPv6
   with ff00::/8): subtracted, except where an allowlist entry *names* blocked addresses, i.e.
   the entry lies entirely inside the default blocklist (``198.18.0.0/15`` or
   ``198.18.7.0/24``; ``2001:2::/48`` or ``2001:2:0:5::/64``): then the default blocklist is
   lifted for exactly that entry. An allowlist entry reaching outside the blocklist
   (``0.0.0.0/0``, ``198.0.0.0/8``, ``2000::/3``) lifts nothing: its special-purpose part is
   silently left out, as in ZMap.
4. **Refusal.** A positional target or ``-I`` entry whose targeted part (after the allowlist and
   ``-b``) meets a default-blocklisted range that no allowlist entry names is an error naming
   the target and the blocklist entry. The one exception is "the whole Internet", ``0.0.0.0/0``
   and walks of ``::/0``, from which the special-purpose ranges are silently subtracted, as
   ZMap does.
5. An empty resulting space is an error; so is one of more than ``2**64`` targets (an IPv6
   block such as ``2001:db8::/48`` is ``2**80`` addresses: walk it, ``2001:db8::/48-64``).

IPv6 specifics. A walk probes one address per ``/b`` prefix, its interface identifier chosen by
``iid`` (:mod:`liveness.targets.iid`); rules 2-4 apply to the address probed, so a prefix is
dropped (or refused) when its probed address is blocked. Overlapping targets are merged so no
address is probed twice. ``-I`` IPv6 entries are single addresses (a hitlist; prefixes are
targets for the command line); walks are for the command line only. Walk syntax on IPv4 is
refused: an IPv4 target is scanned address by address.

Indices: the IPv4 targets are ``0 .. size4-1`` in address order, the IPv6 targets
``size4 .. size-1`` (see :mod:`liveness.targets.space6`). The IPv4 part is stored as sorted
disjoint intervals with cumulative sizes, so the full IPv4 space costs a few hundred bytes and
mapping a batch of indices is one ``searchsorted``; the IPv6 part likewise costs a table of
intervals (plus 16 bytes per hitlist address).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from liveness.errors import InputError
from liveness.targets import intervals as iv
from liveness.targets import wide
from liveness.targets.blocklist import default_blocklist, default_intervals
from liveness.targets.cidr import CidrList, parse_cidr_list, read_cidr_list
from liveness.targets.iid import IID_LOW, IidMode
from liveness.targets.space6 import MAX_TARGETS, Space6, build_space6

__all__ = ["ALLOWLIST_FLAG", "BLOCKLIST_FLAG", "IP_LIST_FLAG", "TargetBatch", "TargetSpace"]

ALLOWLIST_FLAG = "-w/--allowlist-file"
BLOCKLIST_FLAG = "-b/--blocklist-file"
IP_LIST_FLAG = "-I/--list-of-ips-file"
TARGET_ARG = "target"
WHOLE_INTERNET = (0, iv.ADDRESS_SPACE_END)


@dataclass(frozen=True)
class TargetBatch:
    """The targets at a batch of indices, both families, as the frame builders want them.

    ``is6[i]`` says which family row ``i`` is; ``v4`` holds IPv4 addresses (uint32, host
    order; 0 on IPv6 rows), ``v6`` IPv6 addresses (``(n, 16)`` uint8, network byte order,
    C-contiguous; zeros on IPv4 rows).
    """

    is6: NDArray[np.bool_]
    v4: NDArray[np.uint32]
    v6: NDArray[np.uint8]

    def __len__(self) -> int:
        return len(self.is6)


class TargetSpace:
    """An ordered set of IPv4 and IPv6 targets, addressed by index ``0 .. size-1``.

    IPv4 addresses come first, in address order (``0 .. size4-1``), then the IPv6 targets.
    """

    def __init__(self, intervals: NDArray[np.uint64], v6: Space6 | None = None) -> None:
        """Wrap a set of IPv4 ``[start, end)`` rows (normalised here; need not be sorted) and
        the IPv6 part."""
        rows = iv.normalize(intervals)
        if len(rows) and int(rows[-1, 1]) > iv.ADDRESS_SPACE_END:
            raise ValueError("interval end beyond the IPv4 space")
        rows.setflags(write=False)
        self._intervals = rows
        self._starts = np.ascontiguousarray(rows[:, 0])
        self._ends = np.ascontiguousarray(rows[:, 1])
        sizes = self._ends - self._starts
        self._cum_ends = np.cumsum(sizes, dtype=np.uint64)
        self._offsets = self._cum_ends - sizes
        # address = index + (start - offset) of its interval, computed modulo 2**32 in uint32.
        self._shift32 = (self._starts - self._offsets).astype(np.uint32)
        self._v6 = v6 if v6 is not None else Space6()
        self.size4: int = int(self._cum_ends[-1]) if len(rows) else 0
        self.size6: int = self._v6.size
        self.size: int = self.size4 + self.size6
        if self.size > MAX_TARGETS:
            raise InputError(
                f"the target space holds {self.size} addresses ({self.size4} IPv4, "
                f"{self.size6} IPv6): more than a scan can hold (2**64)"
            )

    @property
    def has_ipv6(self) -> bool:
        """Whether any target is IPv6."""
        return self.size6 > 0

    @property
    def v6(self) -> Space6:
        """The IPv6 part (walks and hits)."""
        return self._v6

    @classmethod
    def from_options(
        cls,
        cidrs: Sequence[str] = (),
        allowlist: Sequence[str] | None = None,
        blocklist: Sequence[str] | None = None,
        ip_list: Sequence[str] | None = None,
        default_blocklist: bool = True,
        *,
        iid: IidMode = IID_LOW,
        seed: int = 0,
    ) -> TargetSpace:
        """Build the space from the scan's flags (see the module docstring for the rules).

        ``iid`` and ``seed`` choose the address probed in each prefix of an IPv6 walk.
        """

        def parse(texts: Sequence[str] | None, flag: str) -> CidrList | None:
            return parse_cidr_list(texts, flag) if texts is not None else None

        return cls.from_lists(
            parse_cidr_list(cidrs, TARGET_ARG, walks=True),
            allowlist=parse(allowlist, ALLOWLIST_FLAG),
            blocklist=parse(blocklist, BLOCKLIST_FLAG),
            ip_list=parse(ip_list, IP_LIST_FLAG),
            default_blocklist=default_blocklist,
            iid=iid,
            seed=seed,
        )

    @classmethod
    def from_files(
        cls,
        cidrs: Sequence[str] = (),
        allowlist_file: str | os.PathLike[str] | None = None,
        blocklist_file: str | os.PathLike[str] | None = None,
        list_of_ips_file: str | os.PathLike[str] | None = None,
        default_blocklist: bool = True,
        *,
        iid: IidMode = IID_LOW,
        seed: int = 0,
    ) -> TargetSpace:
        """Like :meth:`from_options`, reading the lists from ZMap-format files.

        Errors about a file's entry (a bad line, a refused address) name ``FILE:LINE``.
        """

        def read(path: str | os.PathLike[str] | None) -> CidrList | None:
            return read_cidr_list(path) if path is not None else None

        return cls.from_lists(
            parse_cidr_list(cidrs, TARGET_ARG, walks=True),
            allowlist=read(allowlist_file),
            blocklist=read(blocklist_file),
            ip_list=read(list_of_ips_file),
            default_blocklist=default_blocklist,
            iid=iid,
            seed=seed,
        )

    @classmethod
    def from_lists(
        cls,
        cidrs: CidrList,
        allowlist: CidrList | None = None,
        blocklist: CidrList | None = None,
        ip_list: CidrList | None = None,
        default_blocklist: bool = True,
        *,
        iid: IidMode = IID_LOW,
        seed: int = 0,
    ) -> TargetSpace:
        """Build the space from parsed lists: the rules of the module docstring."""
        if cidrs.empty and allowlist is None and ip_list is None:
            raise InputError(
                "no targets: name them (use 0.0.0.0/0 explicitly for the whole IPv4 Internet, "
                "a walk such as ::/0-32 for IPv6)"
            )
        whole = np.array([WHOLE_INTERNET], dtype=np.uint64)
        allowed = iv.normalize(allowlist.rows) if allowlist is not None else whole
        targets = allowed
        for given in (None if cidrs.empty else cidrs, ip_list):
            if given is not None:
                targets = iv.intersect(targets, iv.normalize(given.rows))
        user_blocked = iv.normalize(blocklist.rows) if blocklist is not None else iv.empty()

        blocked = user_blocked
        if default_blocklist:
            still_blocked = default_intervals()
            if allowlist is not None:
                named = _rows_inside(allowlist.rows, still_blocked)
                still_blocked = iv.subtract(still_blocked, named)
            # What the user aims at that the default blocklist would silently drop.
            refused = iv.subtract(iv.intersect(allowed, still_blocked), user_blocked)
            _refuse_blocked(cidrs, refused, skip_whole=True)
            if ip_list is not None:
                _refuse_blocked(ip_list, refused, skip_whole=False)
            blocked = iv.union(blocked, still_blocked)

        v6 = build_space6(cidrs, allowlist, blocklist, ip_list, default_blocklist, iid, seed)
        space = cls(iv.subtract(targets, blocked), v6)
        if space.size == 0:
            raise InputError(
                "no address left to scan: the targets are all excluded by the allowlist "
                f"({ALLOWLIST_FLAG}), the list of IPs ({IP_LIST_FLAG}) or the blocklists"
            )
        return space

    @property
    def intervals(self) -> NDArray[np.uint64]:
        """The IPv4 part as a read-only ``(k, 2)`` uint64 array of sorted disjoint
        ``[start, end)``."""
        return self._intervals

    def _indices(self, indices: ArrayLike) -> NDArray[np.uint64]:
        """``indices`` as uint64, checked to lie in ``[0, size)``."""
        idx = np.asarray(indices)
        if idx.dtype != np.uint64:
            if idx.size and int(idx.min()) < 0:
                raise IndexError("negative index into the target space")
            idx = idx.astype(np.uint64)
        if idx.size and int(idx.max()) >= self.size:
            raise IndexError(f"index {int(idx.max())} outside the target space of {self.size}")
        return idx

    def addresses(self, indices: ArrayLike) -> NDArray[np.uint32]:
        """The IPv4 addresses at ``indices`` (each in ``[0, size4)``), vectorised.

        An IPv6 index (``size4 <= i < size``) is a ValueError: use :meth:`lookup`.
        """
        idx = self._indices(indices)
        if self.size6 and idx.size and int(idx.max()) >= self.size4:
            raise ValueError(
                f"index {int(idx.max())} is an IPv6 target (IPv4 holds 0 .. {self.size4 - 1}); "
                "use lookup() for a space with IPv6 targets"
            )
        return self._addresses4(idx)

    def _addresses4(self, idx: NDArray[np.uint64]) -> NDArray[np.uint32]:
        low32 = idx.astype(np.uint32)
        if len(self._starts) == 1:
            low32 += self._shift32[0]
        else:
            low32 += self._shift32[np.searchsorted(self._cum_ends, idx, side="right")]
        return low32

    def lookup(self, indices: ArrayLike) -> TargetBatch:
        """The targets at ``indices`` (each in ``[0, size)``), both families, vectorised."""
        idx = self._indices(indices)
        count = len(idx)
        if not self.size6:
            v6 = np.zeros((count, 16), dtype=np.uint8)
            return TargetBatch(np.zeros(count, dtype=np.bool_), self._addresses4(idx), v6)
        if not self.size4:
            v6 = wide.to_bytes(*self._v6.lookup(idx))
            return TargetBatch(np.ones(count, dtype=np.bool_), np.zeros(count, np.uint32), v6)
        v6 = np.zeros((count, 16), dtype=np.uint8)
        is6 = idx >= np.uint64(self.size4)
        v4 = np.zeros(count, dtype=np.uint32)
        if self.size4:
            v4[~is6] = self._addresses4(idx[~is6])
        hi, lo = self._v6.lookup(idx[is6] - np.uint64(self.size4))
        v6[is6] = wide.to_bytes(hi, lo)
        return TargetBatch(is6, v4, v6)

    def fingerprint(self) -> bytes:
        """A canonical description of the whole space (both families, walks, IID mode and seed),
        to be hashed into a scan's resume identity.

        For a space without IPv6 targets it is the IPv4 intervals as little-endian uint64
        (what resume identities hashed before IPv6), so earlier checkpoints still resume. The
        IPv6 description that follows otherwise starts with bytes no IPv4 interval array holds.
        """
        data = np.ascontiguousarray(self._intervals, dtype="<u8").tobytes()
        if not self.size6:
            return data
        return data + b"\xff" * 8 + self._v6.describe()

    def index_of(self, addrs: ArrayLike) -> NDArray[np.int64]:
        """The index of each IPv4 address (uint32) in the space, or -1 where it is not in it."""
        address = np.asarray(addrs).astype(np.uint64)
        if self.size == 0:
            return np.full(address.shape, -1, dtype=np.int64)
        which = np.searchsorted(self._starts, address, side="right").astype(np.int64) - 1
        row = np.maximum(which, 0)
        inside = (which >= 0) & (address < self._ends[row])
        index = (self._offsets[row] + (address - self._starts[row])).astype(np.int64)
        return np.where(inside, index, np.int64(-1))

    def contains(self, addrs: ArrayLike) -> NDArray[np.bool_]:
        """Which IPv4 addresses (uint32) are in the space."""
        return iv.contains(self._intervals, np.asarray(addrs).astype(np.uint64))

    def cidrs(self) -> list[str]:
        """The space as text: the minimal CIDR blocks covering the IPv4 part, then the IPv6
        part (walks as ``P/L-b`` blocks, CIDR blocks, hitlist addresses)."""
        return iv.cidr_cover(self._intervals) + self._v6.cidrs()

    def __repr__(self) -> str:
        blocks = iv.cidr_cover(self._intervals[:3])
        more = ", ..." if len(self._intervals) > 3 or len(blocks) > 3 else ""
        shown = ", ".join(blocks[:3])
        text = (
            f"TargetSpace(size={self.size}, ipv4={self.size4} in {len(self._intervals)} "
            f"intervals [{shown}{more}], ipv6={self.size6}"
        )
        if self.size6:
            blocks6 = self._v6.cidrs(limit=4)
            more6 = ", ..." if len(blocks6) > 3 else ""
            text += f" [{', '.join(blocks6[:3])}{more6}], iid={self._v6.iid}"
        return text + ")"


def _rows_inside(rows: NDArray[np.uint64], within: iv.Intervals) -> iv.Intervals:
    """The union of those rows that lie entirely inside the set ``within``."""
    if len(rows) == 0 or len(within) == 0:
        return iv.empty()
    which = np.searchsorted(within[:, 0], rows[:, 0], side="right").astype(np.int64) - 1
    row = np.maximum(which, 0)
    inside = (which >= 0) & (within[row, 1] >= rows[:, 1])
    return iv.normalize(rows[inside])


def _refuse_blocked(entries: CidrList, refused: iv.Intervals, *, skip_whole: bool) -> None:
    """Raise InputError for the first entry meeting a refused (default-blocklisted) range."""
    rows = entries.rows
    hits = iv.overlapping_rows(rows, refused)
    if skip_whole:
        hits &= ~((rows[:, 0] == WHOLE_INTERNET[0]) & (rows[:, 1] == WHOLE_INTERNET[1]))
    if not hits.any():
        return
    first = int(np.flatnonzero(hits)[0])
    meet = iv.intersect(iv.normalize(rows[first : first + 1]), refused)
    entry = next(
        e
        for e in default_blocklist()
        if iv.overlapping_rows(np.array([[e.start, e.end]], dtype=np.uint64), meet)[0]
    )
    where = entries.where(entries.origin(first))
    raise InputError(
        f"{where}{entries.block(first)} overlaps the default blocklist entry {entry.cidr} "
        f"({entry.name}); to scan there, pass an allowlist ({ALLOWLIST_FLAG}) naming "
        f"{entry.cidr} or the part of it you mean"
    )
