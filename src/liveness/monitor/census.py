"""E(b), the ever-responsive addresses of each /24 block, and their availability, from a census.

A census is one or more snapshots of the addresses that answered: an IP-set file (a pyroaring
``BitMap`` in portable serialization, as ``liveness ipset`` writes), a text file with one IPv4
address per line (``#`` comments allowed), or a reply parquet (``REPLY_SCHEMA``; the alive
targets are those that answered from their own address, the taxonomy's network-layer alive).
E(b) is the union of the snapshots; with two or more snapshots the census also measures each
block's availability, the mean fraction of E(b) that answered in a snapshot (Trinocular's
initial A(E(b))). One snapshot cannot measure it (every address of E(b) answered by
definition), so the monitor then starts from ``default_availability``.
"""

from __future__ import annotations

import io
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from numpy.typing import NDArray
from pyroaring import BitMap

from liveness.errors import InputError
from liveness.targets.inputs import check_input_file, excerpt

__all__ = [
    "Census",
    "census_from_snapshots",
    "load_census",
    "read_alive_addresses",
    "sorted_unique",
]

PathLike = str | os.PathLike[str]
_T = TypeVar("_T", bound=np.generic)
_ROARING_COOKIES = (b":0", b";0")  # portable format cookies 12346 and 12347, little endian


@dataclass(frozen=True)
class Census:
    """E(b) in CSR form: block ``i`` (/24 base ``blocks[i]``) holds addresses
    ``blocks[i] | hosts[indptr[i]:indptr[i+1]]``; ``availability`` per block, or None when
    the census was a single snapshot."""

    blocks: NDArray[np.uint32]
    indptr: NDArray[np.int64]
    hosts: NDArray[np.uint8]
    availability: NDArray[np.float64] | None
    snapshots: int

    @property
    def sizes(self) -> NDArray[np.int64]:
        """|E(b)| per block."""
        return np.diff(self.indptr)

    @property
    def address_count(self) -> int:
        return int(self.hosts.size)


def sorted_unique(values: NDArray[_T]) -> NDArray[_T]:
    """``np.unique`` by sorting (numpy 2's hash-based unique is several times slower here)."""
    ordered = np.sort(values, kind="stable")
    if ordered.size < 2:
        return ordered
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def census_from_snapshots(snapshots: Sequence[NDArray[np.uint32]]) -> Census:
    """The census of one or more sets of responsive addresses (uint32, host order)."""
    if not snapshots:
        raise InputError("census: no snapshot given")
    unique = [sorted_unique(np.asarray(snap, dtype=np.uint32)) for snap in snapshots]
    union = sorted_unique(np.concatenate(unique))
    prefixes = union >> np.uint32(8)
    first_of_block = np.ones(prefixes.size, dtype=bool)
    np.not_equal(prefixes[1:], prefixes[:-1], out=first_of_block[1:])
    starts = np.flatnonzero(first_of_block)
    block_prefix = prefixes[starts]
    counts = np.diff(np.append(starts, prefixes.size))
    indptr = np.zeros(block_prefix.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    availability: NDArray[np.float64] | None = None
    if len(unique) > 1:
        answered = np.zeros(block_prefix.size, dtype=np.float64)
        for snap in unique:
            rows = np.searchsorted(block_prefix, snap >> np.uint32(8))
            answered += np.bincount(rows, minlength=block_prefix.size)
        availability = answered / (counts * len(unique))
    return Census(
        blocks=(block_prefix << np.uint32(8)).astype(np.uint32),
        indptr=indptr,
        hosts=(union & np.uint32(0xFF)).astype(np.uint8),
        availability=availability,
        snapshots=len(unique),
    )


def _text_addresses_slow(text: str, path: PathLike) -> NDArray[np.uint32]:
    values: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            values.append(int(ipaddress.IPv4Address(line)))
        except ValueError:
            raise InputError(f"{path}:{number}: {excerpt(line)} is not an IPv4 address") from None
    return np.asarray(values, dtype=np.uint32)


def _text_addresses(data: bytes, path: PathLike) -> NDArray[np.uint32]:
    """Dotted-quad lines, parsed as four '.'-separated integer columns (fast path)."""
    lines = [line for line in data.split(b"\n") if line.strip() and not line.startswith(b"#")]
    if not lines:
        return np.empty(0, dtype=np.uint32)
    octet_names = ["a", "b", "c", "d"]
    try:
        table = pacsv.read_csv(
            io.BytesIO(b"\n".join(lines)),
            read_options=pacsv.ReadOptions(column_names=octet_names),
            parse_options=pacsv.ParseOptions(delimiter=".", quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(octet_names, pa.uint8())
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return _text_addresses_slow(data.decode("utf-8", "replace"), path)
    if any(table[name].null_count for name in octet_names):
        return _text_addresses_slow(data.decode("utf-8", "replace"), path)
    value = np.zeros(table.num_rows, dtype=np.uint32)
    for shift, name in zip((24, 16, 8, 0), octet_names, strict=True):
        value |= table[name].to_numpy().astype(np.uint32) << np.uint32(shift)
    return value


def _reply_alive(path: PathLike) -> NDArray[np.uint32]:
    try:
        schema = pq.read_schema(Path(path))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable parquet file ({exc})") from None
    missing = [name for name in ("target", "responder") if name not in schema.names]
    if missing:
        raise InputError(f"{path}: reply parquet lacks column(s) {', '.join(missing)}")
    try:
        table = pq.read_table(Path(path), columns=["target", "responder"])
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: damaged parquet file ({exc})") from None
    target = table["target"].to_numpy().astype(np.uint32)
    responder = table["responder"].to_numpy().astype(np.uint32)
    alive: NDArray[np.uint32] = sorted_unique(target[target == responder])
    return alive


def read_alive_addresses(path: PathLike) -> NDArray[np.uint32]:
    """The responsive addresses in one census file (IP set, text or reply parquet)."""
    check_input_file(path, what="census")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read census ({exc.strerror})") from None
    if data.startswith(b"PAR1"):
        return _reply_alive(path)
    if data[:2] in _ROARING_COOKIES:
        try:
            bitmap = BitMap.deserialize(data)
        except (ValueError, TypeError) as exc:
            raise InputError(f"{path}: not a valid IP-set file ({exc})") from None
        return np.frombuffer(bitmap.to_array(), dtype=np.uint32).copy()
    return _text_addresses(data, path)


def load_census(paths: Sequence[PathLike] | PathLike) -> Census:
    """A census from one or more files, each a snapshot of responsive addresses."""
    path_list = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    return census_from_snapshots([read_alive_addresses(path) for path in path_list])
