"""Read ZMap's own CSV and JSON output as reply records: one file per probe (``FILE:PROBE``).

ZMap (4.x, and ZMapv6 for IPv6) writes one row per validated reply; its fields become the
reply record (:data:`~liveness.output.schema.REPLY_SCHEMA`) so the normal analysis runs on them:

- ``saddr`` -> ``target`` (ZMap rewrites ``saddr`` to the quoted destination for the ICMP errors
  of ``tcp_synscan``, ``udp``, ``dns``, ``ntp``); ``icmp_responder`` -> ``responder`` where
  present, else ``saddr``. ``icmp_echoscan`` does not rewrite ``saddr`` for its errors (it is the
  error's sender): the target is then read from ``data`` (the quoted IPv4 header) when the file
  has it, else the error is taken as the sender's own. A ``saddr`` with ``:`` is an IPv6 row
  (``af = 6``, ``target6``/``responder6``).
- ``classification`` -> ``reply``: ``echoreply`` echo_reply, ``synack``, ``rst``, ``udp`` (and
  ``dns``, ``ntp``, ``upnp``, ``bacnet``...: any UDP payload) udp, ``unreach``, ``timxceed``,
  ``redirect``, ``sourcequench``, ``paramprob`` the ICMP categories; ``icmp`` and ``other`` by
  the ICMP type (``icmp_type``, or ``type`` for ``icmp_echoscan``). Without ``classification``
  (ZMap's default output is ``saddr`` only, filtered on ``success = 1``) every row with a true
  (or no) ``success`` is the probe's positive reply and the others are left out.
- ``icmp_type``/``icmp_code`` (``type``/``code``), ``sport``, ``dport``, ``ttl``, ``ipid``,
  ``repeat``, ``app_success`` -> ``app_valid``, ``timestamp_ts``/``timestamp_us`` -> ``ts``;
  ``attempt`` is 0 (ZMap does not record it) and ``vp`` empty.

The file's format is found from its first byte (``{``: JSON lines, else CSV with a header row),
so ``.json``, ``.csv`` or any other name is read. Everything is done per batch with Arrow and
numpy kernels.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pjson

from liveness.errors import InputError
from liveness.output.addresses import parse_dotted, parse_ipv6
from liveness.output.schema import ADDR6, REPLY_CATEGORIES, REPLY_SCHEMA
from liveness.output.text import complete_lines_end

__all__ = [
    "ZMAP_EXTENSIONS",
    "ZmapSource",
    "missing_fields_note",
    "parse_zmap_spec",
    "read_zmap",
    "zmap_fields",
]

#: File names that are ZMap output even when the file is missing (for the error message).
ZMAP_EXTENSIONS = (".csv", ".json", ".jsonl", ".ndjson", ".txt")
_PROBE = re.compile(r"[a-z][a-z0-9_]*(?::[A-Za-z0-9_.-]+)?")
_BLOCK = 8 << 20
_HEADER_BYTES = 1 << 16  # a header (or first JSON line) is read up to this many bytes
_BATCH_ROWS = 1 << 18

_TYPES: dict[str, pa.DataType] = {
    "saddr": pa.string(),
    "classification": pa.string(),
    "success": pa.bool_(),
    "repeat": pa.bool_(),
    "app_success": pa.bool_(),
    "icmp_responder": pa.string(),
    "icmp_type": pa.int64(),
    "icmp_code": pa.int64(),
    "type": pa.int64(),
    "code": pa.int64(),
    "data": pa.string(),
    "sport": pa.int64(),
    "dport": pa.int64(),
    "ttl": pa.int64(),
    "ipid": pa.int64(),
    "timestamp_ts": pa.int64(),
    "timestamp_us": pa.int64(),
}

_CLASSES: dict[str, str] = {
    "echoreply": "echo_reply",
    "synack": "synack",
    "rst": "rst",
    "udp": "udp",
    "dns": "udp",
    "ntp": "udp",
    "upnp": "udp",
    "no-http-header": "udp",
    "none": "udp",
    "bacnet": "udp",
    "unreach": "icmp_unreach",
    "icmp-unreach": "icmp_unreach",
    "timxceed": "icmp_time_exceeded",
    "redirect": "icmp_redirect",
    "sourcequench": "icmp_source_quench",
    "paramprob": "icmp_param_problem",
    "timestampreply": "timestamp_reply",
}
_BY_TYPE = ("icmp", "other")  # the category comes from the ICMP type
_TYPES4 = {0: "echo_reply", 3: "icmp_unreach", 4: "icmp_source_quench", 5: "icmp_redirect"}
_TYPES4 |= {11: "icmp_time_exceeded", 12: "icmp_param_problem", 14: "timestamp_reply"}
_TYPES6 = {129: "echo_reply", 1: "icmp_unreach", 3: "icmp_time_exceeded"}
_TYPES6 |= {4: "icmp_param_problem", 137: "icmp_redirect"}
_POSITIVE = {"icmp_echo": "echo_reply", "icmp_timestamp": "timestamp_reply", "tcp_syn": "synack"}
_CODE = {name: i for i, name in enumerate(REPLY_CATEGORIES)}
_ICMP_CODES = np.array(
    [name.startswith("icmp_") or name in ("echo_reply", "timestamp_reply") for name in _CODE]
)
_FLAGS = np.zeros(len(REPLY_CATEGORIES), dtype=np.uint8)
_FLAGS[_CODE["synack"]], _FLAGS[_CODE["rst"]] = 0x12, 0x04


class ZmapSource(NamedTuple):
    """A ZMap output file and the probe its rows answer (``tcp_syn:443``)."""

    path: str
    probe: str


def parse_zmap_spec(arg: str) -> ZmapSource | None:
    """``FILE:PROBE`` as a :class:`ZmapSource`, or None when ``arg`` is not one.

    ``arg`` is a liveness reply file (None) when it exists itself or a running scan's working
    file does. Else it splits at the first ``:`` after an existing file, or, for a missing file,
    after a name ending in one of :data:`ZMAP_EXTENSIONS`, when the rest is a probe name.
    """
    if any(os.path.exists(arg + suffix) for suffix in ("", ".journal", ".partial")):
        return None
    fallback = None
    for match in re.finditer(":", arg):
        path, probe = arg[: match.start()], arg[match.end() :]
        if not path or not _PROBE.fullmatch(probe):
            continue
        if os.path.exists(path):
            return ZmapSource(path, probe)
        if fallback is None and path.lower().endswith(ZMAP_EXTENSIONS):
            fallback = ZmapSource(path, probe)
    return fallback


def _is_json(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(256).lstrip()[:1] == b"{"


def zmap_fields(path: str) -> tuple[str, ...]:
    """The field names of a ZMap file: its CSV header, or the keys of its first JSON line
    (ZMap leaves null fields out of a JSON row, so ICMP fields may be missing there)."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not a ZMap output file")
    try:
        with open(path, "rb") as handle:
            first = handle.readline(_HEADER_BYTES).decode("utf-8", errors="replace").strip()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    if not first:
        raise InputError(f"{path}: empty file (no ZMap header row)")
    if first.startswith("{"):
        return tuple(re.findall(r'"([A-Za-z0-9_]+)":', first))
    return tuple(name.strip().strip('"') for name in first.split(","))


