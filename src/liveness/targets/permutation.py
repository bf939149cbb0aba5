"""A keyed pseudo-random bijection on ``[0, n)``: the order in which a scan visits its targets.

ZMap walks a cyclic multiplicative group; we use a keyed Feistel network instead, because it is
a bijection by construction and vectorises well. The domain is the smallest power of two
``2**bits >= n`` (``bits >= 2``), split into a high half ``H`` and a low half ``L`` (sizes may
differ by a bit). Rounds alternate ``H ^= F_r(L)`` and ``L ^= F_r(H)``; each is its own inverse,
so the network is a bijection on ``2**bits`` whatever the split. Each half has at most 16 bits,
so each keyed round function ``F_r`` is a lookup table (splitmix64 of the input and a round key),
at most 65536 entries: a round costs one gather and one xor on uint32 arrays. Values that land in
``[n, 2**bits)`` are encrypted again ("cycle walking") until they fall inside ``[0, n)``, which
keeps the map a bijection on ``[0, n)``; since ``2**bits < 2n`` that takes fewer than two passes
on average, and only the stragglers are iterated.

Beyond ``2**32`` (IPv6 spaces, up to ``n = 2**64``) the halves have up to 32 bits, too many for
tables: the round function is then computed, splitmix64 of (input + round key) cut to the other
half's width, on uint64 arrays. Spaces of at most ``2**32`` keep the tables, so their order is
unchanged (checkpoints depend on it).

Round keys come from (seed, n), so the order is deterministic for a seed and a space size.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from liveness.errors import InputError

__all__ = ["MAX_DOMAIN", "Permutation"]

MAX_DOMAIN = 1 << 64
TABLE_DOMAIN = 1 << 32  # up to here the round functions are tables (the order of old scans)
ROUNDS = 6
SEED_FLAG = "-e/--seed"

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(value: int) -> int:
    """One splitmix64 step on a Python int (used to derive round keys)."""
    z = (value + _GOLDEN) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _round(values: NDArray[np.uint64], key: int, out_bits: int) -> NDArray[np.uint64]:
    """The keyed round function: splitmix64 of (input + key), cut to ``out_bits``."""
    z = values + np.uint64((key + _GOLDEN) & _MASK64)
    z ^= z >> np.uint64(30)
    z *= _MIX1
    z ^= z >> np.uint64(27)
    z *= _MIX2
    z ^= z >> np.uint64(31)
    result: NDArray[np.uint64] = z & np.uint64((1 << out_bits) - 1)
    return result


def _round_table(key: int, in_bits: int, out_bits: int) -> NDArray[np.uint32]:
    """The round function for every input of ``in_bits`` bits, as a table."""
    return _round(np.arange(1 << in_bits, dtype=np.uint64), key, out_bits).astype(np.uint32)


class Permutation:
    """A keyed bijection ``[0, n) -> [0, n)``, applied to uint64 batches of positions."""

    def __init__(self, n: int, seed: int | None = None) -> None:
        """Key the permutation of ``[0, n)`` by ``seed`` (64 random bits from the OS when None)."""
        if not 1 <= n <= MAX_DOMAIN:
            raise InputError(f"cannot permute {n} targets: the space must hold 1 to 2**64")
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little")
        if not 0 <= seed <= _MASK64:
            raise InputError(f"{SEED_FLAG}: {seed} is not an integer in 0 .. 2**64-1")
        self.n = n
        self.seed = seed
        bits = max(2, (n - 1).bit_length())
        low_bits = bits // 2
        high_bits = bits - low_bits
        self._walks = (1 << bits) != n
        self._tabled = n <= TABLE_DOMAIN
        word = np.uint32 if self._tabled else np.uint64
        self._shift = word(low_bits)
        self._low_mask = word((1 << low_bits) - 1)
        self._bits = (high_bits, low_bits)  # output widths of even (H ^= F(L)), odd rounds
        state = _splitmix64(seed ^ _splitmix64(n & _MASK64))
        keys = []
        for _ in range(ROUNDS):
            state = _splitmix64(state)
            keys.append(state)
        self._keys = tuple(keys)
        self._tables: tuple[NDArray[np.uint32], ...] = ()
        if self._tabled:
            self._tables = tuple(
                _round_table(key, low_bits, high_bits)  # H ^= F(L)
                if round_index % 2 == 0
                else _round_table(key, high_bits, low_bits)  # L ^= F(H)
                for round_index, key in enumerate(keys)
            )

    def __call__(self, positions: ArrayLike) -> NDArray[np.uint64]:
        """The indices at ``positions`` (each in ``[0, n)``) of the permuted order."""
        return self._walk(self._checked(positions), range(ROUNDS))

    def inverse(self, indices: ArrayLike) -> NDArray[np.uint64]:
        """The positions at which ``indices`` come in the permuted order (undoes ``__call__``)."""
        return self._walk(self._checked(indices), range(ROUNDS - 1, -1, -1))

    def __repr__(self) -> str:
        return f"Permutation(n={self.n}, seed={self.seed})"

    def _checked(self, values: ArrayLike) -> NDArray[np.uint32] | NDArray[np.uint64]:
        array = np.asarray(values)
        if array.dtype != np.uint64 and array.size and int(array.min()) < 0:
            raise IndexError("negative position")
        if array.size and int(array.max()) >= self.n:
            raise IndexError(f"position {int(array.max())} outside [0, {self.n})")
        if self._tabled:
            return array.astype(np.uint32)
        return array.astype(np.uint64)

    def _walk(
        self, values: NDArray[np.uint32] | NDArray[np.uint64], order: range
    ) -> NDArray[np.uint64]:
        """Apply the rounds in ``order``, re-applying them to values outside ``[0, n)``."""
        out = self._rounds(values, order)
        if self._walks:
            pending = np.flatnonzero(out >= self.n)
            while pending.size:
                out[pending] = self._rounds(out[pending], order)
                pending = pending[out[pending] >= self.n]
        return out.astype(np.uint64)

    def _rounds(self, values: NDArray[Any], order: range) -> NDArray[Any]:
        high = values >> self._shift
        low = values & self._low_mask
        for round_index in order:
            even = round_index % 2 == 0
            if self._tabled:
                table = self._tables[round_index]
                if even:
                    high ^= table[low]
                else:
                    low ^= table[high]
            elif even:
                high ^= _round(low, self._keys[round_index], self._bits[0])
            else:
                low ^= _round(high, self._keys[round_index], self._bits[1])
        high <<= self._shift
        high |= low
        return high
