"""The scan loop's view of the target space: batches of targets in permuted, sharded order."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.targets.permutation import Permutation
from liveness.targets.shard import Shard
from liveness.targets.space import TargetBatch, TargetSpace

__all__ = ["iter_target_batches", "iter_target_lookups"]


def _positions(
    space: TargetSpace, perm: Permutation, shard: Shard, batch_size: int, start: int
) -> Iterator[tuple[int, NDArray[np.uint64]]]:
    """``(offset, indices)`` of the shard's targets, ``batch_size`` at a time, checked."""
    if perm.n != space.size or shard.n != space.size:
        raise ValueError(
            f"permutation over {perm.n} and shard over {shard.n} "
            f"do not match the target space of {space.size}"
        )
    if batch_size < 1:
        raise InputError(f"batch size {batch_size} must be at least 1")
    if not 0 <= start <= shard.count:
        raise InputError(f"resume offset {start} is outside the shard's {shard.count} targets")
    for offset in range(start, shard.count, batch_size):
        yield offset, perm(shard.positions(offset, offset + batch_size))


def iter_target_batches(
    space: TargetSpace,
    perm: Permutation,
    shard: Shard,
    batch_size: int,
    start: int = 0,
) -> Iterator[tuple[int, NDArray[np.uint32]]]:
    """Yield ``(offset, addresses)``: the shard's IPv4 targets, ``batch_size`` at a time.

    ``offset`` is the position within the shard of the batch's first address; a checkpoint that
    records the offset after the last finished batch resumes with ``start=offset``. For a space
    holding IPv6 targets use :func:`iter_target_lookups`.
    """
    for offset, indices in _positions(space, perm, shard, batch_size, start):
        yield offset, space.addresses(indices)


def iter_target_lookups(
    space: TargetSpace,
    perm: Permutation,
    shard: Shard,
    batch_size: int,
    start: int = 0,
) -> Iterator[tuple[int, TargetBatch]]:
    """Like :func:`iter_target_batches`, yielding :class:`TargetBatch` es of both families."""
    for offset, indices in _positions(space, perm, shard, batch_size, start):
        yield offset, space.lookup(indices)