def missing_fields_note(source: ZmapSource) -> str | None:
    """One line naming the fields ``source`` lacks and the analyses that need them, or None.

    Raises InputError when the file cannot be read at all (no ``saddr``).
    """
    names = set(zmap_fields(source.path))
    _check_saddr(source.path, names)
    kind = source.probe.partition(":")[0]
    wants: list[tuple[str, str]] = []
    if "classification" not in names:
        wants.append(
            (
                "classification",
                "reply kinds, RST vs SYN-ACK, ICMP errors, tarpits (all rows "
                "are taken as the probe's positive replies)",
            )
        )
    if not _is_json(
        source.path
    ):  # a JSON row leaves its null ICMP fields out: absence says nothing
        if kind == "icmp_echo":
            if "type" not in names and "icmp_type" not in names and "classification" in names:
                wants.append(("type", "ICMP errors by type for 'other' replies"))
            if "data" not in names and "icmp_responder" not in names:
                wants.append(
                    ("data", "router vs target ICMP errors (errors count as their sender's)")
                )
        elif "icmp_responder" not in names:
            wants.append(
                (
                    "icmp_responder",
                    "router vs target ICMP errors and coverage (errors count as the target's own)",
                )
            )
        if not {"icmp_code", "code"} & names:
            wants.append(("icmp_code", "ICMP errors by code"))
    if kind.startswith("udp") and "app_success" not in names:
        wants.append(("app_success", "application-layer alive (valid replies)"))
    if not wants:
        return None
    fields = ", ".join(name for name, _ in wants)
    needs = "; ".join(f"{name}: {what}" for name, what in wants)
    return f"{source.path}: ZMap file without {fields} ({needs})"


