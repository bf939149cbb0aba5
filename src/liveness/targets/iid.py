"""Interface identifiers for prefix walks: which address of each walked prefix is probed.

A walk ``P/L-b`` probes one address in every ``/b`` prefix of ``P/L`` (XMap's prefix walking):
the prefix's network address with its low ``128 - b`` bits, the interface identifier (IID),
chosen by ``--iid``:

- ``low`` (default): the value 1 (``2001:db8:0:7::1`` for the /64 ``2001:db8:0:7::/64``);
- ``random``: a keyed pseudo-random value per prefix, from the seed and the prefix alone (so
  retransmissions, ``--resume`` and any other space holding that prefix pick the same address);
- ``fixed:HEX``: that value, which must fit in the ``128 - b`` bits of every walk.

A plain CIDR is the walk ``P/L-128``: it has no IID bits, and the mode does not apply to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.targets.wide import U64, bit_masks

__all__ = ["IID_FLAG", "IID_LOW", "IID_RANDOM", "IidMode", "interface_ids", "parse_iid"]

IID_FLAG = "--iid"
_HEX = re.compile(r"(?:0[xX])?([0-9a-fA-F]{1,32})")
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_HIGH_WORD = np.uint64(0xD6E8FEB86659FD93)


@dataclass(frozen=True)
class IidMode:
    """How a walk picks the address in each prefix: ``kind`` is low, random or fixed."""

    kind: str
    value: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("low", "random", "fixed"):
            raise ValueError(f"unknown IID mode {self.kind!r}")
        if not 0 <= self.value < 1 << 128:
            raise ValueError("an IID is a value in 0 .. 2**128-1")

    def __str__(self) -> str:
        return f"fixed:{self.value:x}" if self.kind == "fixed" else self.kind

    def check_fits(self, step: int, target: str) -> None:
        """Raise InputError if a fixed IID does not fit in the ``128 - step`` bits of a walk."""
        if self.kind == "fixed" and step < 128 and self.value >> (128 - step):
            raise InputError(
                f"{IID_FLAG} {self}: the value needs {self.value.bit_length()} bits, but the "
                f"walk {target} leaves {128 - step} bits for the interface identifier"
            )


IID_LOW = IidMode("low", 1)
IID_RANDOM = IidMode("random", 0)


def parse_iid(text: str, where: str = IID_FLAG) -> IidMode:
    """Parse ``low``, ``random`` or ``fixed:HEX`` (up to 32 hex digits, optional ``0x``)."""
    value = text.strip()
    lowered = value.lower()
    if lowered == "low":
        return IID_LOW
    if lowered == "random":
        return IID_RANDOM
    if lowered.startswith("fixed:"):
        match = _HEX.fullmatch(value[len("fixed:") :])
        if match:
            return IidMode("fixed", int(match.group(1), 16))
        raise InputError(
            f"{where}: {value!r}: after 'fixed:' give the interface identifier as 1 to 32 hex "
            "digits (e.g. fixed:1 or fixed:0123456789abcdef)"
        )
    raise InputError(f"{where}: {value!r} is not an IID mode: use low, random or fixed:HEX")


def _mix(z: U64) -> U64:
    """splitmix64 on a uint64 array (wrapping arithmetic)."""
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    result: U64 = z ^ (z >> np.uint64(31))
    return result


def interface_ids(
    mode: IidMode, seed: int, steps: NDArray[np.uint8], prefix_hi: U64, prefix_lo: U64
) -> tuple[U64, U64]:
    """The IID of each prefix (network address ``(prefix_hi, prefix_lo)``, length ``steps``).

    Returns 128-bit ``(hi, lo)`` values below ``2**(128 - step)`` (0 where ``step == 128``),
    to be OR-ed into the prefix. Vectorised; random IIDs depend only on (seed, step, prefix).
    """
    bits = np.uint8(128) - np.asarray(steps, dtype=np.uint8)
    mask_hi, mask_lo = bit_masks(bits)
    if mode.kind == "random":
        key = _mix(np.uint64(seed & 0xFFFF_FFFF_FFFF_FFFF) ^ _mix(steps.astype(np.uint64)))
        h = _mix(_mix(prefix_hi ^ key) ^ prefix_lo)
        return _mix(h ^ _HIGH_WORD) & mask_hi, _mix(h) & mask_lo
    fixed_hi = np.uint64(mode.value >> 64)
    fixed_lo = np.uint64(mode.value & 0xFFFF_FFFF_FFFF_FFFF)
    return mask_hi & fixed_hi, mask_lo & fixed_lo
