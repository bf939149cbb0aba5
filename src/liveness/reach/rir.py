"""Who could secede: allocated and active addresses per RIR and country, and majorities.

Input: RIR delegated(-extended) statistics files. Their lines are a version line
(``2|afrinic|20260505|19286|...``), summary lines (``afrinic|*|ipv4|*|5958|summary``) and records
``registry|cc|type|start|value|date|status[|opaque-id|...]``; ``#`` lines are comments. Only
records whose status is ``allocated`` or ``assigned`` count. Units:

- IPv4: ``value`` is an address count (not always a power of two); counted in addresses.
- IPv6: ``value`` is a prefix length; counted in /64s (``2**(64 - length)``), exact integers
  for every prefix an RIR delegates (a /32 is 2**32 /64s). Longer prefixes are rejected.

An active-address census (a liveness scan's alive set, see :func:`read_census`) is mapped to
the IPv4 records by interval lookup (``searchsorted`` over the sorted allocation starts). Shares
are of what the given files cover: pass all five RIRs' files for the whole Internet; active
addresses outside every given allocation are counted as unmapped and left out of the shares.

A majority is strictly more than half: exactly 50% is not a majority. :func:`secession` finds
the smallest coalition of countries holding a majority by taking countries largest first. That
is optimal: the k largest hold at least as much as any k countries, so if some k countries
exceed half, the k largest do too; the first prefix of the sorted list to exceed half is
therefore the smallest coalition there is.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pyarrow_compute
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pyroaring import BitMap

from liveness.errors import InputError
from liveness.output.schema import STRING_DICT
from liveness.reach.blocks import block_af
from liveness.reach.compressed import read_bytes
from liveness.reach.scans import read_scan_replies
from liveness.targets.inputs import excerpt

__all__ = [
    "COUNTED_STATUSES",
    "DELEGATED_SCHEMA",
    "METRICS",
    "RIR_TABLE_SCHEMA",
    "Census",
    "Coalition",
    "read_census",
    "read_delegated",
    "rir_table",
    "secession",
    "table_totals",
]

COUNTED_STATUSES: frozenset[str] = frozenset({"allocated", "assigned"})
METRICS: tuple[str, ...] = ("ipv4", "ipv6_64s", "active")
_TYPES = ("asn", "ipv4", "ipv6")

_DICT = STRING_DICT

DELEGATED_SCHEMA = pa.schema(
    [
        pa.field("registry", _DICT, nullable=False),
        pa.field("cc", _DICT, nullable=False),
        pa.field("type", _DICT, nullable=False),
        pa.field("start", pa.string(), nullable=False),
        pa.field("value", pa.int64(), nullable=False),
        pa.field("date", pa.string(), nullable=False),
        pa.field("status", _DICT, nullable=False),
        pa.field("opaque_id", pa.string(), nullable=False),
        pa.field("ipv4_start", pa.uint32(), nullable=False),  # 0 unless type is ipv4
        pa.field("size", pa.int64(), nullable=False),  # addresses, /64s or AS numbers
    ],
    metadata={"liveness.schema": "delegated/1"},
)

RIR_TABLE_SCHEMA = pa.schema(
    [
        pa.field("level", _DICT, nullable=False),  # "rir" or "country"
        pa.field("name", pa.string(), nullable=False),
        pa.field("ipv4", pa.int64(), nullable=False),
        pa.field("ipv4_share", pa.float64(), nullable=False),
        pa.field("ipv6_64s", pa.int64(), nullable=False),
        pa.field("ipv6_64s_share", pa.float64(), nullable=False),
        pa.field("active", pa.int64(), nullable=True),  # null without a census
        pa.field("active_share", pa.float64(), nullable=True),
        pa.field("majority_ipv4", pa.bool_(), nullable=False),
        pa.field("majority_ipv6_64s", pa.bool_(), nullable=False),
        pa.field("majority_active", pa.bool_(), nullable=True),
    ],
    metadata={"liveness.schema": "rir-table/1"},
)

PathLike = str | os.PathLike[str]
pc: Any = pyarrow_compute  # the stubs' overloads do not cover these array calls


# one DELEGATED_SCHEMA row: registry, cc, type, start, value, date, status, opaque_id,
# ipv4_start, size
_Row = tuple[str, str, str, str, int, str, str, str, int, int]


def _record(fields: list[str], where: str) -> _Row:
    """Validate one record line's fields; return the DELEGATED_SCHEMA row."""
    registry, cc, kind, start, value_text, date, status = fields[:7]
    opaque_id = fields[7] if len(fields) > 7 else ""
    if kind not in _TYPES:
        raise InputError(f"{where}: unknown type {excerpt(kind)} (expected asn, ipv4 or ipv6)")
    try:
        value = int(value_text)
    except ValueError:
        raise InputError(f"{where}: value {excerpt(value_text)} is not an integer") from None
    ipv4_start = 0
    if kind == "ipv4":
        try:
            ipv4_start = int(ipaddress.IPv4Address(start))
        except ValueError:
            raise InputError(f"{where}: start {excerpt(start)} is not an IPv4 address") from None
        if value < 1 or ipv4_start + value > 2**32:
            raise InputError(f"{where}: IPv4 count {value} does not fit after {start}")
        size = value
    elif kind == "ipv6":
        try:
            ipaddress.IPv6Address(start)
        except ValueError:
            raise InputError(f"{where}: start {excerpt(start)} is not an IPv6 address") from None
        if not 0 <= value <= 64:
            raise InputError(f"{where}: IPv6 prefix length {value} is not between 0 and 64")
        size = 2 ** (64 - value)
    else:
        if not start.isdigit() or value < 1:
            raise InputError(f"{where}: bad AS number range {start}+{value}")
        size = value
    return (registry, cc, kind, start, value, date, status.lower(), opaque_id, ipv4_start, size)


