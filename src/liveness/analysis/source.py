"""Read a reply file as a stream of record batches holding the columns the analyses need.

This is the one place the analysis layer reads files: finished Parquet files directly (only the
needed columns), everything else through the output layer's reader. Any failure becomes an
:class:`~liveness.errors.InputError` naming the file.

Each batch comes split by address family (:class:`FamilyBatch`): the IPv4 rows with
``target``/``responder`` (uint32), the IPv6 rows with ``target6``/``responder6`` (16 bytes) in
their place, as the families are analysed apart. Files without ``af`` (schema ``reply/1``) are
all IPv4; a Parquet file without ``af`` stores its IPv6 rows with a null ``target``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from liveness.analysis.zmap_files import parse_zmap_spec, read_zmap
from liveness.errors import InputError, LivenessError
from liveness.output.readers import read_replies
from liveness.output.writers import format_for_path, journal_path

__all__ = [
    "BATCH_ROWS",
    "NEEDED_COLUMNS",
    "NEEDED_COLUMNS6",
    "OPTIONAL_COLUMNS",
    "FamilyBatch",
    "ReplyBatches",
    "iter_reply_batches",
    "split_families",
]

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
#: Columns read when a file has them: the TCP application layer (``--app-layer``). A batch
#: without them has no application answers to qualify (their defaults: False, "").
OPTIONAL_COLUMNS: tuple[str, ...] = ("app_active", "app_proto")
#: The columns of an IPv6 batch: the addresses are ``target6`` and ``responder6``.
NEEDED_COLUMNS6: tuple[str, ...] = tuple(
    {"target": "target6", "responder": "responder6"}.get(c, c) for c in NEEDED_COLUMNS
)
BATCH_ROWS = 1 << 18
_FAMILY = "af"
_ADDRESS6 = ("target6", "responder6")


class FamilyBatch(NamedTuple):
    """One batch's rows by family: IPv4 as :data:`NEEDED_COLUMNS`, IPv6 (None when the batch
    has none) as :data:`NEEDED_COLUMNS6`, both with the :data:`OPTIONAL_COLUMNS` it has;
    ``unaddressed6`` counts IPv6 rows left out because the file has no IPv6 address columns
    (written with a narrow ``--output-fields``)."""

    ipv4: pa.RecordBatch
    ipv6: pa.RecordBatch | None
    unaddressed6: int = 0


def split_families(batch: pa.RecordBatch, path: str) -> FamilyBatch:
    """``batch``'s rows by family (see :class:`FamilyBatch`).

    IPv6 rows are those with ``af = 6``; without ``af``, those with a null ``target`` (as the
    Parquet writer stores them). Rows of another ``af`` are refused.
    """
    names = batch.schema.names
    wanted = [*NEEDED_COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in names)]
    wanted6 = [{"target": "target6", "responder": "responder6"}.get(c, c) for c in wanted]
    if _FAMILY in names:
        family = batch.column(_FAMILY)
        if family.null_count:
            raise InputError(f"{path}: column 'af' has {family.null_count} null value(s)")
        values = np.asarray(family.to_numpy(zero_copy_only=False))
        is6 = values == 6
        if not np.all(is6 | (values == 4)):
            bad = values[~(is6 | (values == 4))][0]
            raise InputError(f"{path}: column 'af' holds {bad}, not 4 or 6")
    elif batch.column("target").null_count:
        is6 = ~batch.column("target").is_valid().to_numpy(zero_copy_only=False)
    else:
        return FamilyBatch(batch.select(wanted), None)
    count6 = int(np.count_nonzero(is6))
    if count6 == 0:
        return FamilyBatch(batch.select(wanted), None)
    if any(c not in names for c in _ADDRESS6):
        return FamilyBatch(batch.filter(pa.array(~is6)).select(wanted), None, count6)
    if count6 == batch.num_rows:
        ipv4, ipv6 = batch.slice(0, 0), batch
    else:
        ipv4, ipv6 = batch.filter(pa.array(~is6)), batch.filter(pa.array(is6))
    return FamilyBatch(ipv4.select(wanted), ipv6.select(wanted6))


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


class ReplyBatches(Iterator[FamilyBatch]):
    """The record batches of one reply file, split by family (see :func:`iter_reply_batches`).

    ``ipv6_rows`` counts the IPv6 rows read so far (all of them once iterated), and
    ``unaddressed6`` those left out for want of IPv6 address columns.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.ipv6_rows = 0
        self.unaddressed6 = 0
        self._batches = self._read()

    def __next__(self) -> FamilyBatch:
        return next(self._batches)

    def _split(self, batch: pa.RecordBatch) -> FamilyBatch:
        split = split_families(batch, self.path)
        if split.ipv6 is not None:
            self.ipv6_rows += split.ipv6.num_rows
        self.unaddressed6 += split.unaddressed6
        return split

    def _read(self) -> Iterator[FamilyBatch]:
        path = self.path
        zmap = parse_zmap_spec(path)  # ``FILE:PROBE`` naming ZMap output; None for our files
        if zmap is not None:
            try:
                for batch in read_zmap(zmap, BATCH_ROWS):
                    yield self._split(batch)
            except LivenessError:
                raise
            except (pa.ArrowException, OSError, ValueError, KeyError) as exc:
                raise InputError(f"{zmap.path}: unreadable ZMap file: {exc}") from exc
            return
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
                extra = [c for c in (_FAMILY, *_ADDRESS6, *OPTIONAL_COLUMNS) if c in names]
                columns = [*NEEDED_COLUMNS, *extra]
                for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                    yield self._split(batch)
                return
            for batch in read_replies(path, batch_size=BATCH_ROWS):
                yield self._split(batch)
        except LivenessError:
            raise
        except (pa.ArrowException, OSError, ValueError, KeyError) as exc:
            raise InputError(f"{path}: unreadable reply file: {exc}") from exc


def iter_reply_batches(path: str) -> ReplyBatches:
    """Record batches of ``path`` split by family (:class:`FamilyBatch`).

    A finished Parquet file (no journal beside it) is read directly, decoding only the needed
    columns (the fast path); anything else (CSV, JSONL, a running or crashed scan's journal)
    goes through the output layer's :func:`~liveness.output.readers.read_replies`; a
    ``FILE:PROBE`` that names ZMap output goes through :mod:`~.zmap_files`. The IPv6
    rows are counted in the result's ``ipv6_rows``.
    Raises InputError (naming ``path``) for a missing file, a file that is not a reply table,
    a missing column, or a file that breaks while being read (a truncated Parquet file).
    """
    return ReplyBatches(path)
