"""The per-round scheduler: Trinocular's adaptive probing of every block of one VP, vectorised.

A round is at most ``max_probes_per_round`` probe steps. In each step every block still
undecided (and within its hourly allowance, see :mod:`.ratelimit`) sends one probe to the next
address of its ever-responsive set E(b), the prober answers the whole batch, and the beliefs
are updated with Bayes (:mod:`.belief`). A block is up once B(U) > up_threshold, down once
B(U) < down_threshold, and unknown if neither happens within the round (or it has no probes
left). A decision must agree with the probe that reached it: a negative probe never ends a
round as up (nor a positive as down), even if the belief is still beyond the threshold, so a
surprise is always followed up within the same round; this is what lets an outage be found
within one round. Beliefs carry over from round to round, so a block that stays up costs one
probe per round.

Probe order: each block walks E(b) (sorted) along a pseudo-random affine cycle, index
``(offset + step * k) mod |E(b)|`` with a random offset and a random step coprime with |E(b)|
(seeded by ``params.seed`` and the VP name), the walk continuing across rounds: consecutive
probes go to scattered addresses and every address is probed once per |E(b)| probes. (A full
shuffle would cost a sort of every address; this costs two numbers per block.)

Sparse blocks (a_oper < ``sparse_availability``) get full-block scanning: a low belief is
not enough, they are down only once every address of E(b) failed, i.e. the run of negative
probes since the block's last positive covers whole sweeps of the cyclic walk (a multiple of
|E(b)|). One sweep is not always enough patience (20 addresses answering 15% of the time all
fail in a row 4% of the time), so the run must also be long enough that an up block with
availability a_oper produces it with probability below ``sparse_false_down``. Until then they
keep probing, within the round's and the hour's limits, and a round that ends with a low
belief but too short a run is unknown.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import ArrayLike, NDArray

from liveness.errors import InputError, RunError
from liveness.monitor.availability import AvailabilityTracker
from liveness.monitor.belief import update_belief
from liveness.monitor.census import Census, Census6, sorted_unique
from liveness.monitor.params import TrinocularParams
from liveness.monitor.prober import Prober
from liveness.monitor.ratelimit import ProbeBudget
from liveness.reach.trinocular import block_names as ipv4_block_names

__all__ = ["DOWN", "STATUS_NAMES", "UNKNOWN", "UP", "Monitor", "RoundResult", "block_labels"]

DOWN, UP, UNKNOWN = 0, 1, 2
STATUS_NAMES: tuple[str, ...] = ("down", "up", "unknown")
_BLOCK_MASK = np.uint32(0xFFFFFF00)

EverResponsive = Mapping[int, ArrayLike] | tuple[ArrayLike, ArrayLike]


@dataclass(frozen=True)
class RoundResult:
    """One round of one VP: a row per measurable block (numpy columns, blocks ascending)."""

    round_no: int
    round_start: int
    block: NDArray[np.uint32]
    status: NDArray[np.uint8]
    belief: NDArray[np.float64]
    n_pos: NDArray[np.uint8]
    n_neg: NDArray[np.uint8]
    probes: NDArray[np.uint8]
    a_short: NDArray[np.float64]
    a_oper: NDArray[np.float64]
    probe_bits: NDArray[np.uint16]
    """Outcome of the round's probe k in bit k (1 positive)."""
    af: int = 4
    """The blocks' family: 4 (``block`` holds /24 base addresses, uint32) or 6 (``block``
    holds the upper 64 bits of each /``prefix_len`` network, uint64)."""
    prefix_len: int = 24
    names: pa.Array[Any] | None = None
    """The blocks' CIDR text when the monitor keeps it (IPv6: formatted once, not per round)."""

    def block_names(self, rows: NDArray[np.intp] | None = None) -> pa.Array[Any]:
        """The blocks (all, or ``rows``) as CIDR text: ``198.18.0.0/24``, ``2001:2::/48``."""
        if self.names is not None:
            return self.names if rows is None else self.names.take(rows)
        blocks = self.block if rows is None else self.block[rows]
        return block_labels(blocks, self.af, self.prefix_len)

    def probe_log(self) -> NDArray[np.bytes_]:
        """The round's probes per block as text, in order: ``p`` positive, ``n`` negative."""
        width = 16
        steps = np.arange(width, dtype=np.uint16)
        positive = ((self.probe_bits[:, None] >> steps) & np.uint16(1)).astype(bool)
        letters = np.where(positive, np.uint8(ord("p")), np.uint8(ord("n")))
        letters[steps[None, :] >= self.probes[:, None]] = 0
        log: NDArray[np.bytes_] = np.ascontiguousarray(letters).view(f"S{width}").ravel()
        return log

    def status_counts(self) -> dict[str, int]:
        """Blocks per status name."""
        counts = np.bincount(self.status, minlength=3)
        return {name: int(counts[code]) for code, name in enumerate(STATUS_NAMES)}


