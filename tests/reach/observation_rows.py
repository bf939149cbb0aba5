"""Observation tables from short rows, for the reach tests."""

from __future__ import annotations

import pyarrow as pa

from liveness.reach.observation import OBSERVATION_SCHEMA

Row = tuple[str, str, int, int, int, str]
"""(vp, target, af, t0, t1, status)."""


def observation_table(rows: list[Row]) -> pa.Table:
    """An :data:`OBSERVATION_SCHEMA` table of ``rows`` (strings dictionary-encoded)."""
    vp, target, af, t0, t1, status = (list(c) for c in zip(*rows, strict=True))
    return pa.table(
        {
            "vp": pa.array(vp).dictionary_encode(),
            "target": pa.array(target).dictionary_encode(),
            "af": pa.array(af, pa.uint8()),
            "t0": pa.array(t0, pa.int64()),
            "t1": pa.array(t1, pa.int64()),
            "status": pa.array(status).dictionary_encode(),
        },
        schema=OBSERVATION_SCHEMA,
    )
