"""Read a reply file as a stream of record batches holding the columns the analyses need.

This is the one place the analysis layer reads files: finished Parquet files directly (only the
needed columns), everything else through the output layer's reader. Any failure becomes an
:class:`~liveness.errors.InputError` naming the file.

The analyses are IPv4 analyses (addresses are uint32 roaring bitmaps), so only ``af = 4`` rows
are passed on; IPv6 rows (whose ``target`` and ``responder`` are 0) would otherwise count as
0.0.0.0. Files without ``af`` (schema ``reply/1``) are all IPv4. The IPv6 rows skipped are
counted in :attr:`ReplyBatches.ipv6_rows`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from liveness.errors import InputError, LivenessError
from liveness.output.readers import read_replies
from liveness.output.writers import format_for_path, journal_path

__all__ = ["BATCH_ROWS", "NEEDED_COLUMNS", "ReplyBatches", "iter_reply_batches"]

#: The reply-record columns the reduction reads (the others are never decoded).
NEEDED_COLUMNS: tuple[str, ...] = (
    "probe",
    "target",
    "responder",
    "reply",
    "icmp_code",
    "attempt",
    "app_valid",
)
BATCH_ROWS = 1 << 18
_FAMILY = "af"


def _check_columns(path: str, names: list[str]) -> None:
    missing = [c for c in NEEDED_COLUMNS if c not in names]
    if missing:
        raise InputError(f"{path}: not a reply table (missing column(s): {', '.join(missing)})")


def _open_parquet(path: str) -> pq.ParquetFile | None:
    """The file as Parquet, or None when it has no readable Parquet footer.

    Memory-mapped: the column chunks are decoded from the page cache instead of being copied
    into buffers first (a quarter of the reading CPU). A finished scan file is only ever
    replaced by a rename, never rewritten in place, so the mapping does not shrink under us.
    """
    try:
        return pq.ParquetFile(path, memory_map=True)
    except (pa.ArrowException, OSError):
        return None


class ReplyBatches(Iterator[pa.RecordBatch]):
    """The IPv4 record batches of one reply file (see :func:`iter_reply_batches`).

    ``ipv6_rows`` counts the IPv6 rows left out so far (all of them once iterated).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.ipv6_rows = 0
        self._batches = self._read()

    def __next__(self) -> pa.RecordBatch:
        return next(self._batches)

    def _ipv4(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch's IPv4 rows, as :data:`NEEDED_COLUMNS` (counting the others).

        IPv6 rows are those with ``af = 6``; without ``af``, a Parquet file's IPv6 rows are
        those with a null ``target`` (as the writer stores them).
        """
        if _FAMILY in batch.schema.names:
            is4 = pc.equal(batch.column(_FAMILY), pa.scalar(4, pa.uint8()))
        elif batch.column("target").null_count:
            is4 = batch.column("target").is_valid()
        else:
            return batch.select(list(NEEDED_COLUMNS))
        keep = is4.to_numpy(zero_copy_only=False)
        kept = int(np.count_nonzero(keep))
        if kept < batch.num_rows:
            self.ipv6_rows += batch.num_rows - kept
            batch = batch.filter(pa.array(keep))
        return batch.select(list(NEEDED_COLUMNS))

    def _read(self) -> Iterator[pa.RecordBatch]:
        path = self.path
        direct = format_for_path(path) == "parquet" and not os.path.exists(journal_path(path))
        if direct and not os.path.exists(path):
            raise InputError(f"{path}: no such file")
        try:
            if direct:
                parquet = _open_parquet(path)
                if parquet is None:
                    raise InputError(f"{path}: not a readable Parquet reply file (truncated?)")
                names = parquet.schema_arrow.names
                _check_columns(path, names)
                columns = [*NEEDED_COLUMNS, *([_FAMILY] if _FAMILY in names else [])]
                for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                    yield self._ipv4(batch)
                return
            for batch in read_replies(path, batch_size=BATCH_ROWS):
                yield self._ipv4(batch)
        except LivenessError:
            raise
        except (pa.ArrowException, OSError, ValueError, KeyError) as exc:
            raise InputError(f"{path}: unreadable reply file: {exc}") from exc


def iter_reply_batches(path: str) -> ReplyBatches:
    """Record batches of the IPv4 (``af = 4``) rows of ``path``, as :data:`NEEDED_COLUMNS`.

    A finished Parquet file (no journal beside it) is read directly, decoding only the needed
    columns (the fast path); anything else (CSV, JSONL, a running or crashed scan's journal)
    goes through the output layer's :func:`~liveness.output.readers.read_replies`. The IPv6
    rows left out are counted in the result's ``ipv6_rows``.
    Raises InputError (naming ``path``) for a missing file, a file that is not a reply table,
    a missing column, or a file that breaks while being read (a truncated Parquet file).
    """
    return ReplyBatches(path)
