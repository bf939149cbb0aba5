"""Trinocular-format outage files (FSDB), read into observations and written by the monitor.

The format (ANT's ``internet_outage`` datasets): a header ``#fsdb -F t block round_no
round_start_epoch a_short a_oper status belief n_pos n_neg probe_log rtt_us`` (older files add
``a_long``; columns are found by name), then one tab-separated row per block and round:
``block`` the /24 in hex (``c0a80100`` = 192.168.1.0/24; seven digits lack a leading zero; A7
files drop the trailing ``00``, so six or fewer digits are the 24-bit prefix),
``round_start_epoch`` in seconds, ``status`` 0 down, 1 up, 2 unknown. Rounds last 11 minutes
(660 s). Lines starting with ``#`` are comments. One file per vantage point, gzip/bzip2/xz
compressed or not. ``-F t`` is FSDB's code for tab-separated fields; ``-F s`` (one space),
``-F C<char>`` and the default ``-F D`` (runs of whitespace) are read too.

Reading is vectorised (pyarrow.csv, then numpy): a row holds until the block's next row in that
VP's files, consecutive rows with one status merge into one interval, and a block's last row
holds until the end of the VP's last round (see :mod:`liveness.reach.runs`). So files that list
every round and files that list only status changes read the same. A malformed line is found by a
second, line-by-line pass that runs only on failure and names file and line.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pyarrow_compute
import pyarrow.csv as pacsv

from liveness.errors import InputError
from liveness.reach.compressed import read_bytes
from liveness.reach.runs import merge_runs, observation_table
from liveness.targets.inputs import excerpt

__all__ = [
    "COLUMNS",
    "ROUND_S",
    "TrinocularRows",
    "block_names",
    "read_trinocular",
    "read_trinocular_rows",
    "vp_name_from_path",
    "write_trinocular",
]

ROUND_S = 660
COLUMNS: tuple[str, ...] = (
    "block",
    "round_no",
    "round_start_epoch",
    "a_short",
    "a_oper",
    "status",
    "belief",
    "n_pos",
    "n_neg",
    "probe_log",
    "rtt_us",
)
_NEEDED: tuple[str, ...] = ("block", "round_no", "round_start_epoch", "status")
_SEPARATORS: dict[str, str] = {"t": "\t", "s": " "}
_COMPRESSED = {".gz", ".bz2", ".xz"}

pc: Any = pyarrow_compute  # the stubs' overloads do not cover these array calls

_COMMENT_LINE = re.compile(rb"^#[^\n]*(?:\n|$)", re.MULTILINE)

_SPACE_RUN = re.compile(rb"[ \t]+")
_LEADING_SPACE = re.compile(rb"^ | $", re.MULTILINE)

_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate("0123456789abcdef"):
    _HEX[ord(_c)] = _i
    _HEX[ord(_c.upper())] = _i
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)

PathLike = str | os.PathLike[str]


class TrinocularRows(NamedTuple):
    """The rows of one file: /24 base address (uint32), round number, start (s), status."""

    block: npt.NDArray[np.uint32]
    round_no: npt.NDArray[np.int64]
    round_start: npt.NDArray[np.int64]
    status: npt.NDArray[np.uint8]


def vp_name_from_path(path: PathLike) -> str:
    """A VP's default name: the file name without compression and ``.fsdb`` suffixes."""
    name = Path(path).name
    for suffix in (*_COMPRESSED, ".fsdb"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


def _parse_header(line: str, path: PathLike) -> tuple[list[str], str]:
    """Column names and field separator from an ``#fsdb`` header line."""
    tokens = line.split()
    if not tokens or tokens[0] != "#fsdb":
        raise InputError(f"{path}:1: not an FSDB file (the first line must start with #fsdb)")
    separator = ""  # FSDB's default -F D: runs of spaces and tabs
    columns: list[str] = []
    words = iter(tokens[1:])
    for word in words:
        if word.startswith("-") and len(word) == 2:
            value = next(words, "")
            if word == "-F":
                if value in _SEPARATORS:
                    separator = _SEPARATORS[value]
                elif value.startswith("C") and len(value) == 2:
                    separator = value[1]
                elif value == "D":
                    separator = ""
                else:
                    raise InputError(f"{path}:1: FSDB field separator -F {value} not supported")
            continue
        columns.append(word.split(":", 1)[0])
    missing = [name for name in _NEEDED if name not in columns]
    if missing:
        raise InputError(f"{path}:1: FSDB header lacks column(s) {', '.join(missing)}")
    return columns, separator


def _hex_blocks(blocks: pa.Array[Any]) -> npt.NDArray[np.uint32] | None:
    """Hex /24 blocks to uint32 base addresses, vectorised; None if any is not valid hex."""
    lengths = pc.binary_length(blocks).to_numpy(zero_copy_only=False)
    if blocks.null_count or (lengths.size and (lengths.min() < 1 or lengths.max() > 8)):
        return None
    short = pc.binary_join_element_wise(pc.utf8_lpad(blocks, 6, "0"), "00", "")
    padded = pc.if_else(
        pc.greater(pc.binary_length(blocks), 6), pc.utf8_lpad(blocks, 8, "0"), short
    )
    padded = padded.cast(pa.string())
    count = len(padded)
    offsets = np.frombuffer(padded.buffers()[1], dtype=np.int32)[padded.offset :]
    start = int(offsets[0]) if count else 0
    data = np.frombuffer(padded.buffers()[2], dtype=np.uint8) if count else np.empty(0, np.uint8)
    nibbles = _HEX[data[start : start + 8 * count]].reshape(count, 8)
    if (nibbles == 255).any():
        return None
    value = np.zeros(count, dtype=np.uint32)
    for digit in range(8):
        value |= nibbles[:, digit].astype(np.uint32) << np.uint32(4 * (7 - digit))
    return value & np.uint32(0xFFFFFF00)


def _line_error(text: str, columns: list[str], separator: str, path: PathLike) -> InputError:
    """Find the first malformed data line (slow path, only after the fast parse failed)."""
    where = {name: columns.index(name) for name in _NEEDED}
    for number, line in enumerate(text.splitlines(), start=1):
        if number == 1 or not line.strip() or line.startswith("#"):
            continue
        fields = line.split(separator) if separator else line.split()
        problem = None
        if len(fields) != len(columns):
            problem = f"expected {len(columns)} fields, found {len(fields)}"
        else:
            block = fields[where["block"]]
            if not 1 <= len(block) <= 8 or any(c not in "0123456789abcdefABCDEF" for c in block):
                problem = f"block {excerpt(block)} is not a hex /24"
            for name in ("round_no", "round_start_epoch"):
                if problem is None and not fields[where[name]].lstrip("-").isdigit():
                    problem = f"{name} {excerpt(fields[where[name]])} is not an integer"
            if problem is None and fields[where["status"]] not in ("0", "1", "2"):
                problem = f"status {excerpt(fields[where['status']])} is not 0, 1 or 2"
        if problem is not None:
            return InputError(f"{path}:{number}: {problem}")
    return InputError(f"{path}: malformed Trinocular file")


def _strip_comments(body: bytes) -> bytes:
    """Drop ``#`` lines: the trailing ones (FSDB's trailer) cheaply, any others in one regex."""
    end = len(body)
    while end > 0:
        line_end = end - 1 if body[end - 1 : end] == b"\n" else end
        line_start = body.rfind(b"\n", 0, line_end) + 1
        if body[line_start : line_start + 1] != b"#":
            break
        end = line_start
    if end < len(body):
        body = body[:end]
    if body.startswith(b"#") or b"\n#" in body:
        body = _COMMENT_LINE.sub(b"", body)
    return body


def read_trinocular_rows(path: PathLike) -> TrinocularRows:
    """Parse one Trinocular-format file into numpy columns (vectorised)."""
    data = read_bytes(path)
    newline = data.find(b"\n")
    header = data if newline < 0 else data[:newline]
    columns, separator = _parse_header(header.decode("utf-8", "replace"), path)
    body = b"" if newline < 0 else data[newline + 1 :]
    body = _strip_comments(body)
    if not separator:  # whitespace-separated: one space between fields, none around
        body = _LEADING_SPACE.sub(b"", _SPACE_RUN.sub(b" ", body))
    if not body.strip():
        empty = np.empty(0, dtype=np.int64)
        return TrinocularRows(np.empty(0, np.uint32), empty, empty.copy(), np.empty(0, np.uint8))
    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(column_names=columns),
            parse_options=pacsv.ParseOptions(delimiter=separator or " ", quote_char=False),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(_NEEDED),
                null_values=[],  # an empty or "NA" field is malformed, not missing
                column_types={
                    "block": pa.string(),
                    "round_no": pa.int64(),
                    "round_start_epoch": pa.int64(),
                    "status": pa.int8(),
                },
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise _line_error(data.decode("utf-8", "replace"), columns, separator, path) from exc
    status = table["status"].to_numpy()
    chunks = [_hex_blocks(chunk) for chunk in table["block"].chunks]
    block = (
        None
        if any(chunk is None for chunk in chunks)
        else np.concatenate(
            [chunk for chunk in chunks if chunk is not None] or [np.empty(0, np.uint32)]
        )
    )
    if block is None or (status.size and (status.min() < 0 or status.max() > 2)):
        raise _line_error(data.decode("utf-8", "replace"), columns, separator, path)
    return TrinocularRows(
        block,
        table["round_no"].to_numpy().astype(np.int64, copy=False),
        table["round_start_epoch"].to_numpy().astype(np.int64, copy=False),
        status.astype(np.uint8),
    )


def block_names(blocks: npt.NDArray[np.uint32], prefix: int = 24) -> pa.Array[Any]:
    """``a.b.c.d/prefix`` strings for uint32 block base addresses, vectorised."""
    octets = [
        pc.cast(pa.array((blocks >> np.uint32(shift)) & np.uint32(0xFF)), pa.string())
        for shift in (24, 16, 8, 0)
    ]
    dotted = pc.binary_join_element_wise(*octets, ".")
    suffix = pa.scalar(f"/{prefix}")
    names: pa.Array[Any] = pc.binary_join_element_wise(dotted, suffix, "")
    return names


def _vp_names(paths: Sequence[PathLike], vp_names: object) -> list[str]:
    if vp_names is None:
        return [vp_name_from_path(path) for path in paths]
    if isinstance(vp_names, Mapping):
        return [str(vp_names.get(str(path), vp_name_from_path(path))) for path in paths]
    if isinstance(vp_names, Sequence) and not isinstance(vp_names, str):
        names = [str(name) for name in vp_names]
        if len(names) != len(paths):
            raise InputError(f"vp_names: {len(names)} names for {len(paths)} files")
        return names
    raise InputError("vp_names: give a list of names (one per file) or a mapping path -> name")


def read_trinocular(
    paths: Sequence[PathLike] | PathLike,
    *,
    vp_names: Sequence[str] | Mapping[str, str] | None = None,
    round_s: int = ROUND_S,
    max_gap_s: int | None = None,
) -> pa.Table:
    """Trinocular-format files (one per VP) as an OBSERVATION_SCHEMA table.

    ``vp_names``: one name per file (or a mapping from path to name); default the file name
    stem. Several files may share a VP name (e.g. consecutive batches). ``max_gap_s``: a gap
    between two rows of a block longer than this leaves a hole instead of extending the
    earlier status (default: no limit, which suits files listing only changes).
    """
    path_list: list[PathLike] = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    names = _vp_names(path_list, vp_names)
    vp_list = sorted(set(names))
    parts: list[tuple[int, TrinocularRows]] = [
        (vp_list.index(name), read_trinocular_rows(path))
        for path, name in zip(path_list, names, strict=True)
    ]
    vp_index = np.concatenate(
        [np.full(rows.block.size, vp, dtype=np.int64) for vp, rows in parts]
        or [np.empty(0, np.int64)]
    )
    block = np.concatenate([rows.block for _, rows in parts] or [np.empty(0, np.uint32)])
    start = np.concatenate([rows.round_start for _, rows in parts] or [np.empty(0, np.int64)])
    status = np.concatenate([rows.status for _, rows in parts] or [np.empty(0, np.uint8)])
    vp_end = np.full(max(len(vp_list), 1), np.iinfo(np.int64).min, dtype=np.int64)
    for vp, rows in parts:  # the end of each VP's data: its last round, over all its files
        if rows.round_start.size:
            vp_end[vp] = max(int(vp_end[vp]), int(rows.round_start.max()))
    series = (vp_index << 24) | (block >> np.uint32(8)).astype(np.int64)
    runs = merge_runs(
        series, start, status, hold_s=round_s, max_gap_s=max_gap_s,
        series_end=vp_end[vp_index] + round_s,
    )  # fmt: skip
    run_blocks = ((runs.series & 0xFFFFFF) << 8).astype(np.uint32)
    unique_blocks, target_index = np.unique(run_blocks, return_inverse=True)
    return observation_table(
        runs.series >> 24,
        vp_list,
        target_index,
        block_names(unique_blocks),
        4,
        runs.t0,
        runs.t1,
        runs.status,
    )


def _hex_strings(blocks: npt.NDArray[np.uint32]) -> pa.Array[Any]:
    """Eight lower-case hex digits per uint32, vectorised."""
    count = blocks.size
    shifts = np.arange(28, -4, -4, dtype=np.uint32)
    digits = _HEX_DIGITS[(blocks[:, None] >> shifts) & np.uint32(0xF)]
    offsets = np.arange(0, 8 * count + 1, 8, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), count, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(digits.tobytes())]
    )