def _check_saddr(path: str, names: set[str]) -> None:
    if "saddr" not in names:
        raise InputError(
            f"{path}: not ZMap output with a header row naming saddr (every analysis needs "
            "saddr; write it with -f saddr,classification,success,repeat,icmp_responder,"
            "icmp_type,icmp_code)"
        )


def read_zmap(source: ZmapSource, batch_size: int = _BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Batches of :data:`REPLY_SCHEMA` rows from a ZMap CSV or JSON-lines file."""
    path = source.path
    names = set(zmap_fields(path))
    _check_saddr(path, names)
    row = 0
    for batch in _json_batches(path) if _is_json(path) else _csv_batches(path, names):
        if batch.num_rows:
            for start in range(0, batch.num_rows, batch_size):
                part = batch.slice(start, batch_size)
                yield _to_replies(part, source, row)
                row += part.num_rows


def _csv_batches(path: str, names: set[str]) -> Iterator[pa.RecordBatch]:
    """The CSV's rows up to its last newline (a line torn by a running ZMap is left out),
    memory-mapped: the reader parses the page cache in place."""
    read = [name for name in _TYPES if name in names]
    options = pcsv.ConvertOptions(
        column_types={name: _TYPES[name] for name in read},
        include_columns=read,
        true_values=["1", "true"],
        false_values=["0", "false"],
        strings_can_be_null=True,
    )
    try:
        with open(path, "rb") as handle:
            end = complete_lines_end(handle)
        with pa.memory_map(path) as mapped:
            buffer: Any = pa.BufferReader(mapped.read_buffer(end))  # a file to Arrow
            reader = pcsv.open_csv(
                buffer,
                read_options=pcsv.ReadOptions(block_size=_BLOCK),
                convert_options=options,
            )
            yield from reader
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a ZMap CSV file ({exc})") from exc


_JSON_BOOLS = tuple(
    (f'"{name}":{space}{digit}{end}'.encode(), f'"{name}":{space}{word}{end}'.encode())
    for name in ("success", "repeat", "app_success", "cooldown")
    for digit, word in (("1", "true"), ("0", "false"))
    for space in ("", " ")
    for end in (",", "}")
)


def _json_batches(path: str) -> Iterator[pa.RecordBatch]:
    """Blocks of whole lines; ZMap writes ``success`` as 1 or false (a number or a boolean),
    made boolean before parsing. A torn last line (a running scan) is left out."""
    schema = pa.schema(list(_TYPES.items()))
    options = pjson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    carry = b""
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            block = carry + block
            end = block.rfind(b"\n") + 1
            carry, block = block[end:], block[:end]
            if not block:
                continue
            for number, word in _JSON_BOOLS:
                block = block.replace(number, word)
            try:
                table = pjson.read_json(io.BytesIO(block), parse_options=options)
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(f"{path}: not ZMap JSON output ({exc})") from exc
            yield from table.to_batches()


def _column(batch: pa.RecordBatch, name: str) -> pa.Array[Any] | None:
    if name not in batch.schema.names:
        return None
    column = batch.column(name)
    return None if column.null_count == len(column) else column


def _ints(column: pa.Array[Any] | None, n: int, default: int) -> npt.NDArray[np.int64]:
    if column is None:
        return np.full(n, default, dtype=np.int64)
    return np.asarray(column.fill_null(default).to_numpy(zero_copy_only=False), dtype=np.int64)


def _bools(column: pa.Array[Any] | None, n: int, default: bool) -> npt.NDArray[np.bool_]:
    if column is None:
        return np.full(n, default)
    return np.asarray(column.fill_null(default).to_numpy(zero_copy_only=False), dtype=bool)


class _Addresses(NamedTuple):
    is6: npt.NDArray[np.bool_]
    ipv4: npt.NDArray[np.uint32]
    ipv6: pa.Array[Any]  # binary(16), null on IPv4 rows


def _mask(value: Any) -> npt.NDArray[np.bool_]:
    """An Arrow boolean result as a numpy mask (null is False)."""
    filled: Any = pc.fill_null(value, False)
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=np.bool_)


def _addresses(texts: pa.Array[Any], where: str, first_row: int) -> _Addresses:
    is6 = _mask(pc.match_substring(texts, ":"))
    none = pa.scalar(None, pa.string())
    if is6.any():
        mask = pa.array(is6)
        ipv4_text = pc.if_else(mask, none, texts)
        ipv6 = parse_ipv6(pc.if_else(mask, texts, none), where, first_row)
    else:
        ipv4_text, ipv6 = texts, pa.nulls(len(texts), ADDR6)
    ipv4 = parse_dotted(ipv4_text, where, first_row).fill_null(0)
    return _Addresses(is6, np.asarray(ipv4.to_numpy(), dtype=np.uint32), ipv6)


def _quoted_destination(
    data: pa.Array[Any],
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint32]]:
    """The quoted IPv4 destination in ``icmp_echoscan``'s ``data`` (hex of the ICMP message
    after its first 4 bytes: 4 unused bytes, then the quoted header): (found, address)."""
    text: Any = data.cast(pa.string()).fill_null("")
    lengths = np.asarray(pc.utf8_length(text).to_numpy(zero_copy_only=False))
    version = pc.utf8_slice_codeunits(text, 8, 9)
    found = (lengths >= 48) & _mask(pc.equal(version, pa.scalar("4")))
    addresses = np.zeros(len(data), dtype=np.uint32)
    if found.any():
        hexes: Any = pc.utf8_slice_codeunits(text.filter(pa.array(found)), 40, 48)
        addresses[found] = _hex_words(pc.utf8_lower(hexes))
    return found, addresses


def _hex_words(hexes: pa.Array[Any]) -> npt.NDArray[np.uint32]:
    """uint32 values of 8-digit lower-case hex strings (vectorised over the string buffer)."""
    array = hexes.cast(pa.string())
    buffers: list[Any] = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[array.offset :][: len(array)]
    data = np.frombuffer(buffers[2], dtype=np.uint8)
    digits = data[offsets[:, None] + np.arange(8)].astype(np.uint32)
    values = np.where(digits >= ord("a"), digits - ord("a") + 10, digits - ord("0"))
    shifts = np.arange(28, -4, -4, dtype=np.uint32)
    return np.asarray((values << shifts).sum(axis=1), dtype=np.uint32)


def _categories(
    batch: pa.RecordBatch,
    kind: str,
    icmp_type: npt.NDArray[np.int64],
    is6: npt.NDArray[np.bool_],
    where: str,
    first_row: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """The reply category code of every row, and which rows to keep."""
    n = batch.num_rows
    classification = _column(batch, "classification")
    if classification is None:
        positive = _POSITIVE.get(kind, "udp" if kind.startswith("udp") else None)
        if positive is None:
            raise InputError(f"{where}: no classification: cannot tell {kind} replies apart")
        return np.full(n, _CODE[positive], dtype=np.int64), _bools(
            _column(batch, "success"), n, True
        )
    names = list(_CLASSES) + list(_BY_TYPE)
    index = np.asarray(
        pc.index_in(pc.utf8_lower(classification), value_set=pa.array(names))
        .fill_null(-1)
        .to_numpy(zero_copy_only=False),
        dtype=np.int64,
    )
    unknown = np.flatnonzero((index < 0) & classification.is_valid().to_numpy(zero_copy_only=False))
    if unknown.size:
        value = classification[int(unknown[0])].as_py()
        raise InputError(
            f"{where}: row {first_row + int(unknown[0]) + 1}: classification {value!r} is not "
            f"one of ZMap's ({', '.join(names)})"
        )
    other = _CODE["icmp_other"]
    fixed = np.array([_CODE[_CLASSES[name]] for name in _CLASSES] + [other] * 2, dtype=np.int64)
    codes = np.where(index >= 0, fixed[np.maximum(index, 0)], other)
    by_type = (index < 0) | (index >= len(_CLASSES))
    if by_type.any():
        table4 = np.full(256, other, dtype=np.int64)
        table6 = np.full(256, other, dtype=np.int64)
        for table, types in ((table4, _TYPES4), (table6, _TYPES6)):
            for number, name in types.items():
                table[number] = _CODE[name]
        known = (icmp_type >= 0) & (icmp_type < 256)
        typed = np.where(is6, table6[icmp_type & 255], table4[icmp_type & 255])
        codes = np.where(by_type & known, typed, codes)
    return codes, np.ones(n, dtype=bool)


def _to_replies(batch: pa.RecordBatch, source: ZmapSource, first_row: int) -> pa.RecordBatch:
    """One batch of ZMap rows as :data:`REPLY_SCHEMA` rows."""
    where = f"{source.path}: column 'saddr'"
    saddr = batch.column("saddr")
    if saddr.null_count:
        row = int(np.flatnonzero(saddr.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(f"{source.path}: row {first_row + row + 1}: saddr is empty")
    n = batch.num_rows
    kind = source.probe.partition(":")[0]
    target = _addresses(saddr, where, first_row)
    type_column = _column(batch, "icmp_type")
    if kind == "icmp_echo" and _column(batch, "type") is not None:
        type_column = _column(batch, "type")
    icmp_type = _ints(type_column, n, -1)
    code_column = _column(batch, "icmp_code")
    if kind == "icmp_echo" and _column(batch, "code") is not None:
        code_column = _column(batch, "code")
    icmp_code = _ints(code_column, n, -1)
    codes, keep = _categories(batch, kind, icmp_type, target.is6, source.path, first_row)
    is_icmp = _ICMP_CODES[codes]
    is_error = is_icmp & (codes != _CODE["echo_reply"]) & (codes != _CODE["timestamp_reply"])

    responder = target
    responder_text = _column(batch, "icmp_responder")
    if responder_text is not None:
        found = _addresses(responder_text, f"{source.path}: column 'icmp_responder'", first_row)
        has = np.asarray(responder_text.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        if np.any(has & (found.is6 != target.is6)):
            row = int(np.flatnonzero(has & (found.is6 != target.is6))[0])
            raise InputError(
                f"{source.path}: row {first_row + row + 1}: icmp_responder and saddr are of "
                "different address families"
            )
        mask = pa.array(has)
        responder = _Addresses(
            target.is6,
            np.where(has, found.ipv4, target.ipv4).astype(np.uint32),
            pc.if_else(mask, found.ipv6, target.ipv6),
        )
    elif kind == "icmp_echo" and _column(batch, "data") is not None and is_error.any():
        # icmp_echoscan: saddr is the error's sender; the target is in the quoted header
        quoted, destination = _quoted_destination(batch.column("data"))
        use = quoted & is_error & ~target.is6
        target = _Addresses(
            target.is6, np.where(use, destination, target.ipv4).astype(np.uint32), target.ipv6
        )

    icmp_type = np.where(is_icmp, icmp_type, -1)
    icmp_code = np.where(is_icmp, icmp_code, -1)
    echo = codes == _CODE["echo_reply"]
    icmp_type = np.where(echo & (icmp_type < 0), np.where(target.is6, 129, 0), icmp_type)
    icmp_code = np.where(echo & (icmp_code < 0), 0, icmp_code)
    seconds = _ints(_column(batch, "timestamp_ts"), n, 0)
    micros = _ints(_column(batch, "timestamp_us"), n, 0)
    af = np.where(target.is6, 6, 4).astype(np.uint8)
    arrays: dict[str, Any] = {
        "ts": seconds * 1_000_000_000 + micros * 1000,
        "probe": pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, dtype=np.int32), pa.int32()), pa.array([source.probe])
        ),
        "target": np.where(target.is6, 0, target.ipv4).astype(np.uint32),
        "responder": np.where(target.is6, 0, responder.ipv4).astype(np.uint32),
        "reply": pa.DictionaryArray.from_arrays(
            pa.array(codes.astype(np.int32), pa.int32()), pa.array(list(REPLY_CATEGORIES))
        ),
        "icmp_type": np.clip(icmp_type, -1, 255).astype(np.int16),
        "icmp_code": np.clip(icmp_code, -1, 255).astype(np.int16),
        "tcp_flags": _FLAGS[codes],
        "ttl": np.clip(_ints(_column(batch, "ttl"), n, 0), 0, 255).astype(np.uint8),
        "ipid": np.clip(_ints(_column(batch, "ipid"), n, 0), 0, 65535).astype(np.uint16),
        "sport": np.clip(_ints(_column(batch, "sport"), n, 0), 0, 65535).astype(np.uint16),
        "dport": np.clip(_ints(_column(batch, "dport"), n, 0), 0, 65535).astype(np.uint16),
        "attempt": np.zeros(n, dtype=np.uint8),
        "repeat": _bools(_column(batch, "repeat"), n, False),
        "app_valid": _bools(_column(batch, "app_success"), n, False),
        "vp": pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, dtype=np.int32), pa.int32()), pa.array([""])
        ),
        "af": af,
        "target6": target.ipv6,
        "responder6": responder.ipv6,
        # ZMap has no application layer for TCP: the columns' defaults (no --app-layer)
        "app_active": np.zeros(n, dtype=np.bool_),
        "app_proto": pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, dtype=np.int32), pa.int32()), pa.array([""])
        ),
        "banner": pa.nulls(n, pa.binary()),
    }
    columns = [
        value if isinstance(value, pa.Array) else pa.array(value, type=field.type)
        for field, value in ((f, arrays[f.name]) for f in REPLY_SCHEMA)
    ]
    result = pa.RecordBatch.from_arrays(columns, schema=REPLY_SCHEMA)
    return result if keep.all() else result.filter(pa.array(keep))
