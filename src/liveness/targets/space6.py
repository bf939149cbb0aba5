"""The IPv6 part of a target space: prefix walks and a hitlist, and the index -> address map.

Representation (what :class:`Space6` holds):

- **walks**, one per step length ``b``: the sorted disjoint intervals of *prefix numbers*
  (``address >> (128 - b)``) whose ``/b`` prefix is a target; the probed address of prefix ``N``
  is ``N << (128 - b) | iid(N)`` (:mod:`liveness.targets.iid`). A plain CIDR block is a walk
  with ``b = 128`` (every address, no IID). Walks of one step from several targets are merged,
  so ``2001:db8::/33-64 2001:db8:8000::/33-64`` is ``2001:db8::/32-64``.
- **hits**: the ``-I`` addresses, sorted and unique, as two uint64 arrays (16 bytes each).

Indices ``0 .. size-1`` run over the walks' intervals in order (each an offset, a first prefix
and a step in a small table), then over the hits, so :meth:`Space6.lookup` is one
``searchsorted`` over the table plus vectorised 128-bit arithmetic, whatever the size (up to
``2**64`` targets).

The builder (:func:`build_space6`) applies the rules of :mod:`liveness.targets.space` to the IPv6
entries. Rules about address ranges are applied to the *generated* addresses of a walk: a prefix
is allowed, blocked or refused when the one address probed in it is (for a range covering whole
prefixes that is a range of prefix numbers; for a narrower range, at most two prefixes per range
are checked address by address), so the space stays exact: no blocked address is ever looked up,
and ``size`` counts exactly the addresses looked up.
"""

from __future__ import annotations

import bisect
import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.targets import bigintervals as big
from liveness.targets import wide
from liveness.targets.blocklist import blocklist6_entry, default_intervals6
from liveness.targets.cidr import CidrList, Net6List, format_block6
from liveness.targets.iid import IID_LOW, IidMode, interface_ids

__all__ = ["MAX_TARGETS", "Space6", "Walk", "build_space6", "generated"]

MAX_TARGETS = 1 << 64
WHOLE6: big.BigIntervals = ((0, 1 << 128),)
_ALLOWLIST_FLAG = "-w/--allowlist-file"
_IP_LIST_FLAG = "-I/--list-of-ips-file"


@dataclass(frozen=True)
class Walk:
    """The targets ``N << (128 - step) | iid(N)`` for the prefix numbers ``N`` in ``prefixes``."""

    step: int
    prefixes: big.BigIntervals

    @property
    def size(self) -> int:
        """Number of targets (one per prefix)."""
        return big.size(self.prefixes)

    def span(self) -> big.BigIntervals:
        """The addresses of the walked prefixes, as address intervals."""
        shift = 128 - self.step
        return tuple((a << shift, b << shift) for a, b in self.prefixes)


def generated(step: int, prefixes: Sequence[int], iid: IidMode, seed: int) -> list[int]:
    """The probed address of each ``/step`` prefix number (Python ints; vectorised inside)."""
    if not prefixes:
        return []
    shift = 128 - step
    hi, lo = wide.from_ints(n << shift for n in prefixes)
    steps = np.full(len(hi), step, dtype=np.uint8)
    iid_hi, iid_lo = interface_ids(iid, seed, steps, hi, lo)
    return wide.to_ints(hi | iid_hi, lo | iid_lo)


