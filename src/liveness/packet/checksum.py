"""One's-complement Internet checksums (RFC 1071), for single buffers and for batches of rows.

Frames are built from a template whose checksum is known; only a few 16-bit words change per
frame, so :func:`finish` turns "template sum + changed words" into the final checksum without
touching the rest of the frame (an incremental update, RFC 1624 style).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "address_sum16",
    "checksum_bytes",
    "checksum_rows",
    "finish",
    "partial_sum",
    "word_sum32",
]


def partial_sum(data: bytes) -> int:
    """The unfolded one's-complement sum of ``data`` as big-endian 16-bit words (odd: pad 0)."""
    if len(data) % 2:
        data = data + b"\x00"
    return int(np.frombuffer(data, dtype=">u2").sum(dtype=np.uint64))


def checksum_bytes(data: bytes) -> int:
    """The Internet checksum of one buffer."""
    total = partial_sum(data)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def word_sum32(values: NDArray[np.uint32]) -> NDArray[np.uint32]:
    """The sum of the two 16-bit halves of each uint32 (its share of a checksum)."""
    return (values >> np.uint32(16)) + (values & np.uint32(0xFFFF))


def address_sum16(addresses: NDArray[np.uint8]) -> NDArray[np.uint32]:
    """Each 16-byte address's share of a checksum, folded below 2**17 (``(n, 16)`` uint8 rows).

    The one's-complement sum does not depend on byte order (RFC 1071), so the words are summed
    as native little-endian 32-bit columns, folded to 16 bits and byte-swapped once: four
    column additions instead of a reduction over eight byte-swapped words per row.
    """
    words = np.ascontiguousarray(addresses, dtype=np.uint8).view("<u4")
    total = words[:, 0].astype(np.uint64) + words[:, 1] + words[:, 2] + words[:, 3]
    folded = (total & np.uint64(0xFFFFFFFF)) + (total >> np.uint64(32))
    folded = (folded & np.uint64(0xFFFF)) + (folded >> np.uint64(16))
    folded = (folded & np.uint64(0xFFFF)) + (folded >> np.uint64(16))
    folded = (folded & np.uint64(0xFFFF)) + (folded >> np.uint64(16))
    swapped = ((folded & np.uint64(0xFF)) << np.uint64(8)) | (folded >> np.uint64(8))
    result: NDArray[np.uint32] = swapped.astype(np.uint32)
    return result


def finish(total: NDArray[np.uint32], *, udp: bool = False) -> NDArray[np.uint16]:
    """Fold unfolded sums (each < 2**31) to 16 bits and complement them.

    With ``udp`` a computed 0 is sent as 0xFFFF, since 0 means "no checksum" in UDP.
    """
    folded = (total & np.uint32(0xFFFF)) + (total >> np.uint32(16))
    folded = (folded & np.uint32(0xFFFF)) + (folded >> np.uint32(16))
    result = (~folded & np.uint32(0xFFFF)).astype(np.uint16)
    if udp:
        result[result == 0] = 0xFFFF
    return result


def checksum_rows(rows: NDArray[np.uint8]) -> NDArray[np.uint16]:
    """The Internet checksum of every row of a 2-D uint8 array (odd widths padded with 0)."""
    n, width = rows.shape
    if width % 2:
        padded = np.zeros((n, width + 1), dtype=np.uint8)
        padded[:, :width] = rows
        rows = padded
    words = np.ascontiguousarray(rows).view(">u2").astype(np.uint32)
    return finish(words.sum(axis=1, dtype=np.uint32))
