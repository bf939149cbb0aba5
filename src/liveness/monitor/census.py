"""E(b), the ever-responsive addresses of each block, and their availability, from a census.

A census is one or more snapshots of the addresses that answered: an IP-set file (a pyroaring
``BitMap`` in portable serialization, as ``liveness ipset`` writes: IPv4), a text file with one
IPv4 or IPv6 address per line (a hitlist; ``#`` comments allowed; the families may mix), or a
reply parquet (``REPLY_SCHEMA``; the alive targets are those that answered from their own
address, the taxonomy's network-layer alive, on either family). IPv4 blocks are /24s
(:class:`Census`); IPv6 blocks are prefixes of one length up to /64, /48 by default
(:class:`Census6`). E(b) is the union of the snapshots; with two or more snapshots the census
also measures each block's availability, the mean fraction of E(b) that answered in a snapshot
(Trinocular's initial A(E(b))). One snapshot cannot measure it (every address of E(b) answered
by definition), so the monitor then starts from ``default_availability``.
"""

from __future__ import annotations

import io
import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from numpy.typing import NDArray
from pyroaring import BitMap

from liveness.analysis.bitmaps import drop_repeats
from liveness.errors import InputError
from liveness.targets import wide
from liveness.targets.inputs import check_input_file, excerpt

__all__ = [
    "DEFAULT_BLOCK6",
    "Census",
    "Census6",
    "census6_from_snapshots",
    "census_from_snapshots",
    "load_census",
    "load_census_families",
    "read_alive_addresses",
    "read_alive_families",
    "sorted_unique",
]

DEFAULT_BLOCK6 = 48
"""IPv6 block length when none is given: a /48, the usual end-site assignment."""

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


@dataclass(frozen=True)
class Census6:
    """E(b) of IPv6 blocks of one length ``prefix_len`` (at most 64), in CSR form: block ``i``,
    whose network's upper 64 bits are ``blocks[i]``, holds the addresses
    ``addresses[indptr[i]:indptr[i+1]]`` (``(m, 16)`` uint8, network byte order, ascending);
    ``availability`` per block, or None when the census was a single snapshot."""

    prefix_len: int
    blocks: NDArray[np.uint64]
    indptr: NDArray[np.int64]
    addresses: NDArray[np.uint8]
    availability: NDArray[np.float64] | None
    snapshots: int

    @property
    def sizes(self) -> NDArray[np.int64]:
        """|E(b)| per block."""
        return np.diff(self.indptr)

    @property
    def address_count(self) -> int:
        return int(self.addresses.shape[0])


def sorted_unique(values: NDArray[_T]) -> NDArray[_T]:
    """``np.unique`` by sorting (numpy 2's hash-based unique is several times slower here)."""
    return drop_repeats(np.sort(values, kind="stable"))


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


def prefix_mask(prefix_len: int) -> np.uint64:
    """The mask of a /prefix_len (<= 64) on the upper 64 bits of an IPv6 address."""
    return np.uint64(((1 << 64) - 1) ^ ((1 << (64 - prefix_len)) - 1))