def _read_one(path: PathLike) -> list[_Row]:
    """The records of one file, checked line by line and against its summary lines."""
    rows: list[_Row] = []
    summaries: dict[str, tuple[int, str]] = {}
    seen_version = False
    text = read_bytes(path).decode("utf-8", "replace")
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        fields = line.split("|")
        if not seen_version:
            if len(fields) < 6 or not fields[0].replace(".", "").isdigit():
                raise InputError(f"{where}: not an RIR statistics version line")
            seen_version = True
            continue
        if len(fields) >= 6 and fields[5] == "summary":
            if not fields[4].isdigit():
                raise InputError(f"{where}: summary count {excerpt(fields[4])} is not an integer")
            summaries[fields[2]] = (int(fields[4]), where)
            continue
        if len(fields) < 7:
            raise InputError(
                f"{where}: expected at least 7 '|'-separated fields, found {len(fields)}"
            )
        rows.append(_record(fields, where))
    if not seen_version:
        raise InputError(f"{path}: empty RIR statistics file")
    for kind, (expected, where) in summaries.items():
        found = sum(1 for row in rows if row[2] == kind)
        if found != expected:
            raise InputError(f"{where}: summary says {expected} {kind} records, file has {found}")
    return rows


def read_delegated(paths: Sequence[PathLike] | PathLike) -> pa.Table:
    """Every record of RIR delegated(-extended) files, as a DELEGATED_SCHEMA table.

    Malformed lines, and summaries that disagree with the records (a truncated file), raise
    InputError naming file and line.
    """
    path_list: list[PathLike] = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    rows = [row for path in path_list for row in _read_one(path)]
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[]] * 10
    arrays = [
        pa.array(column, type=pa.string() if field.type == _DICT else field.type)
        for column, field in zip(columns, DELEGATED_SCHEMA, strict=True)
    ]
    arrays = [
        array.dictionary_encode() if field.type == _DICT else array
        for array, field in zip(arrays, DELEGATED_SCHEMA, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=DELEGATED_SCHEMA)


@dataclass(frozen=True)
class Census:
    """Active IPv4 addresses: ``address`` (uint32, an address or a block's base) and ``count``."""

    address: npt.NDArray[np.uint32]
    count: npt.NDArray[np.int64]

    @property
    def total(self) -> int:
        return int(self.count.sum())


def _dotted_fast(text: pa.Array[Any]) -> npt.NDArray[np.uint32] | None:
    """Dotted quads (optionally ``/len``) to uint32, vectorised; None if any is malformed."""
    try:
        bare = pc.replace_substring_regex(pc.utf8_trim_whitespace(text), r"/\d+$", "")
        parts = pc.split_pattern(bare, ".")
        if text.null_count or pc.min(pc.list_value_length(parts)).as_py() != 4:
            return None
        if pc.max(pc.list_value_length(parts)).as_py() != 4:
            return None
        octets = pc.cast(pc.list_flatten(parts), pa.int64()).to_numpy().reshape(-1, 4)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if octets.size and (octets.min() < 0 or octets.max() > 255):
        return None
    weights = np.array([1 << 24, 1 << 16, 1 << 8, 1], dtype=np.int64)
    values: npt.NDArray[np.uint32] = (octets @ weights).astype(np.uint32)
    return values


def _dotted_to_uint32(
    text: Sequence[str], path: PathLike, first_line: int
) -> npt.NDArray[np.uint32]:
    """Dotted quads (optionally ``/len``) to uint32; InputError naming the first bad line."""
    if len(text):
        fast = _dotted_fast(pa.array(text, type=pa.string()))
        if fast is not None:
            return fast
    values = np.empty(len(text), dtype=np.uint32)
    for index, item in enumerate(text):
        try:
            values[index] = int(ipaddress.IPv4Network(item.strip(), strict=False).network_address)
        except ValueError:
            why = (
                "is IPv6: a census counts active IPv4 addresses (leave IPv6 blocks out)"
                if block_af(item) == 6
                else "is not an IPv4 block or address"
            )
            raise InputError(f"{path}:{first_line + index}: {excerpt(item)} {why}") from None
    return values


def _census_csv(data: bytes, path: PathLike) -> Census:
    """``block,active`` lines; the block as CIDR or a dotted base address; a header is allowed."""
    lines = data.decode("utf-8", "replace").splitlines()
    first_line = 1
    if lines and not lines[0][:1].isdigit():
        lines, first_line = lines[1:], 2
    try:
        table = pacsv.read_csv(
            io.BytesIO("\n".join(lines).encode()),
            read_options=pacsv.ReadOptions(column_names=["block", "active"]),
            convert_options=pacsv.ConvertOptions(
                column_types={"block": pa.string(), "active": pa.int64()}
            ),
        )
    except pa.ArrowInvalid as exc:
        for offset, line in enumerate(lines):
            fields = line.split(",")
            if line.strip() and (len(fields) != 2 or not fields[1].strip().isdigit()):
                raise InputError(
                    f"{path}:{first_line + offset}: expected 'block,active' (active an integer)"
                ) from exc
        raise InputError(f"{path}: unreadable census CSV: {exc}") from exc
    count = table["active"].to_numpy(zero_copy_only=False).astype(np.int64)
    if count.size and count.min() < 0:
        bad = int(np.flatnonzero(count < 0)[0])
        raise InputError(f"{path}:{first_line + bad}: active count is negative")
    blocks = [str(item) for item in table["block"].to_pylist()]
    return Census(_dotted_to_uint32(blocks, path, first_line), count)


def _alive_ipv4(replies: pa.Table) -> Census:
    """The distinct IPv4 responders of reply records, each counting 1 (IPv6 rows, whose
    ``responder`` is 0 or null, are left out: the census is compared with IPv4 allocations)."""
    keep = replies["responder"].is_valid().to_numpy(zero_copy_only=False)
    if "af" in replies.column_names:
        keep &= replies["af"].to_numpy(zero_copy_only=False) != 6
    responder = replies["responder"].to_numpy(zero_copy_only=False)[keep]
    alive = np.unique(responder.astype(np.uint32))
    return Census(alive, np.ones(alive.size, dtype=np.int64))


def read_census(path: PathLike) -> Census:
    """An active-address census: an IP-set file, a scan's replies, or a ``block,active`` CSV.

    - IP-set file (a serialized ``pyroaring.BitMap`` of uint32 addresses): each address counts 1.
    - reply records of ``liveness scan`` (Parquet, CSV or JSON lines): the IPv4 alive set,
      i.e. every distinct IPv4 ``responder`` (network-alive, DESIGN.md), each counting 1; the
      IPv6 rows of a dual-stack scan are left out (the table's ``active`` is IPv4).
    - Parquet or CSV with columns ``block, active``: ``active`` addresses in each block (the
      block's base address is looked up, so a block should not straddle two allocations).
    """
    data = read_bytes(path)
    if data.startswith(b"PAR1"):
        try:
            table = pq.read_table(io.BytesIO(data))
        except pa.ArrowInvalid as exc:
            raise InputError(f"{path}: unreadable Parquet: {exc}") from exc
        if "responder" in table.column_names:
            return _alive_ipv4(table)
        if {"block", "active"} <= set(table.column_names):
            blocks = [str(item) for item in table["block"].to_pylist()]
            count = table["active"].to_numpy(zero_copy_only=False).astype(np.int64)
            return Census(_dotted_to_uint32(blocks, path, 1), count)
        raise InputError(f"{path}: Parquet census needs a 'responder' or 'block,active' columns")
    head = data[:4096]
    if b"responder" in head.split(b"\n", 1)[0]:  # CSV or JSON-lines reply records
        return _alive_ipv4(read_scan_replies(path))
    if head[:1].isdigit() or head.lower().startswith(b"block"):
        return _census_csv(data, path)
    try:
        bitmap = BitMap.deserialize(data)
    except (ValueError, IndexError, TypeError, MemoryError) as exc:
        raise InputError(f"{path}: not an IP-set file, a reply Parquet or a block CSV") from exc
    if len(bitmap.serialize()) != len(data):
        raise InputError(f"{path}: not an IP-set file (trailing bytes after the bitmap)")
    alive = np.frombuffer(bitmap.to_array(), dtype=np.uint32)
    return Census(alive, np.ones(alive.size, dtype=np.int64))


def _active_per_record(ipv4: pa.Table, census: Census) -> tuple[npt.NDArray[np.int64], int]:
    """Active count per IPv4 record (interval lookup), and the count outside every record."""
    starts = ipv4["ipv4_start"].to_numpy().astype(np.int64)
    ends = starts + ipv4["size"].to_numpy().astype(np.int64)
    order = np.argsort(starts, kind="stable")
    sorted_starts, sorted_ends = starts[order], ends[order]
    address = census.address.astype(np.int64)
    slot = np.searchsorted(sorted_starts, address, side="right") - 1
    inside = slot >= 0
    inside[inside] = address[inside] < sorted_ends[slot[inside]]
    per_sorted = np.bincount(
        slot[inside], weights=census.count[inside].astype(np.float64), minlength=order.size
    )
    per_record = np.zeros(order.size, dtype=np.int64)
    per_record[order] = np.rint(per_sorted).astype(np.int64)
    return per_record, int(census.count[~inside].sum())


def _group_sums(keys: list[str], values: npt.NDArray[np.int64]) -> dict[str, int]:
    sums: dict[str, int] = {}
    for key, value in zip(keys, values.tolist(), strict=True):
        sums[key] = sums.get(key, 0) + int(value)
    return sums


def rir_table(delegated: pa.Table, census: Census | None = None) -> pa.Table:
    """Allocated IPv4 and IPv6 and active IPv4 per RIR and per country, with shares.

    Rows are RIRs then countries, each by allocated IPv4, largest first. ``majority_*`` is true
    for a row holding strictly more than half of that metric at its level. The schema metadata
    ``liveness.totals`` (JSON) holds the totals and ``active_unmapped`` (see
    :func:`table_totals`).
    """
    counted = delegated.filter(
        pc.is_in(delegated["status"].cast(pa.string()), pa.array(sorted(COUNTED_STATUSES)))
    )
    kinds = [str(kind) for kind in counted["type"].cast(pa.string()).to_pylist()]
    registries = [str(name) for name in counted["registry"].cast(pa.string()).to_pylist()]
    countries = [str(cc) for cc in counted["cc"].cast(pa.string()).to_pylist()]
    sizes = counted["size"].to_numpy().astype(np.int64)
    is_v4 = np.array([kind == "ipv4" for kind in kinds], dtype=bool)
    is_v6 = np.array([kind == "ipv6" for kind in kinds], dtype=bool)
    active = np.zeros(len(kinds), dtype=np.int64)
    unmapped = 0
    if census is not None:
        v4_rows = np.flatnonzero(is_v4)
        per_record, unmapped = _active_per_record(counted.take(v4_rows), census)
        active[v4_rows] = per_record

    totals = {
        "ipv4": int(sizes[is_v4].sum()),
        "ipv6_64s": int(sizes[is_v6].sum()),
        "active": int(active.sum()) if census is not None else None,
        "active_unmapped": unmapped if census is not None else None,
    }
    rows: list[dict[str, Any]] = []
    for level, keys in (("rir", registries), ("country", countries)):
        v4 = _group_sums(keys, np.where(is_v4, sizes, 0))
        v6 = _group_sums(keys, np.where(is_v6, sizes, 0))
        act = _group_sums(keys, active)
        for name in sorted(v4, key=lambda key: (-v4[key], -v6[key], key)):
            row: dict[str, Any] = {"level": level, "name": name}
            for metric, sums in (("ipv4", v4), ("ipv6_64s", v6), ("active", act)):
                total = totals[metric]
                if metric == "active" and census is None:
                    row.update(active=None, active_share=None, majority_active=None)
                    continue
                assert total is not None
                row[metric] = sums[name]
                row[f"{metric}_share"] = sums[name] / total if total else 0.0
                row[f"majority_{metric}"] = 2 * sums[name] > total
            rows.append(row)
    table = pa.Table.from_pylist(rows, schema=RIR_TABLE_SCHEMA)
    metadata = dict(RIR_TABLE_SCHEMA.metadata or {})
    metadata[b"liveness.totals"] = json.dumps(totals).encode()
    return table.replace_schema_metadata(metadata)


def table_totals(table: pa.Table) -> dict[str, int | None]:
    """The totals stored by :func:`rir_table` (ipv4, ipv6_64s, active, active_unmapped)."""
    raw = (table.schema.metadata or {}).get(b"liveness.totals")
    if raw is None:
        raise InputError("not a table made by rir_table (no liveness.totals metadata)")
    totals: dict[str, int | None] = json.loads(raw)
    return totals


@dataclass(frozen=True)
class Coalition:
    """The smallest set of groups holding strictly more than half of ``metric``."""

    metric: str
    members: tuple[str, ...]
    held: int
    total: int

    @property
    def share(self) -> float:
        return self.held / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "size": len(self.members),
            "members": list(self.members),
            "held": self.held,
            "total": self.total,
            "share": self.share,
        }


