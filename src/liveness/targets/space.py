"""The target space: which addresses a scan may probe, and the index <-> address mapping over it.

Building it from the flags (ZMap-like, plus a safety rule):

1. **Targets.** Each source that is given restricts the targets: positional CIDRs, the allowlist
   (``-w``) and the list of IPs (``-I``); when several are given the targets are their
   intersection (positional CIDRs ∩ allowlist is ZMap's "scan these, but only where allowed").
   Giving none is an error: the whole Internet must be asked for explicitly, as ``0.0.0.0/0``.
2. **User blocklist** (``-b``): always subtracted.
3. **Default blocklist** (IANA special-purpose ranges, 224/4, 240/4): subtracted, except where an
   allowlist entry *names* blocked addresses, i.e. the entry lies entirely inside the default
   blocklist (``198.18.0.0/15`` or ``198.18.7.0/24``): then the default blocklist is lifted for
   exactly that entry. An allowlist entry reaching outside the blocklist (``0.0.0.0/0``,
   ``198.0.0.0/8``) lifts nothing: its special-purpose part is silently left out, as in ZMap.
4. **Refusal.** A positional CIDR or ``-I`` entry whose targeted part (after the allowlist and
   ``-b``) meets a default-blocklisted range that no allowlist entry names is an error naming
   the CIDR and the blocklist entry. The one exception is ``0.0.0.0/0`` itself, "the whole
   Internet", from which the special-purpose ranges are silently subtracted, as ZMap does.
5. An empty resulting space is an error.

The space is stored as sorted disjoint intervals with cumulative sizes, so the full IPv4 space
costs a few hundred bytes and mapping a batch of indices is one ``searchsorted``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from liveness.errors import InputError
from liveness.targets import intervals as iv
from liveness.targets.blocklist import default_blocklist, default_intervals
from liveness.targets.cidr import CidrList, parse_cidr_list, read_cidr_list

__all__ = ["ALLOWLIST_FLAG", "BLOCKLIST_FLAG", "IP_LIST_FLAG", "TargetSpace"]

ALLOWLIST_FLAG = "-w/--allowlist-file"
BLOCKLIST_FLAG = "-b/--blocklist-file"
IP_LIST_FLAG = "-I/--list-of-ips-file"
TARGET_ARG = "target"
WHOLE_INTERNET = (0, iv.ADDRESS_SPACE_END)


class TargetSpace:
    """An ordered set of IPv4 addresses, addressed by index ``0 .. size-1`` in address order."""

    def __init__(self, intervals: NDArray[np.uint64]) -> None:
        """Wrap a set of ``[start, end)`` rows (normalised here; need not be sorted)."""
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
        self.size: int = int(self._cum_ends[-1]) if len(rows) else 0

    @classmethod
    def from_options(
        cls,
        cidrs: Sequence[str] = (),
        allowlist: Sequence[str] | None = None,
        blocklist: Sequence[str] | None = None,
        ip_list: Sequence[str] | None = None,
        default_blocklist: bool = True,
    ) -> TargetSpace:
        """Build the space from the scan's flags (see the module docstring for the rules)."""

        def parse(texts: Sequence[str] | None, flag: str) -> CidrList | None:
            return parse_cidr_list(texts, flag) if texts is not None else None

        return cls.from_lists(
            parse_cidr_list(cidrs, TARGET_ARG),
            allowlist=parse(allowlist, ALLOWLIST_FLAG),
            blocklist=parse(blocklist, BLOCKLIST_FLAG),
            ip_list=parse(ip_list, IP_LIST_FLAG),
            default_blocklist=default_blocklist,
        )

    @classmethod
    def from_files(
        cls,
        cidrs: Sequence[str] = (),
        allowlist_file: str | os.PathLike[str] | None = None,
        blocklist_file: str | os.PathLike[str] | None = None,
        list_of_ips_file: str | os.PathLike[str] | None = None,
        default_blocklist: bool = True,
    ) -> TargetSpace:
        """Like :meth:`from_options`, reading the lists from ZMap-format files.

        Errors about a file's entry (a bad line, a refused address) name ``FILE:LINE``.
        """

        def read(path: str | os.PathLike[str] | None) -> CidrList | None:
            return read_cidr_list(path) if path is not None else None

        return cls.from_lists(
            parse_cidr_list(cidrs, TARGET_ARG),
            allowlist=read(allowlist_file),
            blocklist=read(blocklist_file),
            ip_list=read(list_of_ips_file),
            default_blocklist=default_blocklist,
        )

    @classmethod
    def from_lists(
        cls,
        cidrs: CidrList,
        allowlist: CidrList | None = None,
        blocklist: CidrList | None = None,
        ip_list: CidrList | None = None,
        default_blocklist: bool = True,
    ) -> TargetSpace:
        """Build the space from parsed lists: the rules of the module docstring."""
        if len(cidrs.rows) == 0 and allowlist is None and ip_list is None:
            raise InputError(
                "no targets: name them (use 0.0.0.0/0 explicitly for the whole Internet)"
            )
        whole = np.array([WHOLE_INTERNET], dtype=np.uint64)
        allowed = iv.normalize(allowlist.rows) if allowlist is not None else whole
        targets = allowed
        for given in (cidrs if len(cidrs.rows) else None, ip_list):
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

        space = cls(iv.subtract(targets, blocked))
        if space.size == 0:
            raise InputError(
                "no address left to scan: the targets are all excluded by the allowlist "
                f"({ALLOWLIST_FLAG}), the list of IPs ({IP_LIST_FLAG}) or the blocklists"
            )
        return space

    @property
    def intervals(self) -> NDArray[np.uint64]:
        """The space as a read-only ``(k, 2)`` uint64 array of sorted disjoint ``[start, end)``."""
        return self._intervals

    def addresses(self, indices: ArrayLike) -> NDArray[np.uint32]:
        """The addresses at ``indices`` (each in ``[0, size)``), vectorised."""
        idx = np.asarray(indices)
        if idx.dtype != np.uint64:
            if idx.size and int(idx.min()) < 0:
                raise IndexError("negative index into the target space")
            idx = idx.astype(np.uint64)
        if idx.size and int(idx.max()) >= self.size:
            raise IndexError(f"index {int(idx.max())} outside the target space of {self.size}")
        low32 = idx.astype(np.uint32)
        if len(self._starts) == 1:
            low32 += self._shift32[0]
        else:
            low32 += self._shift32[np.searchsorted(self._cum_ends, idx, side="right")]
        return low32

    def index_of(self, addrs: ArrayLike) -> NDArray[np.int64]:
        """The index of each address in the space, or -1 where it is not in the space."""
        address = np.asarray(addrs).astype(np.uint64)
        if self.size == 0:
            return np.full(address.shape, -1, dtype=np.int64)
        which = np.searchsorted(self._starts, address, side="right").astype(np.int64) - 1
        row = np.maximum(which, 0)
        inside = (which >= 0) & (address < self._ends[row])
        index = (self._offsets[row] + (address - self._starts[row])).astype(np.int64)
        return np.where(inside, index, np.int64(-1))

    def contains(self, addrs: ArrayLike) -> NDArray[np.bool_]:
        """Which addresses are in the space."""
        return iv.contains(self._intervals, np.asarray(addrs).astype(np.uint64))

    def cidrs(self) -> list[str]:
        """The minimal list of CIDR blocks covering exactly the space."""
        return iv.cidr_cover(self._intervals)

    def __repr__(self) -> str:
        blocks = iv.cidr_cover(self._intervals[:3])
        more = ", ..." if len(self._intervals) > 3 or len(blocks) > 3 else ""
        shown = ", ".join(blocks[:3])
        return f"TargetSpace(size={self.size}, intervals={len(self._intervals)}, [{shown}{more}])"


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
    origin = entries.origin(first)
    where = f"{origin}: " if entries.lines is not None else f"{origin} "
    raise InputError(
        f"{where}{entries.block(first)} overlaps the default blocklist entry {entry.cidr} "
        f"({entry.name}); to scan there, pass an allowlist ({ALLOWLIST_FLAG}) naming "
        f"{entry.cidr} or the part of it you mean"
    )
