"""Stream rounds to a Trinocular-format FSDB file, appending and flushing after every round.

The columns are those :mod:`liveness.reach.trinocular` reads (``COLUMNS``): block as eight hex
digits (``c0a80100``), round number and start, a_short, a_oper, status (0 down, 1 up,
2 unknown), belief, n_pos, n_neg, the round's probe log (``p``/``n`` per probe, ``-`` when
none) and rtt_us (``-``: the prober interface reports no RTT). ``write_trinocular`` there
writes a whole file at once; a monitor needs an open file that grows by one round at a time
and can be read while it runs, hence this writer.

The Trinocular format names IPv4 /24s only; IPv6 rounds go to a file of their own with the
same columns, ``block`` holding the prefix as text (``2001:2:0:100::/56``), which ``liveness
reach`` does not read (the monitor's Observation file carries both families).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from numpy.typing import NDArray

from liveness.errors import RunError
from liveness.monitor.rounds import RoundResult
from liveness.reach.trinocular import COLUMNS

__all__ = ["FsdbStream", "hex_blocks"]

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_WRITE_OPTIONS = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")


def hex_blocks(blocks: NDArray[np.uint32]) -> pa.Array[Any]:
    """Eight lower-case hex digits per /24 base address (``c0a80100``), vectorised."""
    shifts = np.arange(28, -4, -4, dtype=np.uint32)
    digits = np.ascontiguousarray(_HEX_DIGITS[(blocks[:, None] >> shifts) & np.uint32(0xF)])
    offsets = np.arange(0, 8 * blocks.size + 1, 8, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(),
        blocks.size,
        [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(digits.tobytes())],
    )


def _rounded(values: NDArray[np.float64]) -> pa.Array[Any]:
    return pa.array(np.round(values, 6), type=pa.float64())


class FsdbStream:
    """An FSDB file for one VP, one block a row, growing by one round per :meth:`write`.

    ``changes_only``: write a block's row only when its status differs from its previous
    row, and on close the last round's remaining rows, which mark where the run ends (the
    reader treats both forms alike; files shrink to the cost of changes).
    """

    def __init__(self, path: str | os.PathLike[str], *, changes_only: bool = False) -> None:
        self.path = Path(path)
        self.changes_only = changes_only
        self.rows_written = 0
        self._last: NDArray[np.uint8] | None = None
        self._pending: tuple[RoundResult, NDArray[np.bool_] | None] | None = None
        try:
            self._file: IO[bytes] = open(self.path, "wb")  # noqa: SIM115 (closed in close())
        except OSError as exc:
            raise RunError(f"{self.path}: cannot write ({exc.strerror})") from None
        self._append(("#fsdb -F t " + " ".join(COLUMNS) + "\n").encode())

    def write(self, result: RoundResult) -> int:
        """Append one round's rows and flush; return how many rows were written."""
        keep: NDArray[np.bool_] | None = None
        if self.changes_only:
            previous = self._last
            self._last = result.status.copy()
            if previous is not None and previous.shape == result.status.shape:
                keep = result.status != previous
            self._pending = (result, keep)
        return self._write_rows(result, keep)

    def _write_rows(self, result: RoundResult, keep: NDArray[np.bool_] | None) -> int:
        if keep is None:
            keep = np.ones(result.block.size, dtype=bool)
        block = result.block[keep]
        count = block.size
        log = result.probe_log()[keep]
        log_text = pa.array(np.where(log == b"", b"-", log), type=pa.binary()).cast(pa.string())
        table = pa.table(
            {
                "block": hex_blocks(block)
                if result.af == 4
                else result.block_names(np.flatnonzero(keep)),
                "round_no": pa.array(np.full(count, result.round_no, dtype=np.int64)),
                "round_start_epoch": pa.array(np.full(count, result.round_start, dtype=np.int64)),
                "a_short": _rounded(result.a_short[keep]),
                "a_oper": _rounded(result.a_oper[keep]),
                "status": pa.array(result.status[keep]),
                "belief": _rounded(result.belief[keep]),
                "n_pos": pa.array(result.n_pos[keep]),
                "n_neg": pa.array(result.n_neg[keep]),
                "probe_log": log_text,
                "rtt_us": pa.array(np.full(count, "-", dtype=object), type=pa.string()),
            }
        )
        sink = io.BytesIO()
        if count:
            pacsv.write_csv(table, sink, write_options=_WRITE_OPTIONS)
        self._append(sink.getvalue())
        self.rows_written += count
        return count

    def close(self, comment: str | None = None) -> None:
        """Add FSDB's trailing comment line (when given) and close the file."""
        if self._file.closed:
            return
        if self._pending is not None:
            # the last round in full, so that readers see where the run ends
            result, written = self._pending
            if written is not None:
                self._write_rows(result, ~written)
        if comment is not None:
            self._append(f"# | {comment}\n".encode())
        self._file.close()

    def _append(self, data: bytes) -> None:
        """Write and flush; a full disk becomes one error naming the file."""
        try:
            self._file.write(data)
            self._file.flush()
        except OSError as exc:
            raise RunError(f"{self.path}: cannot write ({exc.strerror or exc})") from None

    def __enter__(self) -> FsdbStream:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
