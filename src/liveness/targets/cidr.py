"""Reading CIDR blocks: strings from flags and lines of ZMap-format list files.

A list file (``-w``, ``-b``, ``-I``) holds one address or CIDR block per line; ``#`` starts a
comment (whole line or trailing) and blank lines are skipped, as in ZMap. A block with host bits
set (``10.1.2.3/8``) is refused rather than silently widened: the user must say what they mean.
Every error names where the value came from (a flag, or ``FILE:LINE``).

Canonical dotted quads (``a.b.c.d`` or ``a.b.c.d/p``) take a fast path (a regex for one string,
:mod:`liveness.targets.dotted` for lists), so a list of millions of addresses (``-I``) reads in
seconds; anything else goes through :mod:`ipaddress`, which also words the errors.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.targets.dotted import parse_dotted
from liveness.targets.inputs import EXCERPT_CHARS, check_input_file, excerpt
from liveness.targets.intervals import Intervals, normalize

__all__ = [
    "CidrList",
    "format_block",
    "parse_cidr",
    "parse_cidr_list",
    "parse_cidrs",
    "read_cidr_file",
    "read_cidr_list",
]

_OCTET = r"(0|[1-9]\d{0,2})"
_DOTTED = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?:/(0|[1-9]\d?))?")
CHUNK_LINES = 1 << 20
_LONG_QUOTE = re.compile(rf"'[^']{{{EXCERPT_CHARS // 3},}}'")


@dataclass(frozen=True)
class CidrList:
    """Parsed list entries: ``(k, 2)`` uint64 ``[start, end)`` rows in input order, and origins.

    ``source`` is the flag (or file name) the entries came from; ``lines`` holds each entry's
    line number when they were read from the file ``source``.
    """

    rows: NDArray[np.uint64]
    source: str
    lines: NDArray[np.int64] | None = None

    def origin(self, i: int) -> str:
        """Where entry ``i`` came from: ``FILE:LINE`` or the flag."""
        return f"{self.source}:{int(self.lines[i])}" if self.lines is not None else self.source

    def block(self, i: int) -> str:
        """Entry ``i`` written back as an address or CIDR block."""
        start, end = (int(v) for v in self.rows[i])
        return format_block(start, end)


def format_block(start: int, end: int) -> str:
    """An aligned power-of-two range as ``a.b.c.d/p`` (``a.b.c.d`` for a single address)."""
    dotted = str(ipaddress.IPv4Address(start))
    size = end - start
    return dotted if size == 1 else f"{dotted}/{33 - size.bit_length()}"


def parse_cidr(text: str, where: str) -> tuple[int, int]:
    """Parse one IPv4 address or CIDR block into its ``[start, end)`` address range.

    ``where`` names the source (``"-b/--blocklist-file"``, ``"hosts.txt:12"``) in the error.
    """
    value = text.strip()
    match = _DOTTED.fullmatch(value)
    if match:
        a, b, c, d, prefix_text = match.groups()
        octets = (int(a), int(b), int(c), int(d))
        prefix = int(prefix_text) if prefix_text is not None else 32
        if max(octets) <= 255 and prefix <= 32:
            start = (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]
            size = 1 << (32 - prefix)
            if start & (size - 1) == 0:
                return start, start + size
    return _parse_with_ipaddress(value, where)


def _parse_with_ipaddress(value: str, where: str) -> tuple[int, int]:
    """The slow path: other notations (``a.b.c.d/255.0.0.0``) and the wording of errors."""
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        hint = ""
        try:
            loose = ipaddress.IPv4Network(value, strict=False)
            hint = f"; did you mean {loose}?"
        except ValueError:
            pass
        # ipaddress quotes the value (or a part of it) again: say "it" for a long quote
        detail = str(exc).replace(f" in {value!r}", "")
        detail = _LONG_QUOTE.sub("it", detail)
        if len(detail) > 2 * EXCERPT_CHARS:
            detail = detail[:EXCERPT_CHARS] + "…"
        reason = "has host bits set" if hint else f"is not an IPv4 address or CIDR block ({detail})"
        raise InputError(f"{where}: {excerpt(value)} {reason}{hint}") from None
    start = int(net.network_address)
    return start, start + net.num_addresses


def _parse_entries(entries: list[str], origin: Callable[[int], str]) -> NDArray[np.uint64]:
    """Parse stripped entries in bulk; ``origin(i)`` names entry i's source in errors."""
    rows, parsed = parse_dotted(entries)
    for i in np.flatnonzero(~parsed).tolist():
        entry = entries[i]
        if any(c.isspace() for c in entry):
            raise InputError(
                f"{origin(i)}: {excerpt(entry)}: expected one address or CIDR block per line"
            )
        rows[i] = _parse_with_ipaddress(entry, origin(i))
    return rows


def parse_cidr_list(texts: Iterable[str], where: str) -> CidrList:
    """Parse CIDR strings given on the command line (``where`` names the flag)."""
    entries = [text.strip() for text in texts]
    return CidrList(_parse_entries(entries, lambda _: where), where)


def parse_cidrs(texts: Iterable[str], where: str) -> Intervals:
    """Parse CIDR strings into a normalised interval set (their union)."""
    return normalize(parse_cidr_list(texts, where).rows)


def _file_chunks(name: str) -> Iterator[tuple[list[int], list[str]]]:
    """(line numbers, entries) of a list file, a chunk of lines at a time, comments removed."""
    check_input_file(name)
    try:
        with open(name, encoding="utf-8") as handle:
            first = 1
            while chunk := list(itertools.islice(handle, CHUNK_LINES)):
                stripped = [
                    (line.split("#", 1)[0] if "#" in line else line).strip() for line in chunk
                ]
                numbers = [first + i for i, entry in enumerate(stripped) if entry]
                yield numbers, [entry for entry in stripped if entry]
                first += len(chunk)
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not a UTF-8 text file ({exc.reason})") from None


def _at_line(name: str, numbers: list[int]) -> Callable[[int], str]:
    """Name entry i of a chunk by its ``FILE:LINE``."""
    return lambda i: f"{name}:{numbers[i]}"


def read_cidr_list(path: str | os.PathLike[str]) -> CidrList:
    """Read and parse a ZMap-format list file, remembering each entry's line number."""
    name = os.fspath(path)
    all_rows = [np.empty((0, 2), dtype=np.uint64)]
    all_numbers = [np.empty(0, dtype=np.int64)]
    for numbers, entries in _file_chunks(name):
        all_rows.append(_parse_entries(entries, lambda i: f"{name}:{numbers[i]}"))  # noqa: B023
        all_numbers.append(np.array(numbers, dtype=np.int64))
    return CidrList(np.concatenate(all_rows), name, np.concatenate(all_numbers))


def read_cidr_file(path: str | os.PathLike[str]) -> list[str]:
    """Read a ZMap-format list file and return its entries (comments and blanks removed).

    Each entry is checked; a bad one raises ``InputError("FILE:LINE: ...")``.
    """
    name = os.fspath(path)
    result: list[str] = []
    for numbers, entries in _file_chunks(name):
        _parse_entries(entries, _at_line(name, numbers))
        result.extend(entries)
    return result
