"""DNSmon's view of root query loss, cleaned of islands and peninsulas.

RIPE DNSmon reports query loss per root letter and address family over all Atlas probes. Probes
that are islands (reach no letter) or peninsulas (reach some letters only) in a window add loss
that says more about the probe than about the root. ``dnsmon_loss`` gives the loss three ways:
all probes; without island probe-windows; without island and peninsula probe-windows
(unmeasurable windows are kept: they say nothing either way).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.reach.atlas_islands import (
    ISLAND,
    PENINSULA,
    AtlasParams,
    classify_windows,
    root_targets,
)
from liveness.reach.intervals import dictionary_codes

__all__ = ["DNSMON_SCHEMA", "VIEWS", "dnsmon_loss", "query_seconds"]

VIEWS: tuple[str, ...] = ("all", "no_islands", "no_islands_peninsulas")

DNSMON_SCHEMA = pa.schema(
    [
        pa.field("target", pa.string(), nullable=False),
        pa.field("af", pa.uint8(), nullable=False),
        *(
            field
            for view in VIEWS
            for field in (
                pa.field(f"queries_{view}", pa.int64(), nullable=False),
                pa.field(f"lost_{view}", pa.int64(), nullable=False),
                pa.field(f"loss_{view}", pa.float64(), nullable=True),
            )
        ),
    ],
    metadata={"liveness.schema": "dnsmon/1"},
)
"""Per root letter and af, for each view: queries, lost queries, loss = lost / queries."""


def query_seconds(column: pa.ChunkedArray[Any]) -> NDArray[np.int64]:
    """Query times as integer seconds since the epoch (int, float or timestamp columns)."""
    if pa.types.is_timestamp(column.type):
        column = pc.cast(column, pa.timestamp("s", tz=column.type.tz), safe=False).cast(pa.int64())
    elif pa.types.is_floating(column.type):
        column = pc.floor(column).cast(pa.int64())
    elif not pa.types.is_integer(column.type):
        raise InputError(
            f"queries: column ts has type {column.type}, expected seconds or timestamp"
        )
    return np.asarray(column.to_numpy(), dtype=np.int64)


def dnsmon_loss(queries: pa.Table, params: AtlasParams | None = None) -> pa.Table:
    """Loss per root letter and af: all probes, without islands, without islands and peninsulas.

    ``queries`` has one row per query: ``vp`` (probe), ``target`` (letter), ``af``, ``ts``
    (seconds or timestamp), ``ok`` (answered). Probe windows are classified from the same
    queries (``atlas_islands.classify_windows``).
    """
    params = params or AtlasParams()
    missing = {"vp", "target", "af", "ts", "ok"} - set(queries.column_names)
    if missing:
        raise InputError(f"queries lack column(s): {', '.join(sorted(missing))}")
    if params.roots_only and queries.num_rows:
        codes, names = dictionary_codes(queries.column("target"))
        queries = queries.filter(pa.array(root_targets(names)[codes]))
    if queries.num_rows == 0:
        return DNSMON_SCHEMA.empty_table()
    vp, _ = dictionary_codes(queries.column("vp"))
    target, target_names = dictionary_codes(queries.column("target"))
    af = queries.column("af").to_numpy().astype(np.uint8)
    ok_column: Any = pc.fill_null(queries.column("ok"), pa.scalar(False))
    ok = np.asarray(ok_column.to_numpy(zero_copy_only=False), dtype=bool)
    window = np.floor_divide(query_seconds(queries.column("ts")), params.window)
    vp64, target64 = vp.astype(np.int64), target.astype(np.int64)
    kind = classify_windows(vp64, af, target64, window, ok, params.min_letters).row_kind
    keep_by_view = {
        "all": np.ones(len(vp), bool),
        "no_islands": kind != ISLAND,
        "no_islands_peninsulas": (kind != ISLAND) & (kind != PENINSULA),
    }
    cell = target64 * 256 + af
    cells, inverse = np.unique(cell, return_inverse=True)
    columns: list[pa.Array[Any]] = [
        target_names.take(cells // 256),
        pa.array((cells % 256).astype(np.uint8)),
    ]
    for view in VIEWS:
        keep = keep_by_view[view]
        sent = np.bincount(inverse, weights=keep, minlength=len(cells)).astype(np.int64)
        lost = np.bincount(inverse, weights=keep & ~ok, minlength=len(cells)).astype(np.int64)
        loss = np.where(sent > 0, lost / np.maximum(sent, 1), np.nan)
        columns += [pa.array(sent), pa.array(lost), pa.array(loss, from_pandas=True)]
    table = pa.Table.from_arrays(columns, schema=DNSMON_SCHEMA)
    return table.sort_by([("af", "ascending"), ("target", "ascending")])