def smallest_majority(
    names: Sequence[str], amounts: Sequence[int], total: int | None = None
) -> tuple[tuple[str, ...], int] | None:
    """Fewest names whose amounts sum to strictly more than half of ``total`` (default: all).

    Largest first (ties by name, for a stable answer); None if no set of them is a majority.
    """
    whole = sum(amounts) if total is None else total
    ranked = sorted(zip(names, amounts, strict=True), key=lambda item: (-item[1], item[0]))
    held = 0
    for count, (_, amount) in enumerate(ranked, start=1):
        held += amount
        if 2 * held > whole:
            return tuple(name for name, _ in ranked[:count]), held
    return None


def secession(table: pa.Table, *, level: str = "country") -> dict[str, Coalition | None]:
    """Per metric (ipv4, ipv6_64s and, with a census, active): the smallest majority coalition.

    ``table`` is a :func:`rir_table` result; ``level`` is ``country`` or ``rir``. A metric maps
    to None when nothing holds more than half (e.g. a total of 0).
    """
    if level not in ("country", "rir"):
        raise InputError(f"level: {excerpt(level)} is not 'country' or 'rir'")
    totals = table_totals(table)
    rows = [row for row in table.to_pylist() if row["level"] == level]
    result: dict[str, Coalition | None] = {}
    for metric in METRICS:
        total = totals.get(metric)
        if total is None:
            continue
        found = smallest_majority(
            [row["name"] for row in rows], [int(row[metric]) for row in rows], total
        )
        result[metric] = None if found is None else Coalition(metric, found[0], found[1], total)
    return result
