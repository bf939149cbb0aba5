"""Read a reply file as a stream of record batches holding the columns the analyses need.

This is the one place the analysis layer reads files: finished Parquet files directly (only the
needed columns), everything else through the output layer's reader. Any failure becomes an
:class:`~liveness.errors.InputError` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from liveness.errors import InputError, LivenessError
from liveness.output.readers import read_replies
from liveness.output.writers import format_for_path, journal_path

__all__ = ["BATCH_ROWS", "NEEDED_COLUMNS", "iter_reply_batches"]

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


def iter_reply_batches(path: str) -> Iterator[pa.RecordBatch]:
    """Yield record batches of ``path`` restricted to :data:`NEEDED_COLUMNS`.

    A finished Parquet file (no journal beside it) is read directly, decoding only the needed
    columns (the fast path); anything else (CSV, JSONL, a running or crashed scan's journal)
    goes through the output layer's :func:`~liveness.output.readers.read_replies`.
    Raises InputError (naming ``path``) for a missing file, a file that is not a reply table,
    a missing column, or a file that breaks while being read (a truncated Parquet file).
    """
    direct = format_for_path(path) == "parquet" and not os.path.exists(journal_path(path))
    if direct and not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    try:
        if direct:
            parquet = _open_parquet(path)
            if parquet is None:
                raise InputError(f"{path}: not a readable Parquet reply file (truncated?)")
            _check_columns(path, parquet.schema_arrow.names)
            yield from parquet.iter_batches(batch_size=BATCH_ROWS, columns=list(NEEDED_COLUMNS))
            return
        for batch in read_replies(path, batch_size=BATCH_ROWS):
            yield batch.select(list(NEEDED_COLUMNS))
    except LivenessError:
        raise
    except (pa.ArrowException, OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: unreadable reply file: {exc}") from exc