def write_trinocular(
    path: PathLike,
    block: npt.ArrayLike,
    round_no: npt.ArrayLike,
    round_start: npt.ArrayLike,
    status: npt.ArrayLike,
    *,
    belief: npt.ArrayLike | None = None,
    n_pos: npt.ArrayLike | None = None,
    n_neg: npt.ArrayLike | None = None,
    a_short: npt.ArrayLike | None = None,
    a_oper: npt.ArrayLike | None = None,
    rtt_us: npt.ArrayLike | None = None,
    comment: str | None = None,
) -> int:
    """Write rows in the Trinocular format (modern columns, tab-separated); return the count.

    ``block``: uint32 /24 base addresses (host order; low bits are masked off); ``round_no``,
    ``round_start`` (epoch seconds) and ``status`` (0 down, 1 up, 2 unknown) one per row. The
    optional columns default to 0 (``probe_log`` is always ``-``, FSDB's empty value). The file
    is compressed when its name ends in .gz, .bz2 or .xz. ``comment`` adds a trailing ``#``
    line, as FSDB tools do.
    """
    blocks = np.asarray(block, dtype=np.uint32) & np.uint32(0xFFFFFF00)
    count = blocks.size
    status_codes = np.asarray(status, dtype=np.int8)
    if count and (status_codes.min() < 0 or status_codes.max() > 2):
        raise InputError(f"{path}: status must be 0, 1 or 2")

    def column(values: npt.ArrayLike | None, dtype: type) -> npt.NDArray[np.generic]:
        if values is None:
            return np.zeros(count, dtype=dtype)
        return np.broadcast_to(np.asarray(values, dtype=dtype), (count,))

    table = pa.table(
        {
            "block": _hex_strings(blocks),
            "round_no": column(round_no, np.int64),
            "round_start_epoch": column(round_start, np.int64),
            "a_short": column(a_short, np.float64),
            "a_oper": column(a_oper, np.float64),
            "status": status_codes,
            "belief": column(belief, np.float64),
            "n_pos": column(n_pos, np.int64),
            "n_neg": column(n_neg, np.int64),
            "probe_log": pa.array(np.full(count, "-", dtype=object), type=pa.string()),
            "rtt_us": column(rtt_us, np.int64),
        }
    )
    sink = io.BytesIO()
    sink.write(("#fsdb -F t " + " ".join(COLUMNS) + "\n").encode())
    pacsv.write_csv(
        table,
        sink,
        write_options=pacsv.WriteOptions(
            include_header=False, delimiter="\t", quoting_style="none"
        ),
    )
    if comment is not None:
        sink.write(f"# | {comment}\n".encode())
    payload = sink.getvalue()
    suffix = Path(path).suffix
    if suffix == ".gz":
        payload = gzip.compress(payload, compresslevel=6)
    elif suffix == ".bz2":
        payload = bz2.compress(payload)
    elif suffix == ".xz":
        payload = lzma.compress(payload)
    Path(path).write_bytes(payload)
    return count
