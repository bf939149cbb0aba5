"""Stream a VP's rounds as Observation rows (``OBSERVATION_SCHEMA``), merged into intervals.

A row is an interval of constant status of one block (target ``a.b.c.0/24`` with ``af`` 4, or
an IPv6 prefix such as ``2001:2:0:100::/56`` with ``af`` 6): the stream keeps each block's open
interval and writes it when the status changes, so a row leaves as soon as the round that ends
it completes, and a quiet block costs one row for the whole run. One stream takes the rounds of
both families (one monitor each), kept apart by ``RoundResult.af``. Closing writes the intervals
still open, ending at the last round's end. The file is parquet, one row group per round that
closed intervals (readable once closed).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow.parquet as pq
from numpy.typing import NDArray

from liveness.errors import RunError
from liveness.monitor.rounds import RoundResult
from liveness.reach.observation import OBSERVATION_SCHEMA
from liveness.reach.runs import observation_table

__all__ = ["ObservationStream"]


class _Family:
    """The open intervals of one family's blocks."""

    def __init__(self, result: RoundResult) -> None:
        self.blocks = result.block.copy()
        self.names = result.block_names()
        self.af = result.af
        self.status = np.full(result.block.size, -1, dtype=np.int8)
        self.t0 = np.zeros(result.block.size, dtype=np.int64)


class ObservationStream:
    """Observation intervals of one VP (either family, or both), written to parquet as rounds
    complete."""

    def __init__(self, path: str | os.PathLike[str], *, vp: str, round_s: float) -> None:
        self.path = Path(path)
        self.vp = vp
        self.round_s = round_s
        self.rows_written = 0
        self._families: dict[int, _Family] = {}
        self._end = 0
        try:
            self._writer: pq.ParquetWriter | None = pq.ParquetWriter(self.path, OBSERVATION_SCHEMA)
        except OSError as exc:
            raise RunError(f"{self.path}: cannot write ({exc})") from None

    def _emit(self, family: _Family, rows: NDArray[np.intp], t1: NDArray[np.int64] | int) -> None:
        if not rows.size or self._writer is None:
            return
        ends = np.broadcast_to(np.asarray(t1, dtype=np.int64), rows.shape)
        table = observation_table(
            np.zeros(rows.size, dtype=np.int64),
            [self.vp],
            np.arange(rows.size),
            family.names.take(rows),
            family.af,
            family.t0[rows],
            ends,
            family.status[rows],
        )
        try:
            self._writer.write_table(table)
        except OSError as exc:
            raise RunError(f"{self.path}: cannot write ({exc.strerror or exc})") from None
        self.rows_written += rows.size

    def write(self, result: RoundResult) -> int:
        """Take one round; write the intervals it ended; return how many rows were written."""
        family = self._families.get(result.af)
        if family is None:
            family = self._families[result.af] = _Family(result)
        elif family.blocks.shape != result.block.shape or np.any(family.blocks != result.block):
            raise RunError("observation stream: the set of blocks changed between rounds")
        start = int(result.round_start)
        changed = np.flatnonzero(family.status != result.status.astype(np.int8))
        before = self.rows_written
        self._emit(family, changed[family.status[changed] >= 0], start)
        family.status[changed] = result.status[changed].astype(np.int8)
        family.t0[changed] = start
        self._end = max(self._end, start + round(self.round_s))
        return self.rows_written - before

    def close(self) -> None:
        """Write the open intervals (to the end of the last round) and close the file."""
        if self._writer is None:
            return
        for family in self._families.values():
            self._emit(family, np.flatnonzero(family.status >= 0), self._end)
        writer, self._writer = self._writer, None
        try:
            writer.close()
        except OSError as exc:
            raise RunError(f"{self.path}: cannot write ({exc.strerror or exc})") from None

    def __enter__(self) -> ObservationStream:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