def block_labels(blocks: NDArray[Any], af: int, prefix_len: int) -> pa.Array[Any]:
    """CIDR text of blocks: /24 base addresses (af 4, vectorised) or the upper 64 bits of
    IPv6 networks (af 6, RFC 5952 text, e.g. ``2001:2:0:100::/56``)."""
    if af == 4:
        return ipv4_block_names(np.asarray(blocks, dtype=np.uint32), prefix_len)
    # One string per block (never per probe); RFC 5952's zero compression is ipaddress'.
    names = [
        f"{ipaddress.IPv6Address(int(high) << 64)}/{prefix_len}"
        for high in np.asarray(blocks, dtype=np.uint64).tolist()
    ]
    return pa.array(names, pa.string())


def _pairs_from_input(
    blocks: NDArray[np.uint32], ever_responsive: EverResponsive
) -> tuple[NDArray[np.int64], NDArray[np.uint32]]:
    """(row into ``blocks``, address) for every ever-responsive address given."""
    if isinstance(ever_responsive, Mapping):
        lists = [np.asarray(ever_responsive.get(int(b), ()), dtype=np.uint32) for b in blocks]
        rows = np.repeat(np.arange(blocks.size, dtype=np.int64), [a.size for a in lists])
        addresses = np.concatenate(lists) if lists else np.empty(0, np.uint32)
        return rows, addresses.astype(np.uint32)
    indptr_like, members = ever_responsive
    indptr = np.asarray(indptr_like, dtype=np.int64)
    values = np.asarray(members)
    if indptr.shape != (blocks.size + 1,) or indptr[0] != 0 or indptr[-1] != values.size:
        raise InputError("ever_responsive: indptr must have len(blocks)+1 entries, 0..len(addrs)")
    if np.any(np.diff(indptr) < 0):
        raise InputError("ever_responsive: indptr must not decrease")
    rows = np.repeat(np.arange(blocks.size, dtype=np.int64), np.diff(indptr))
    if values.dtype == np.uint8:  # host octets
        return rows, blocks[rows] | values.astype(np.uint32)
    return rows, values.astype(np.uint32)


