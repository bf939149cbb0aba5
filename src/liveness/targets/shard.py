"""Splitting a scan across machines: ``--shards N --shard i``.

Shard ``i`` of ``N`` owns the positions ``p`` of the permuted order with ``p % N == i``
(interleaved, as ZMap's shards interleave its cyclic walk). So shards are disjoint, together
cover every position exactly once, differ in size by at most one, and if every shard stops
halfway the union scanned is still a uniform sample: the first half of one permutation.
Positions are uint64 and ``n`` may be up to ``2**64`` (IPv6 walks): ``p = offset * N + i``
never exceeds ``n - 1``, so nothing overflows.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from liveness.errors import InputError

__all__ = ["Shard"]

SHARDS_FLAG = "--shards"
SHARD_FLAG = "--shard"


class Shard:
    """The positions of ``[0, n)`` owned by shard ``shard`` of ``shards``."""

    def __init__(self, n: int, shards: int = 1, shard: int = 0) -> None:
        """Check the flags; ``n`` is the number of positions (the target space's size)."""
        if shards < 1:
            raise InputError(f"{SHARDS_FLAG}: {shards} must be at least 1")
        if not 0 <= shard < shards:
            raise InputError(
                f"{SHARD_FLAG}: {shard} must be in 0 .. {shards - 1} (--shards {shards})"
            )
        if n < 0:
            raise ValueError(f"negative space size {n}")
        self.n = n
        self.shards = shards
        self.shard = shard
        self.count: int = max(0, (n - shard + shards - 1) // shards)

    def positions(self, start: int, stop: int) -> NDArray[np.uint64]:
        """The shard's ``start``-th to ``(stop-1)``-th positions (clipped to its ``count``)."""
        start = max(0, start)
        stop = min(stop, self.count)
        if stop <= start:
            return np.empty(0, dtype=np.uint64)
        # arange from 0, then shifted: numpy's arange cannot start beyond 2**63.
        offsets = np.arange(stop - start, dtype=np.uint64) + np.uint64(start)
        if self.shards == 1:
            return offsets
        return offsets * np.uint64(self.shards) + np.uint64(self.shard)

    def __repr__(self) -> str:
        return f"Shard(n={self.n}, shards={self.shards}, shard={self.shard}, count={self.count})"
