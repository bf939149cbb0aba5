"""IP sets of both families, like SiLK's rwset tools: build, combine, mask, count, list, store.

An :class:`IPSet` is an IPv4 part, a :class:`pyroaring.BitMap` of uint32 addresses
(:mod:`~liveness.analysis.ipset4`), and an IPv6 part, a :class:`~liveness.analysis.ipset6.Set6`
of sorted 128-bit interval bounds. Each verb works on each family separately: the two address
spaces never meet (an IPv4-mapped IPv6 address ``::ffff:a.b.c.d`` is an IPv6 address here, as in
the reply records). Both parts work on numpy arrays in batches, never a Python object per
address; counts are exact Python ints (an IPv6 set may hold up to 2**128 addresses).

Files (docs/ipset-format.md): a set holding only IPv4 addresses is written, as before, as one
portable roaring bitmap, which any roaring library reads; a set with IPv6 addresses is a small
container (magic ``LVIPSET\\n``, then tagged sections: the IPv4 roaring bytes, the isolated IPv6
addresses, and the IPv6 ranges, all big-endian). Loading takes either.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from pyroaring import BitMap

from liveness.analysis import ipset4, ipset6
from liveness.analysis.ipset4 import BadEntry
from liveness.analysis.ipset6 import Set6
from liveness.errors import InputError, RunError
from liveness.output.addresses import format_dotted
from liveness.output.fields import FIELD_KINDS, FieldContext, address6, derive, source_columns
from liveness.output.filter import ReplyFilter, compile_filter
from liveness.output.readers import read_replies

__all__ = [
    "MAGIC",
    "IPSet",
    "address_lines",
    "cidr_lines",
    "difference",
    "from_replies",
    "from_text",
    "intersect",
    "load_set",
    "load_sets",
    "mask",
    "save_set",
    "symdiff",
    "union",
]

MAGIC = b"LVIPSET\n"
VERSION = 1
_SECTIONS = (b"IPV4", b"IP6A", b"IP6R")  # in file order
_HEADER = struct.Struct(">4sQ")
_PENDING4 = 1 << 22
_PENDING6 = 1 << 25  # IPv6 rows kept before sorting (16 bytes each)
_LINES = 1 << 20


@dataclass(frozen=True)
class IPSet:
    """A set of IPv4 and IPv6 addresses: the two families side by side."""

    v4: BitMap = field(default_factory=BitMap)
    v6: Set6 = field(default_factory=lambda: ipset6.EMPTY)

    @property
    def count4(self) -> int:
        return len(self.v4)

    @property
    def count6(self) -> int:
        return self.v6.count

    @property
    def count(self) -> int:
        """Addresses of both families (exact; may exceed any fixed-width integer)."""
        return self.count4 + self.count6

    def __len__(self) -> int:
        return self.count

    def counts(self) -> dict[str, int]:
        """``count`` (the total), ``count_ipv4`` and ``count_ipv6``, as the JSON outputs say."""
        return {"count": self.count, "count_ipv4": self.count4, "count_ipv6": self.count6}


def _as_set(value: IPSet | BitMap) -> IPSet:
    return value if isinstance(value, IPSet) else IPSet(value)


# Building


_ADDRESS_KINDS = ("addr", "addr6")


def from_replies(
    paths: Sequence[str], row_filter: str | None = None, column: str = "target"
) -> IPSet:
    """Addresses in ``column`` of the reply rows matching ``row_filter`` (the output-filter
    language; ``and``/``or`` allowed).

    Each row's family decides: ``target`` is the IPv4 target on IPv4 rows and ``target6`` on
    IPv6 rows (likewise ``responder``, ``icmp_responder``); ``target6``/``responder6`` take only
    IPv6 rows. Each file is read in batches and gives its own set; the result is their union.
    """
    if FIELD_KINDS.get(column) not in _ADDRESS_KINDS:
        valid = ", ".join(n for n, k in FIELD_KINDS.items() if k in _ADDRESS_KINDS)
        raise InputError(f"--column: {column!r} is not an address field; use one of {valid}")
    compiled = compile_filter(row_filter, flag="--filter") if row_filter else None
    return union(*(_file_set(path, compiled, column) for path in paths))


def _file_set(path: str, compiled: ReplyFilter | None, column: str) -> IPSet:
    """One file's addresses: IPv4 added to the bitmap a few million at a time (sorted first),
    IPv6 gathered as 16-byte rows and sorted once per tens of millions."""
    ctx = FieldContext()
    v4, v6 = BitMap(), ipset6.EMPTY
    pending4: list[npt.NDArray[np.uint32]] = []
    pending6: list[npt.NDArray[np.uint8]] = []
    rows4 = rows6 = 0
    needed = source_columns((column, *(compiled.fields if compiled else ())))
    for batch in read_replies(path, columns=needed):
        if compiled is not None:
            rows = compiled.rows(batch, ctx)
            batch = batch if len(rows) == batch.num_rows else batch.take(rows)
        if FIELD_KINDS[column] == "addr":
            values = derive(batch, [column], ctx).column(0).drop_null().to_numpy()
            pending4.append(values.astype(np.uint32))
            rows4 += len(values)
        packed = _packed(address6(batch, column, ctx).drop_null())
        pending6.append(packed)
        rows6 += len(packed)
        if rows4 >= _PENDING4:
            v4 |= ipset4.from_addresses(np.concatenate(pending4))
            pending4, rows4 = [], 0
        if rows6 >= _PENDING6:
            v6 = ipset6.union(v6, ipset6.from_packed(np.concatenate(pending6)))
            pending6, rows6 = [], 0
    if pending4:
        v4 |= ipset4.from_addresses(np.concatenate(pending4))
    if rows6:
        v6 = ipset6.union(v6, ipset6.from_packed(np.concatenate(pending6)))
    return IPSet(v4, v6)


def _packed(values: pa.Array[Any]) -> npt.NDArray[np.uint8]:
    """The bytes of a ``binary(16)`` array without nulls, as ``(n, 16)`` rows (a copy)."""
    data = values.buffers()[1]
    if data is None or len(values) == 0:
        return np.zeros((0, 16), dtype=np.uint8)
    raw = np.frombuffer(
        memoryview(data), dtype=np.uint8, count=16 * len(values), offset=16 * values.offset
    )
    rows: npt.NDArray[np.uint8] = raw.reshape(len(values), 16).copy()
    return rows


def from_text(path: str) -> IPSet:
    """A set from a text file: one address or CIDR a line, IPv4 and IPv6 mixed (a ``:`` makes a
    line IPv6); ``#`` comments and blank lines skipped.

    Parsed with Arrow string kernels and numpy (no Python object per line). A CIDR with host
    bits set is taken as its network (as ZMap's allow and block lists do). An error names the
    first bad line.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        text: Any = pa.array([data], pa.large_binary()).cast(pa.large_string())
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: not a text file") from exc
    lines: Any = pc.list_flatten(pc.split_pattern(text, "\n"))
    if b"#" in data:
        lines = pc.replace_substring_regex(lines, r"#.*", "")
    del data, text
    cleaned = pc.utf8_trim_whitespace(lines)
    kept = np.flatnonzero(
        pc.greater(pc.utf8_length(cleaned), pa.scalar(0, pa.int64())).to_numpy(zero_copy_only=False)
    )
    entries = cleaned.take(kept)
    del lines, cleaned
    is6 = pc.match_substring(entries, ":").to_numpy(zero_copy_only=False)
    problems: list[tuple[int, str]] = []
    v4, v6 = BitMap(), ipset6.EMPTY
    for family, rows in ((4, np.flatnonzero(~is6)), (6, np.flatnonzero(is6))):
        if not rows.size:
            continue
        chosen = entries.take(rows)
        try:
            if family == 4:
                v4 = ipset4.from_prefixes(*ipset4.parse_entries(chosen))
            else:
                v6 = ipset6.from_prefixes(*ipset6.parse_entries(chosen))
        except BadEntry as bad:
            problems.append((int(rows[bad.index]), bad.problem))
    if problems:
        index, problem = min(problems)
        line = int(kept[index]) + 1
        raise InputError(f"{path}: line {line}: {problem} {entries[index].as_py()!r}")
    return IPSet(v4, v6)


# Combining


def union(*sets: IPSet) -> IPSet:
    """Addresses in any of the sets."""
    return IPSet(ipset4.union(*(s.v4 for s in sets)), ipset6.union(*(s.v6 for s in sets)))


def intersect(first: IPSet, *others: IPSet) -> IPSet:
    """Addresses in every set."""
    return IPSet(
        ipset4.intersect(first.v4, *(s.v4 for s in others)),
        ipset6.intersect(first.v6, *(s.v6 for s in others)),
    )


def difference(first: IPSet, *others: IPSet) -> IPSet:
    """Addresses of the first set that are in none of the others."""
    return IPSet(
        ipset4.difference(first.v4, *(s.v4 for s in others)),
        ipset6.difference(first.v6, *(s.v6 for s in others)),
    )


def symdiff(first: IPSet, *others: IPSet) -> IPSet:
    """Addresses in an odd number of the sets (for two sets: in exactly one)."""
    return IPSet(
        ipset4.symdiff(first.v4, *(s.v4 for s in others)),
        ipset6.symdiff(first.v6, *(s.v6 for s in others)),
    )


def mask(addresses: IPSet, prefix_length: int, prefix_length6: int | None = None) -> IPSet:
    """Each address replaced by the base of its block: ``/prefix_length`` for IPv4, and for
    IPv6 ``/prefix_length6``.

    Without ``prefix_length6``, ``prefix_length`` applies to the family the set holds; a set
    holding both families needs ``prefix_length6`` (a /24 means nothing alike in the two).
    """
    v4, v6 = addresses.v4, addresses.v6
    if prefix_length6 is None:
        if v4 and v6:
            raise InputError(
                f"mask {prefix_length}: the set holds IPv4 and IPv6 addresses; give the IPv6 "
                f"prefix length with --v6 (then {prefix_length} applies to IPv4)"
            )
        prefix_length6 = prefix_length
    if v4 and not 0 <= prefix_length <= 32:
        raise InputError(f"IPv4 prefix length must be 0..32, got {prefix_length}")
    masked4 = ipset4.mask(v4, prefix_length) if v4 else BitMap()
    return IPSet(masked4, ipset6.mask(v6, prefix_length6))


# Listing


def address_lines(addresses: IPSet) -> Iterator[list[str]]:
    """The addresses as text, IPv4 (dotted) then IPv6 (RFC 5952), in chunks of lines.

    An IPv6 part of more than :data:`~liveness.analysis.ipset6.LIST_LIMIT` addresses is
    refused before anything is printed (``--cidr`` lists it).
    """
    chunks6 = ipset6.address_chunks(addresses.v6) if addresses.v6 else iter(())
    for chunk in ipset4.address_chunks(addresses.v4):
        yield [str(text) for text in format_dotted(chunk.astype(np.uint32)).to_pylist()]
    for hi, lo in chunks6:
        yield ipset6.format_addresses(hi, lo)


def cidr_lines(addresses: IPSet) -> Iterator[list[str]]:
    """The minimal CIDR cover of each family, IPv4 blocks then IPv6 blocks, in chunks."""
    bases, lengths = ipset4.cidr_cover(addresses.v4)
    for first in range(0, len(bases), _LINES):
        part = slice(first, first + _LINES)
        yield ipset4.format_cidrs(bases[part], lengths[part])
    hi, lo, lengths6 = ipset6.cidr_cover(addresses.v6)
    for first in range(0, len(hi), _LINES):
        part = slice(first, first + _LINES)
        yield ipset6.format_cidrs(hi[part], lo[part], lengths6[part])


# Files


def serialize(addresses: IPSet | BitMap) -> bytes:
    """The file bytes of a set: plain roaring for IPv4 only, else the sectioned container."""
    value = _as_set(addresses)
    value.v4.run_optimize()
    if not value.v6:
        return bytes(value.v4.serialize())
    first_hi, first_lo, last_hi, last_lo = value.v6.intervals()
    single = (first_hi == last_hi) & (first_lo == last_lo)
    ranges = np.empty((int((~single).sum()), 32), dtype=np.uint8)
    ranges[:, :16] = ipset6.to_rows(first_hi[~single], first_lo[~single])
    ranges[:, 16:] = ipset6.to_rows(last_hi[~single], last_lo[~single])
    sections = (
        (b"IPV4", bytes(value.v4.serialize()) if value.v4 else b""),
        (b"IP6A", ipset6.to_packed(first_hi[single], first_lo[single])),
        (b"IP6R", ranges.tobytes()),
    )
    parts = [MAGIC, struct.pack(">I", VERSION)]
    for tag, payload in sections:
        if payload:
            parts += [_HEADER.pack(tag, len(payload)), payload]
    return b"".join(parts)


def save_set(addresses: IPSet | BitMap, path: str) -> None:
    """Write a set (a bare BitMap is an IPv4 set) atomically: temporary file, then rename."""
    data = serialize(addresses)
    temporary = f"{path}.tmp{os.getpid()}"
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except OSError as exc:
        raise RunError(f"{path}: cannot write: {exc.strerror}") from exc


def load_set(path: str) -> IPSet:
    """Read a set file of either format; a malformed file raises InputError naming it."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    return deserialize(data, path)


def deserialize(data: bytes, path: str) -> IPSet:
    """A set from file bytes (``path`` names the file in errors)."""
    if data.startswith(MAGIC):
        return _container(data, path)
    if MAGIC.startswith(data[: len(MAGIC)]) and data:
        raise InputError(f"{path}: IP set file truncated")
    return IPSet(_roaring(data, path, "not an IP set file (liveness or roaring format)"))


def _roaring(data: bytes, path: str, problem: str) -> BitMap:
    try:
        result = BitMap.deserialize(data)
    except (ValueError, IndexError) as exc:
        raise InputError(f"{path}: {problem}, or truncated") from exc
    if len(result.serialize()) != len(data):
        raise InputError(f"{path}: {problem} (trailing bytes)")
    return result


def _container(data: bytes, path: str) -> IPSet:
    """Parse the sectioned format (docs/ipset-format.md)."""
    view = memoryview(data)
    if len(view) < len(MAGIC) + 4:
        raise InputError(f"{path}: IP set file truncated")
    (version,) = struct.unpack_from(">I", view, len(MAGIC))
    if version != VERSION:
        raise InputError(f"{path}: IP set format version {version}; this liveness reads {VERSION}")
    offset = len(MAGIC) + 4
    payloads: dict[bytes, memoryview] = {}
    while offset < len(view):
        if len(view) - offset < _HEADER.size:
            raise InputError(f"{path}: IP set file truncated (in a section header)")
        tag, length = _HEADER.unpack_from(view, offset)
        offset += _HEADER.size
        if tag not in _SECTIONS:
            raise InputError(f"{path}: unknown IP set section {tag!r}")
        if payloads and _SECTIONS.index(tag) <= _SECTIONS.index(next(reversed(payloads))):
            raise InputError(f"{path}: IP set section {tag.decode()} repeated or out of order")
        if length > len(view) - offset:
            raise InputError(f"{path}: IP set file truncated (in section {tag.decode()})")
        payloads[tag] = view[offset : offset + length]
        offset += length
    v4 = BitMap()
    if b"IPV4" in payloads:
        v4 = _roaring(bytes(payloads[b"IPV4"]), path, "IPV4 section is not a roaring bitmap")
    singles = payloads.get(b"IP6A", memoryview(b""))
    ranges = payloads.get(b"IP6R", memoryview(b""))
    if len(singles) % 16 or len(ranges) % 32:
        raise InputError(f"{path}: IP set file truncated (IPv6 section not whole rows)")
    try:
        v6 = ipset6.from_rows(np.frombuffer(singles, np.uint8), np.frombuffer(ranges, np.uint8))
    except ValueError as exc:
        raise InputError(f"{path}: IP6R section: {exc}") from None
    return IPSet(v4, v6)


def load_sets(paths: Iterable[str]) -> list[IPSet]:
    """Read several sets (errors name the bad file)."""
    return [load_set(path) for path in paths]