def _unique6(addresses: NDArray[np.uint8]) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """The distinct addresses of a snapshot, ascending, as (upper, lower) halves."""
    hi, lo = wide.from_bytes(addresses)
    order = np.lexsort((lo, hi))
    hi, lo = hi[order], lo[order]
    keep = np.ones(hi.size, dtype=bool)
    keep[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    return hi[keep], lo[keep]


def census6_from_snapshots(
    snapshots: Sequence[NDArray[np.uint8]], prefix_len: int = DEFAULT_BLOCK6
) -> Census6:
    """The IPv6 census of one or more sets of responsive addresses (``(n, 16)`` uint8), in
    blocks of ``/prefix_len`` (1..64)."""
    if not snapshots:
        raise InputError("census: no snapshot given")
    if not 1 <= prefix_len <= 64:
        raise InputError(f"--block6: /{prefix_len} must be between /1 and /64")
    mask = prefix_mask(prefix_len)
    unique = [_unique6(np.asarray(snap, dtype=np.uint8)) for snap in snapshots]
    hi, lo = _unique6(np.concatenate([wide.to_bytes(h, lo_) for h, lo_ in unique]))
    keys = hi & mask
    first_of_block = np.ones(keys.size, dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=first_of_block[1:])
    starts = np.flatnonzero(first_of_block)
    blocks = keys[starts]
    counts = np.diff(np.append(starts, keys.size))
    indptr = np.zeros(blocks.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    availability: NDArray[np.float64] | None = None
    if len(unique) > 1:
        answered = np.zeros(blocks.size, dtype=np.float64)
        for snap_hi, _ in unique:
            rows = np.searchsorted(blocks, snap_hi & mask)
            answered += np.bincount(rows, minlength=blocks.size)
        availability = answered / (counts * len(unique))
    return Census6(
        prefix_len=prefix_len,
        blocks=blocks,
        indptr=indptr,
        addresses=wide.to_bytes(hi, lo),
        availability=availability,
        snapshots=len(unique),
    )


def _text_addresses_slow(
    text: str, path: PathLike, numbers: Sequence[int] | None = None
) -> NDArray[np.uint32]:
    values: list[int] = []
    for index, raw in enumerate(text.splitlines()):
        number = numbers[index] if numbers is not None else index + 1
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            values.append(int(ipaddress.IPv4Address(line)))
        except ValueError:
            raise InputError(f"{path}:{number}: {excerpt(line)} is not an IPv4 address") from None
    return np.asarray(values, dtype=np.uint32)


def _text_addresses(
    data: bytes, path: PathLike, numbers: Sequence[int] | None = None
) -> NDArray[np.uint32]:
    """Dotted-quad lines, parsed as four '.'-separated integer columns (fast path); errors
    name line ``numbers[k]`` for the k-th line when given."""
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
        return _text_addresses_slow(data.decode("utf-8", "replace"), path, numbers)
    if any(table[name].null_count for name in octet_names):
        return _text_addresses_slow(data.decode("utf-8", "replace"), path, numbers)
    value = np.zeros(table.num_rows, dtype=np.uint32)
    for shift, name in zip((24, 16, 8, 0), octet_names, strict=True):
        value |= table[name].to_numpy().astype(np.uint32) << np.uint32(shift)
    return value


def _text_addresses6(lines: list[bytes], numbers: list[int], path: PathLike) -> NDArray[np.uint8]:
    """IPv6 address lines (``inet_pton``, the C library's text-to-bytes) as ``(n, 16)``."""
    pton, family = socket.inet_pton, socket.AF_INET6
    texts = [line.decode("utf-8", "replace").strip() for line in lines]
    try:
        packed = b"".join([pton(family, text) for text in texts])
    except (OSError, ValueError):
        for number, text in zip(numbers, texts, strict=True):
            try:
                pton(family, text)
            except (OSError, ValueError):
                raise InputError(
                    f"{path}:{number}: {excerpt(text)} is not an IPv6 address"
                ) from None
        raise AssertionError("unreachable") from None
    return np.frombuffer(packed, dtype=np.uint8).reshape(-1, 16).copy()


def _text_families(data: bytes, path: PathLike) -> tuple[NDArray[np.uint32], NDArray[np.uint8]]:
    """A hitlist's IPv4 and IPv6 addresses (a line holding ``:`` is IPv6)."""
    if b":" not in data:
        return _text_addresses(data, path), _NO_ADDRESSES6
    v4_lines: list[bytes] = []
    v6_lines: list[bytes] = []
    v6_numbers: list[int] = []
    v4_numbers: list[int] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = raw.split(b"#", 1)[0].strip()
        if not line:
            continue
        if b":" in line:
            v6_lines.append(line)
            v6_numbers.append(number)
        else:
            v4_lines.append(line)
            v4_numbers.append(number)
    v4 = _text_addresses(b"\n".join(v4_lines), path, v4_numbers)
    return v4, _text_addresses6(v6_lines, v6_numbers, path)


_NO_ADDRESSES6 = np.zeros((0, 16), dtype=np.uint8)


def _reply_alive(path: PathLike) -> tuple[NDArray[np.uint32], NDArray[np.uint8]]:
    try:
        schema = pq.read_schema(Path(path))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable parquet file ({exc})") from None
    missing = [name for name in ("target", "responder") if name not in schema.names]
    if missing:
        raise InputError(f"{path}: reply parquet lacks column(s) {', '.join(missing)}")
    six = [name for name in ("af", "target6", "responder6") if name in schema.names]
    try:
        table = pq.read_table(Path(path), columns=["target", "responder", *six])
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: damaged parquet file ({exc})") from None
    if "af" in six:
        af = table["af"].to_numpy(zero_copy_only=False)
        is6 = af == 6
    else:
        is6 = np.zeros(table.num_rows, dtype=bool)
    rows4 = table.filter(pa.array(~is6)) if is6.any() else table
    target = rows4["target"].to_numpy(zero_copy_only=False).astype(np.uint32)
    responder = rows4["responder"].to_numpy(zero_copy_only=False).astype(np.uint32)
    alive: NDArray[np.uint32] = sorted_unique(target[target == responder])
    alive6 = _NO_ADDRESSES6
    if is6.any() and {"target6", "responder6"} <= set(six):
        rows6 = table.filter(pa.array(is6))
        target6 = _fixed16(rows6["target6"])
        responder6 = _fixed16(rows6["responder6"])
        alive6 = target6[(target6 == responder6).all(axis=1)]
    return alive, alive6


def _fixed16(column: pa.ChunkedArray[Any]) -> NDArray[np.uint8]:
    """A binary(16) column (no nulls expected on IPv6 rows) as ``(n, 16)`` uint8."""
    joined = column.combine_chunks().cast(pa.binary(16))
    if joined.null_count:
        raise InputError("reply parquet: an IPv6 row has no address")
    data = joined.buffers()[1]
    if data is None or not len(joined):
        return _NO_ADDRESSES6
    raw = np.frombuffer(data.to_pybytes(), dtype=np.uint8)
    start = joined.offset * 16
    return raw[start : start + 16 * len(joined)].reshape(-1, 16).copy()


def read_alive_families(path: PathLike) -> tuple[NDArray[np.uint32], NDArray[np.uint8]]:
    """The responsive addresses in one census file, per family: IPv4 (uint32, host order) and
    IPv6 (``(n, 16)`` uint8, network order)."""
    check_input_file(path, what="census")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read census ({exc.strerror})") from None
    if data.startswith(b"PAR1"):
        return _reply_alive(path)
    mixed = _mixed_set(data, path)
    if mixed is not None:
        return mixed
    if data[:2] in _ROARING_COOKIES:
        try:
            bitmap = BitMap.deserialize(data)
        except (ValueError, TypeError) as exc:
            raise InputError(f"{path}: not a valid IP-set file ({exc})") from None
        return np.frombuffer(bitmap.to_array(), dtype=np.uint32).copy(), _NO_ADDRESSES6
    return _text_families(data, path)


def _mixed_set(data: bytes, path: PathLike) -> tuple[NDArray[np.uint32], NDArray[np.uint8]] | None:
    """Both families of an IP-set file in the mixed-family format of ``liveness ipset`` (None
    for any other file); IPv6 ranges are refused: a census lists addresses."""
    from liveness.analysis import ipset

    magic = getattr(ipset, "MAGIC", None)
    if not isinstance(magic, bytes) or not data.startswith(magic):
        return None
    value = ipset.deserialize(data, os.fspath(path))
    v4 = np.frombuffer(value.v4.to_array(), dtype=np.uint32).copy()
    if not value.v6:
        return v4, _NO_ADDRESSES6
    first_hi, first_lo, last_hi, last_lo = value.v6.intervals()
    if np.any((first_hi != last_hi) | (first_lo != last_lo)):
        raise InputError(f"{path}: the IP set holds IPv6 ranges; a census lists addresses")
    return v4, wide.to_bytes(np.asarray(first_hi, np.uint64), np.asarray(first_lo, np.uint64))


def read_alive_addresses(path: PathLike) -> NDArray[np.uint32]:
    """The responsive IPv4 addresses in one census file (IP set, text or reply parquet)."""
    return read_alive_families(path)[0]


def load_census(paths: Sequence[PathLike] | PathLike) -> Census:
    """The IPv4 census from one or more files, each a snapshot of responsive addresses."""
    path_list = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    return census_from_snapshots([read_alive_addresses(path) for path in path_list])


def load_census_families(
    paths: Sequence[PathLike] | PathLike, block6: int = DEFAULT_BLOCK6
) -> tuple[Census | None, Census6 | None]:
    """Both families' censuses from one or more snapshot files (None: no address of that
    family in any snapshot); IPv6 in blocks of ``/block6``."""
    path_list = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    snapshots = [read_alive_families(path) for path in path_list]
    census4 = census6 = None
    if any(v4.size for v4, _ in snapshots):
        census4 = census_from_snapshots([v4 for v4, _ in snapshots])
    if any(v6.shape[0] for _, v6 in snapshots):
        census6 = census6_from_snapshots([v6 for _, v6 in snapshots], block6)
    return census4, census6