def walk_hits(
    step: int, prefixes: big.BigIntervals, addresses: big.BigIntervals, iid: IidMode, seed: int
) -> big.BigIntervals:
    """The prefix numbers among ``prefixes`` whose probed address lies in ``addresses``."""
    shift = 128 - step
    unit = 1 << shift
    relevant = big.intersect(addresses, Walk(step, prefixes).span())
    full: list[tuple[int, int]] = []
    partial: set[int] = set()
    for start, end in relevant:
        first, last = -(-start // unit), end // unit
        if first < last:
            full.append((first, last))
        if start % unit:
            partial.add(start // unit)
        if end % unit:
            partial.add(end // unit)
    candidates = sorted(partial)
    probes = generated(step, candidates, iid, seed)
    inside = wide.in_intervals(*wide.from_ints(probes), relevant).tolist()
    full.extend((n, n + 1) for n, hit in zip(candidates, inside, strict=True) if hit)
    return big.intersect(big.normalize(full), prefixes)


class Space6:
    """An ordered set of IPv6 targets: walks, then hits; indices ``0 .. size-1``."""

    def __init__(
        self,
        walks: Sequence[Walk] = (),
        hits_hi: wide.U64 | None = None,
        hits_lo: wide.U64 | None = None,
        iid: IidMode = IID_LOW,
        seed: int = 0,
    ) -> None:
        """Wrap walks (one per step, any order) and sorted unique hits (read-only here)."""
        kept = sorted((w for w in walks if w.prefixes), key=lambda w: w.step)
        if len({w.step for w in kept}) != len(kept):
            raise ValueError("one walk per step length")
        self.walks: tuple[Walk, ...] = tuple(kept)
        none = np.zeros(0, dtype=np.uint64)
        self.hits_hi = np.ascontiguousarray(hits_hi if hits_hi is not None else none, np.uint64)
        self.hits_lo = np.ascontiguousarray(hits_lo if hits_lo is not None else none, np.uint64)
        self.hits_hi.setflags(write=False)
        self.hits_lo.setflags(write=False)
        self.iid = iid
        self.seed = seed
        offsets: list[int] = []
        firsts: list[int] = []
        steps: list[int] = []
        total = 0
        for walk in self.walks:
            for a, b in walk.prefixes:
                offsets.append(total)
                firsts.append(a << (128 - walk.step))
                steps.append(walk.step)
                total += b - a
        self.walk_size = total
        self.size: int = total + len(self.hits_hi)
        if self.size > MAX_TARGETS:
            raise InputError(f"{self.size} IPv6 targets: more than a scan can hold (2**64)")
        self._offsets = np.array(offsets, dtype=np.uint64)
        self._first_hi, self._first_lo = wide.from_ints(firsts)
        self._steps = np.array(steps, dtype=np.uint8)

    def lookup(self, local: wide.U64) -> tuple[wide.U64, wide.U64]:
        """The addresses ``(hi, lo)`` at indices ``local`` (each in ``[0, size)``), vectorised."""
        local = np.asarray(local, dtype=np.uint64)
        hi = np.empty(local.shape, dtype=np.uint64)
        lo = np.empty(local.shape, dtype=np.uint64)
        if len(self.hits_hi):
            is_hit = local >= np.uint64(self.walk_size)
            hit = local[is_hit] - np.uint64(self.walk_size)
            hi[is_hit] = self.hits_hi[hit]
            lo[is_hit] = self.hits_lo[hit]
            if not self.walk_size:
                return hi, lo
            is_walk = ~is_hit
            hi[is_walk], lo[is_walk] = self._walk_lookup(local[is_walk])
            return hi, lo
        return self._walk_lookup(local)

    def _walk_lookup(self, local: wide.U64) -> tuple[wide.U64, wide.U64]:
        if len(self._offsets) == 1:
            row = np.zeros(local.shape, dtype=np.intp)
        else:
            row = np.searchsorted(self._offsets, local, side="right") - 1
        delta = local - self._offsets[row]
        if len(self.walks) == 1:
            return self._probe(self.walks[0].step, delta, row)
        hi = np.empty(local.shape, dtype=np.uint64)
        lo = np.empty(local.shape, dtype=np.uint64)
        steps = self._steps[row]
        for walk in self.walks:
            which = np.flatnonzero(steps == walk.step)
            hi[which], lo[which] = self._probe(walk.step, delta[which], row[which])
        return hi, lo

    def _probe(
        self, step: int, delta: wide.U64, row: NDArray[np.intp]
    ) -> tuple[wide.U64, wide.U64]:
        """The address probed ``delta`` prefixes past the first prefix of ``row`` (one step)."""
        shift = 128 - step
        if shift >= 64:
            high, low = delta << np.uint64(shift - 64), np.zeros_like(delta)
        elif shift:
            high, low = delta >> np.uint64(64 - shift), delta << np.uint64(shift)
        else:
            high, low = np.zeros_like(delta), delta
        high, low = wide.add(self._first_hi[row], self._first_lo[row], high, low)
        if self.iid.kind == "random":
            steps = np.full(1, step, dtype=np.uint8)
            iid_hi, iid_lo = interface_ids(self.iid, self.seed, steps, high, low)
            return high | iid_hi, low | iid_lo
        (iid,) = generated(step, [0], self.iid, self.seed)  # the constant IID of the step
        if iid >> 64:
            high |= np.uint64(iid >> 64)
        if iid & wide.MASK64:
            low |= np.uint64(iid & wide.MASK64)
        return high, low

    def describe(self) -> bytes:
        """A canonical description (walks, hits digest, IID mode and seed) for fingerprints."""
        lines = [f"liveness-ipv6-space 1\niid {self.iid}"]
        if self.iid.kind == "random":
            lines.append(f"seed {self.seed}")
        for walk in self.walks:
            rows = ",".join(f"{a:x}-{b:x}" for a, b in walk.prefixes)
            lines.append(f"walk /{walk.step} {rows}")
        if len(self.hits_hi):
            digest = hashlib.sha256(wide.to_bytes(self.hits_hi, self.hits_lo).tobytes())
            lines.append(f"hits {len(self.hits_hi)} sha256 {digest.hexdigest()}")
        return ("\n".join(lines) + "\n").encode()

    def cidrs(self, limit: int | None = None) -> list[str]:
        """The targets as text: walks as ``P/L-b`` blocks, CIDR blocks, single addresses."""
        out: list[str] = []
        for walk in self.walks:
            shift = 128 - walk.step
            for a, b in walk.prefixes:
                while a < b:
                    if limit is not None and len(out) >= limit:
                        return out
                    align = a & -a if a else 1 << walk.step
                    block = min(align, 1 << ((b - a).bit_length() - 1))
                    length = walk.step - (block.bit_length() - 1)
                    out.append(format_block6(a << shift, length, walk.step))
                    a += block
        count = len(self.hits_hi)
        if limit is not None:
            count = max(0, min(count, limit - len(out)))
        if count:
            out.extend(_hit_blocks(self.hits_hi[:count], self.hits_lo[:count]))
        return out if limit is None else out[:limit]

    def __repr__(self) -> str:
        shown = self.cidrs(limit=4)
        more = ", ..." if len(shown) > 3 else ""
        return f"Space6(size={self.size}, [{', '.join(shown[:3])}{more}], iid={self.iid})"


def _hit_blocks(hi: wide.U64, lo: wide.U64) -> list[str]:
    """Sorted unique addresses as text, consecutive runs merged into CIDR blocks."""
    step = np.ones(len(hi), dtype=np.bool_)
    if len(hi) > 1:
        step[1:] = ~((lo[1:] == lo[:-1] + np.uint64(1)) & ((hi[1:] == hi[:-1]) & (lo[1:] != 0)))
    starts = np.flatnonzero(step)
    ends = np.append(starts[1:], len(hi))
    out: list[str] = []
    texts = [str(ipaddress.IPv6Address(v)) for v in wide.to_ints(hi[starts], lo[starts])]
    for text, first, last in zip(texts, starts.tolist(), ends.tolist(), strict=True):
        if last - first == 1:
            out.append(text)
            continue
        start = int(ipaddress.IPv6Address(text))
        end = start + (last - first)
        while start < end:
            align = start & -start if start else 1 << 128
            block = min(align, 1 << ((end - start).bit_length() - 1))
            out.append(format_block6(start, 128 - (block.bit_length() - 1)))
            start += block
    return out


def _ranges(entries: Net6List, which: Sequence[int] | None = None) -> list[tuple[int, int]]:
    """The address range of each (plain) entry, as ``(start, end)`` Python ints."""
    starts = wide.to_ints(entries.hi, entries.lo)
    lengths = entries.length.tolist()
    rows = range(len(starts)) if which is None else which
    return [(starts[i], starts[i] + (1 << (128 - lengths[i]))) for i in rows]


def _inside(rows: Sequence[tuple[int, int]], within: big.BigIntervals) -> big.BigIntervals:
    """The union of those rows that lie entirely inside one interval of ``within``."""
    starts = [start for start, _ in within]

    def holds(row: tuple[int, int]) -> bool:
        i = bisect.bisect_right(starts, row[0]) - 1
        return i >= 0 and row[1] <= within[i][1]

    return big.normalize(r for r in rows if holds(r))


def _count(n: int) -> str:
    """A count of addresses for a message: ``2**80`` when a power of two."""
    return (
        f"2**{n.bit_length() - 1}" if n & (n - 1) == 0 else f"{n} (about 2**{n.bit_length() - 1})"
    )


@dataclass(frozen=True)
class _Target:
    """A positional IPv6 target: the walk ``network/length-step`` and where it came from.

    ``where`` prefixes errors: ``FILE:LINE: `` or ``flag ``.
    """

    text: str
    where: str
    network: int
    length: int
    step: int

    @property
    def prefixes(self) -> big.BigIntervals:
        first = self.network >> (128 - self.step)
        return ((first, first + (1 << (self.step - self.length))),)


def build_space6(
    cidrs: CidrList,
    allowlist: CidrList | None,
    blocklist: CidrList | None,
    ip_list: CidrList | None,
    default_blocklist: bool,
    iid: IidMode,
    seed: int,
) -> Space6:
    """The IPv6 targets of the flags, by the rules of :mod:`liveness.targets.space`."""
    allow_rows = _ranges(allowlist.v6) if allowlist is not None else []
    allowed = big.normalize(allow_rows) if allowlist is not None else WHOLE6
    user_blocked = big.normalize(_ranges(blocklist.v6)) if blocklist is not None else ()
    still_blocked: big.BigIntervals = ()
    if default_blocklist:
        still_blocked = big.subtract(
            default_intervals6(), _inside(allow_rows, default_intervals6())
        )
    refused = big.subtract(big.intersect(allowed, still_blocked), user_blocked)
    blocked = big.union(user_blocked, still_blocked)
    from_allowlist = cidrs.empty and ip_list is None  # the allowlist alone names the targets
    if from_allowlist:
        assert allowlist is not None
        targets = [
            _Target(
                allowlist.v6.block(i),
                allowlist.where(allowlist.origin6(i)),
                start,
                129 - (end - start).bit_length(),
                128,
            )
            for i, (start, end) in enumerate(allow_rows)
        ]
    else:
        targets = _positional(cidrs)
    for target in targets:
        iid.check_fits(target.step, target.text)
    wanted = big.subtract(allowed, user_blocked)
    by_step: dict[int, big.BigIntervals] = {}
    origins: dict[int, list[_Target]] = {}
    for target in targets:
        aimed = walk_hits(target.step, target.prefixes, wanted, iid, seed)
        if ip_list is None:
            _check_size(target, big.size(aimed), from_allowlist)
        if not from_allowlist and target.length > 0 and refused:
            _refuse(target, walk_hits(target.step, aimed, refused, iid, seed), iid, seed)
        if ip_list is None:
            kept = big.subtract(aimed, walk_hits(target.step, aimed, still_blocked, iid, seed))
            by_step[target.step] = big.union(by_step.get(target.step, ()), kept)
            origins.setdefault(target.step, []).append(target)
    if ip_list is not None:  # the targets are the -I addresses the other sources leave
        positional = None if cidrs.empty else targets
        return _hitlist_space(positional, allowlist, ip_list, allowed, blocked, refused, iid, seed)
    return Space6(_deduplicate(by_step, origins, iid, seed), iid=iid, seed=seed)


def _positional(cidrs: CidrList) -> list[_Target]:
    v6 = cidrs.v6
    starts = wide.to_ints(v6.hi, v6.lo)
    return [
        _Target(
            v6.block(i),
            cidrs.where(cidrs.origin6(i)),
            starts[i],
            int(v6.length[i]),
            int(v6.step[i]),
        )
        for i in range(len(v6))
    ]


def _check_size(target: _Target, count: int, from_allowlist: bool) -> None:
    """Refuse a target set of more than 2**64 addresses, suggesting the walk to use."""
    if count <= MAX_TARGETS:
        return
    walk = format_block6(target.network, target.length, 64)
    if from_allowlist:
        hint = (
            f"; name the targets on the command line, as a walk such as {walk}, and the "
            "allowlist restricts them"
        )
    else:
        hint = f"; to probe one address in every /64 of it, write {walk}"
    raise InputError(
        f"{target.where}{target.text} is {_count(count)} addresses, more than a scan can hold "
        f"(2**64){hint}"
    )


def _refuse(target: _Target, hits: big.BigIntervals, iid: IidMode, seed: int) -> None:
    """Raise InputError naming the default-blocklist entry the first refused prefix meets."""
    if not hits:
        return
    (address,) = generated(target.step, [hits[0][0]], iid, seed)
    entry = blocklist6_entry(address)
    assert entry is not None
    raise InputError(
        f"{target.where}{target.text} overlaps the default blocklist entry {entry.cidr} "
        f"({entry.name}); to scan there, pass an allowlist ({_ALLOWLIST_FLAG}) naming "
        f"{entry.cidr} or the part of it you mean"
    )


def _deduplicate(
    by_step: dict[int, big.BigIntervals],
    origins: dict[int, list[_Target]],
    iid: IidMode,
    seed: int,
) -> list[Walk]:
    """Walks of different steps without an address in common (the coarser gives way).

    With a low or fixed IID, the address a coarse walk probes in a prefix is the one a finer
    walk probes in the finer prefix holding it, so the coarse walk drops the prefixes whose
    address falls in the finer walk's span (exact). Random IIDs of different steps have no such
    relation: overlapping walks of different steps are refused then.
    """
    walks: list[Walk] = []
    for step in sorted(by_step, reverse=True):  # finest first
        prefixes = by_step[step]
        for finer in walks:
            if iid.kind == "random" and finer.step < 128:
                overlap = big.intersect(Walk(step, prefixes).span(), finer.span())
                if overlap:
                    a = _meeting(origins[step], overlap)
                    b = _meeting(origins[finer.step], overlap)
                    raise InputError(
                        f"{a.where}{a.text} and {b.text} overlap with different steps; with "
                        "--iid random they would probe unrelated addresses in the same prefixes "
                        "(give one step, or --iid low)"
                    )
            prefixes = big.subtract(prefixes, walk_hits(step, prefixes, finer.span(), iid, seed))
        walks.append(Walk(step, prefixes))
    return walks


def _meeting(targets: list[_Target], addresses: big.BigIntervals) -> _Target:
    """The first target whose span meets ``addresses``."""
    return next(t for t in targets if big.intersect(Walk(t.step, t.prefixes).span(), addresses))


def _hitlist_space(
    positional: list[_Target] | None,
    allowlist: CidrList | None,
    ip_list: CidrList,
    allowed: big.BigIntervals,
    blocked: big.BigIntervals,
    refused: big.BigIntervals,
    iid: IidMode,
    seed: int,
) -> Space6:
    """The ``-I`` addresses that the other sources and the blocklists leave (a subset of them).

    ``positional`` is None when no positional target was given (of either family).
    """
    hits = ip_list.v6
    if len(hits) == 0:
        return Space6(iid=iid, seed=seed)
    prefixes = np.flatnonzero(hits.length != 128)
    if len(prefixes):
        i = int(prefixes[0])
        raise InputError(
            f"{ip_list.where(ip_list.origin6(i))}{hits.block(i)}: an IPv6 entry of "
            f"{_IP_LIST_FLAG} is one address; give prefixes as targets on the command line"
        )
    hit_refused = wide.in_intervals(hits.hi, hits.lo, refused)
    if hit_refused.any():
        i = int(np.argmax(hit_refused))
        entry = blocklist6_entry(hits.network(i))
        assert entry is not None
        raise InputError(
            f"{ip_list.where(ip_list.origin6(i))}{hits.block(i)} overlaps the default blocklist "
            f"entry {entry.cidr} ({entry.name}); to scan there, pass an allowlist "
            f"({_ALLOWLIST_FLAG}) naming {entry.cidr} or the part of it you mean"
        )
    hi, lo = wide.sort_unique(hits.hi, hits.lo)
    keep = ~wide.in_intervals(hi, lo, blocked)
    if allowlist is not None:
        keep &= wide.in_intervals(hi, lo, allowed)
    if positional is not None:
        keep &= _in_positional(positional, hi, lo, iid, seed)
    if not keep.all():
        hi, lo = hi[keep], lo[keep]
    return Space6(hits_hi=hi, hits_lo=lo, iid=iid, seed=seed)


def _in_positional(
    targets: list[_Target], hi: wide.U64, lo: wide.U64, iid: IidMode, seed: int
) -> NDArray[np.bool_]:
    """Which addresses some positional target (CIDR block or walk) would probe."""
    plain = big.normalize(
        (t.network, t.network + (1 << (128 - t.length))) for t in targets if t.step == 128
    )
    member = wide.in_intervals(hi, lo, plain)
    for target in (t for t in targets if t.step < 128):
        span = ((target.network, target.network + (1 << (128 - target.length))),)
        inside = np.flatnonzero(wide.in_intervals(hi, lo, span) & ~member)
        mask_hi, mask_lo = wide.bit_masks(np.full(len(inside), 128 - target.step, dtype=np.uint8))
        p_hi, p_lo = hi[inside] & ~mask_hi, lo[inside] & ~mask_lo
        steps = np.full(len(inside), target.step, dtype=np.uint8)
        iid_hi, iid_lo = interface_ids(iid, seed, steps, p_hi, p_lo)
        member[inside] = ((hi[inside] & mask_hi) == iid_hi) & ((lo[inside] & mask_lo) == iid_lo)
    return member
