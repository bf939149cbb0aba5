"""The highest liveness layer reached in each /24 of the scanned range, and its Hilbert layout.

The scanned range is the smallest CIDR block covering every probed address. It is cut into at
most ``MAX_CELLS`` cells (one /24 each when the range is a /8 or smaller; larger cells
otherwise) and each cell gets the highest layer of :data:`~.taxonomy.LAYERS` reached by any
address in it. The summary keeps the cells as a string of digits (one per cell, address order);
:func:`hilbert_grid` lays them out on a Hilbert curve so that nearby addresses stay nearby.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np
import numpy.typing as npt

from liveness.analysis.sets import ReplySets, mask24
from liveness.analysis.taxonomy import KIND_UDP_VALID, LAYERS, UDP_PROBES

__all__ = [
    "MAX_CELLS",
    "address_cells",
    "address_map",
    "address_map_of",
    "hilbert_grid",
    "hilbert_xy",
]

MAX_CELLS = 1 << 16


def _covering_prefix(low: int, high: int) -> int:
    """The prefix length of the smallest CIDR block holding ``low`` and ``high`` (at most 24)."""
    return min(24, 32 - (low ^ high).bit_length())


def address_cells(sets: ReplySets) -> tuple[dict[str, Any], npt.NDArray[np.uint8] | None]:
    """The scanned range's geometry and the highest layer per cell of the addresses in ``sets``.

    Of disjoint address slices (with the same scanned range) the cells combine by maximum.
    """
    partial = sets.partial
    if partial.target_max < 0:
        return {"prefix": None, "cell_prefix_len": 24, "layers": list(LAYERS)}, None
    prefix_len = _covering_prefix(partial.target_min, partial.target_max)
    base = partial.target_min >> (32 - prefix_len) << (32 - prefix_len)
    cell_bits = min(24 - prefix_len, 16)
    cell_prefix_len = prefix_len + cell_bits
    shift = np.uint32(32 - cell_prefix_len - 8)  # from a /24 block number to a cell number
    layer_blocks = [
        sets.network_blocks,
        mask24(sets.transport_active | sets.udp_active),
        mask24(sets.transport_alive | sets.udp_active),
        mask24(sets.responders(UDP_PROBES, [KIND_UDP_VALID])),
    ]
    cells = np.zeros(1 << cell_bits, dtype=np.uint8)
    base_cell = base >> (32 - cell_prefix_len)
    for level, members in enumerate(layer_blocks, start=1):
        blocks = np.frombuffer(members.to_array(), dtype=np.uint32)
        index = (blocks >> shift).astype(np.int64) - base_cell
        index = index[(index >= 0) & (index < cells.size)]
        cells[index] = level
    geometry = {
        "prefix": f"{ipaddress.IPv4Address(base)}/{prefix_len}",
        "cell_prefix_len": cell_prefix_len,
        "layers": list(LAYERS),
    }
    return geometry, cells


def address_map_of(geometry: dict[str, Any], cells: npt.NDArray[np.uint8] | None) -> dict[str, Any]:
    """The summary's ``address_map`` from :func:`address_cells`' geometry and cells."""
    if cells is None:
        return {**geometry, "cells": ""}
    counts = np.bincount(cells, minlength=len(LAYERS))
    return {
        **geometry,
        "cells_by_layer": {name: int(n) for name, n in zip(LAYERS, counts, strict=True)},
        "cells": "".join(map(str, cells.tolist())),
    }


def address_map(sets: ReplySets) -> dict[str, Any]:
    """Per-cell highest layer over the scanned range (see the module docstring)."""
    return address_map_of(*address_cells(sets))


def hilbert_xy(order: int, d: npt.NDArray[np.int64]) -> tuple[np.ndarray, np.ndarray]:
    """Positions on a Hilbert curve of side ``2**order`` (vectorised classic d -> (x, y))."""
    x = np.zeros_like(d)
    y = np.zeros_like(d)
    t = d.copy()
    s = 1
    while s < (1 << order):
        rx = 1 & (t // 2)
        ry = 1 & (t ^ rx)
        flip = (ry == 0) & (rx == 1)
        x = np.where(flip, s - 1 - x, x)
        y = np.where(flip, s - 1 - y, y)
        swap = ry == 0
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        x = x + s * rx
        y = y + s * ry
        t //= 4
        s *= 2
    return x, y


def hilbert_grid(cells: str) -> npt.NDArray[np.int8]:
    """Lay the cell string out on a Hilbert curve: a 2-D array of layers (-1 outside).

    With an odd number of cell bits the range is two Hilbert squares side by side.
    """
    values = np.frombuffer(cells.encode(), dtype=np.uint8).astype(np.int8) - ord("0")
    bits = max(int(values.size).bit_length() - 1, 0)
    order = bits // 2
    side = 1 << order
    squares = 1 << (bits - 2 * order)  # 1 or 2
    grid = np.full((side, side * squares), -1, dtype=np.int8)
    d = np.arange(side * side, dtype=np.int64)
    x, y = hilbert_xy(order, d)
    for square in range(squares):
        part = values[square * side * side : (square + 1) * side * side]
        grid[y[: part.size], x[: part.size] + square * side] = part
    return grid
