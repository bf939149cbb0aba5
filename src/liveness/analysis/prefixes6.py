"""Where the IPv6 addresses found are: alive addresses per prefix (/32 and /48 by default).

IPv4's picture of a scan is the Hilbert map of its /24s. The IPv6 space is too sparse for a
map, so its picture is how alive addresses spread over prefixes: how many prefixes of each
length hold any, how many hold 1, 2-3, 4-7, ... (powers of two), and the prefixes holding the
most. A hitlist scan shows here whether its finds cluster in a few networks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

import numpy as np

from liveness.analysis.sets import ReplySets

__all__ = ["PICTURE_LENGTHS", "TOP_PREFIXES", "prefix_picture"]

#: The prefix lengths of the picture.
PICTURE_LENGTHS: tuple[int, ...] = (32, 48)
#: How many of the prefixes holding the most alive addresses are named.
TOP_PREFIXES = 10


def _bin_label(low: int) -> str:
    return str(low) if low == 1 else f"{low}-{2 * low - 1}"


def _prefix_text(value: int, length: int) -> str:
    return str(ipaddress.IPv6Network(((value << (128 - length)), length)))


def prefix_picture(sets: ReplySets, lengths: Sequence[int] = PICTURE_LENGTHS) -> dict[str, Any]:
    """Per prefix length: prefixes holding an alive address, a histogram of alive addresses
    per prefix (power-of-two bins), and the :data:`TOP_PREFIXES` fullest prefixes."""
    book = sets.partial.book6
    ids = np.frombuffer(sets.network_alive.to_array(), dtype=np.uint32)
    high = book.hi.take(ids)
    picture: dict[str, Any] = {}
    for length in lengths:
        values, counts = np.unique(high >> np.uint64(64 - length), return_counts=True)
        bins = np.zeros(0, dtype=np.int64)
        if counts.size:
            bins = np.bincount(np.log2(counts).astype(np.int64))
        top = np.argsort(-counts, kind="stable")[:TOP_PREFIXES]
        picture[f"/{length}"] = {
            "prefixes": int(values.size),
            "alive_per_prefix": {
                _bin_label(1 << b): int(n) for b, n in enumerate(bins.tolist()) if n
            },
            "top": [
                {"prefix": _prefix_text(int(values[i]), length), "alive": int(counts[i])}
                for i in top.tolist()
            ],
        }
    return picture