def _affine_walks(
    sizes: NDArray[np.int64], rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per block a random start and a random step coprime with |E(b)| (not ±1 when avoidable):
    ``(offset + step * k) mod |E(b)|`` for k = 0, 1, ... visits every address once per cycle."""
    size = np.maximum(sizes, 1)
    offset = rng.integers(0, size)
    wide = size >= 5
    stride = np.ones(size.size, dtype=np.int64)
    todo = np.flatnonzero(wide)
    for _ in range(64):
        if not todo.size:
            break
        guess = rng.integers(2, size[todo] - 1)
        good = np.gcd(guess, size[todo]) == 1
        stride[todo[good]] = guess[good]
        todo = todo[~good]
    return offset.astype(np.int64), stride


class Monitor:
    """Trinocular-style monitoring of a set of blocks of one family from one vantage point.

    ``blocks``: /24 base addresses; ``ever_responsive``: E(b), as a mapping from block base to
    its addresses, or CSR arrays ``(indptr, addresses)`` aligned with ``blocks`` (addresses
    full uint32 or uint8 host octets). ``availability``: initial A(E(b)) per block (e.g. from
    a census of several snapshots); default ``params.default_availability``. IPv6 blocks
    come from :meth:`from_census6`: the same rules, the prober then gets ``(n, 16)`` uint8
    addresses (network order) instead of uint32.
    """

    af: int = 4
    prefix_len: int = 24
    _members6: NDArray[np.uint8] | None = None
    _names: pa.Array[Any] | None = None

    def __init__(
        self,
        blocks: ArrayLike,
        ever_responsive: EverResponsive,
        *,
        vp: str,
        params: TrinocularParams | None = None,
        availability: ArrayLike | None = None,
    ) -> None:
        checked = params if params is not None else TrinocularParams()
        bases = np.asarray(blocks, dtype=np.uint32)
        if np.any(bases & np.uint32(0xFF)):
            raise InputError("blocks: every block must be a /24 base address (last octet 0)")
        if sorted_unique(bases).size != bases.size:
            raise InputError("blocks: a block is listed twice")
        rows, addresses = _pairs_from_input(bases, ever_responsive)
        if np.any((addresses & _BLOCK_MASK) != bases[rows]):
            raise InputError("ever_responsive: an address lies outside its block")
        order = np.argsort(bases, kind="stable")
        rank = np.empty(bases.size, dtype=np.int64)
        rank[order] = np.arange(bases.size)
        key = (rank[rows] << 8) | (addresses & np.uint32(0xFF)).astype(np.int64)
        if key.size > 1 and not bool(np.all(key[1:] > key[:-1])):
            key = sorted_unique(key)  # a census is sorted and unique already: no sort then
        sizes = np.bincount(key >> 8, minlength=bases.size).astype(np.int64)
        self._hosts = (key & 0xFF).astype(np.uint8)
        initial: ArrayLike | None = None
        if availability is not None:
            initial = np.broadcast_to(np.asarray(availability, dtype=np.float64), bases.shape)
            initial = np.asarray(initial)[order]
        self._setup(bases[order], sizes, vp=vp, params=checked, availability=initial)

    @classmethod
    def from_census(
        cls, census: Census, *, vp: str, params: TrinocularParams | None = None
    ) -> Monitor:
        """A monitor for every block of a census, starting from the census' availability."""
        return cls(
            census.blocks,
            (census.indptr, census.hosts),
            vp=vp,
            params=params,
            availability=census.availability,
        )

    @classmethod
    def from_census6(
        cls, census: Census6, *, vp: str, params: TrinocularParams | None = None
    ) -> Monitor:
        """A monitor for every IPv6 block of a census (its E(b) in address order), starting
        from the census' availability."""
        monitor = cls.__new__(cls)
        monitor.af, monitor.prefix_len = 6, census.prefix_len
        monitor._members6 = census.addresses
        monitor._setup(
            census.blocks, census.sizes, vp=vp, params=params, availability=census.availability
        )
        monitor._names = block_labels(monitor.blocks, 6, census.prefix_len)
        return monitor

    def _setup(
        self,
        sorted_blocks: NDArray[Any],
        sizes: NDArray[np.int64],
        *,
        vp: str,
        params: TrinocularParams | None,
        availability: ArrayLike | None,
    ) -> None:
        """The state shared by both families, from blocks in ascending order and |E(b)|."""
        self.vp = vp
        self.params = params = params if params is not None else TrinocularParams()
        indptr = np.zeros(sizes.size + 1, dtype=np.int64)
        np.cumsum(sizes, out=indptr[1:])
        rng = np.random.default_rng([params.seed, zlib.crc32(vp.encode())])
        offset, stride = _affine_walks(sizes, rng)
        measurable = sizes >= params.min_ever_responsive
        self.unmeasurable_blocks = sorted_blocks[~measurable]
        self.unmeasurable_sizes = sizes[~measurable]
        self.blocks = sorted_blocks[measurable]
        self._start = indptr[:-1][measurable]
        self._size = sizes[measurable].astype(np.int32)
        count = self.blocks.size
        self._offset = offset[measurable]
        self._stride = stride[measurable]
        self._cursor = np.zeros(count, dtype=np.int64)
        self._belief = np.full(count, params.initial_belief, dtype=np.float64)
        self._neg_streak = np.zeros(count, dtype=np.int32)
        if availability is None:
            initial = np.full(count, params.default_availability)
        else:
            given = np.broadcast_to(np.asarray(availability, dtype=np.float64), sizes.shape)
            initial = given[measurable]
        self._availability = AvailabilityTracker(initial, params)
        self._budget = ProbeBudget(count, params)

    def _addresses(self, rows: NDArray[np.intp], slot: NDArray[np.integer]) -> NDArray[Any]:
        """The address at ``slot`` of E(b) for the measurable blocks ``rows``."""
        if self._members6 is not None:
            members: NDArray[np.uint8] = self._members6[self._start[rows] + slot]
            return members
        hosts = self._hosts[self._start[rows] + slot]
        full: NDArray[np.uint32] = self.blocks[rows] | hosts
        return full

    @property
    def belief(self) -> NDArray[np.float64]:
        """Current B(U) per measurable block (a copy)."""
        return self._belief.copy()

    @property
    def ever_responsive_sizes(self) -> NDArray[np.int32]:
        """|E(b)| per measurable block."""
        return self._size.copy()

    def _sparse_run_needed(self, a_oper: NDArray[np.float64]) -> NDArray[np.int64]:
        """Negatives in a row a sparse block needs before down: whole sweeps of E(b), enough
        that an up block answering with probability a_oper rarely fails that often."""
        run = np.log(self.params.sparse_false_down) / np.log1p(-a_oper)
        sweeps = np.maximum(1, np.ceil(run / self._size)).astype(np.int64)
        needed: NDArray[np.int64] = sweeps * self._size
        return needed

    def run_round(self, prober: Prober, round_no: int, round_start: int) -> RoundResult:
        """Probe every measurable block adaptively for one round; return its decisions."""
        params = self.params
        count = self.blocks.size
        allowance = self._budget.allowance(round_start)
        a_short = self._availability.short
        a_oper = self._availability.operational
        sparse = a_oper < params.sparse_availability
        sweep_run = self._sparse_run_needed(a_oper)
        status = np.full(count, UNKNOWN, dtype=np.uint8)
        n_pos = np.zeros(count, dtype=np.uint8)
        n_neg = np.zeros(count, dtype=np.uint8)
        bits = np.zeros(count, dtype=np.uint16)
        active = np.flatnonzero(allowance > 0)
        for step in range(params.max_probes_per_round):
            if not active.size:
                break
            cursor = self._cursor[active]
            size = self._size[active]
            slot = (self._offset[active] + self._stride[active] * cursor) % size
            addresses = self._addresses(active, slot)
            cursor += 1
            self._cursor[active] = np.where(cursor >= size, 0, cursor)
            replies = np.asarray(prober.probe(addresses), dtype=bool)
            if replies.shape != active.shape:
                raise RunError(f"prober answered {replies.shape} for {active.size} probes")
            belief = update_belief(self._belief[active], replies, a_oper[active], params)
            self._belief[active] = belief
            n_pos[active] += replies
            n_neg[active] += ~replies
            bits[active] |= replies.astype(np.uint16) << np.uint16(step)
            streak = np.where(replies, 0, self._neg_streak[active] + 1)
            self._neg_streak[active] = streak
            up = replies & (belief > params.up_threshold)
            down = (
                ~replies
                & (belief < params.down_threshold)
                & (~sparse[active] | (streak >= sweep_run[active]))
            )
            status[active[up]] = UP
            status[active[down]] = DOWN
            spent = n_pos[active] + n_neg[active]
            active = active[~(up | down) & (spent < allowance[active])]
        probes = n_pos + n_neg
        learn = (status != DOWN) & (self._belief >= params.availability_learn_belief)
        self._availability.update(learn, n_pos, n_neg)
        self._budget.record(round_start, probes)
        return RoundResult(
            round_no=round_no,
            round_start=round_start,
            block=self.blocks,
            status=status,
            belief=self._belief.copy(),
            n_pos=n_pos,
            n_neg=n_neg,
            probes=probes,
            a_short=a_short,
            a_oper=a_oper,
            probe_bits=bits,
            af=self.af,
            prefix_len=self.prefix_len,
            names=self._names,
        )

    def probes_per_block_hour(self) -> float:
        """Measured mean probes per measurable block per hour over the rounds run so far."""
        return self._budget.probes_per_block_hour()

    @property
    def max_probes_in_window(self) -> int:
        """Measured: the most probes any block received within one rate window."""
        return self._budget.max_in_window

    @property
    def total_probes(self) -> int:
        return self._budget.total_probes
