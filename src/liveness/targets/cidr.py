"""Reading CIDR blocks: strings from flags and lines of ZMap-format list files, IPv4 and IPv6.

A list file (``-w``, ``-b``, ``-I``) holds one address or CIDR block per line; ``#`` starts a
comment (whole line or trailing) and blank lines are skipped, as in ZMap. IPv4 and IPv6 lines may
mix (an entry with a ``:`` is IPv6). A block with host bits set (``10.1.2.3/8``,
``2001:db8::1/32``) is refused rather than silently widened: the user must say what they mean.
Every error names where the value came from (a flag, or ``FILE:LINE``).

Command-line targets may also be IPv6 prefix walks ``P/L-b`` (XMap's syntax): one address in
every ``/b`` of ``P/L`` (see :mod:`liveness.targets.iid`). A plain ``P/L`` is the walk
``P/L-128``. Walks are refused in list files (they are targets, not allow/block ranges) and on
IPv4 (an IPv4 target is scanned address by address).

Canonical dotted quads (``a.b.c.d`` or ``a.b.c.d/p``) take a fast path (a regex for one string,
:mod:`liveness.targets.dotted` for lists), IPv6 addresses another (the C library's
``inet_pton``, a pure text-to-bytes conversion), so a list of millions of addresses (``-I``)
reads in seconds; anything else goes through :mod:`ipaddress`, which also words the errors.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.targets.dotted import parse_dotted
from liveness.targets.inputs import EXCERPT_CHARS, check_input_file, excerpt
from liveness.targets.intervals import Intervals, normalize

__all__ = [
    "CidrList",
    "Net6List",
    "format_block",
    "format_block6",
    "parse_cidr",
    "parse_cidr6",
    "parse_cidr_list",
    "parse_cidrs",
    "read_cidr_file",
    "read_cidr_list",
]

_OCTET = r"(0|[1-9]\d{0,2})"
_DOTTED = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?:/(0|[1-9]\d?))?")
_WALK = re.compile(r"([^/]+)/(\d{1,3})-(\d{1,3})")
_LENGTH = re.compile(r"0|[1-9]\d{0,2}")
CHUNK_LINES = 1 << 18  # lines in memory as Python strings at once (~25 MB)
_LONG_QUOTE = re.compile(rf"'[^']{{{EXCERPT_CHARS // 3},}}'")
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Net6List:
    """IPv6 entries in input order, as arrays (a hitlist of millions costs ~26 bytes each).

    Entry ``i`` is the network ``(hi[i] << 64 | lo[i])/length[i]``, walked in steps of
    ``/step[i]`` (128 for a plain address or CIDR block); ``lines`` holds line numbers when read
    from a file.
    """

    hi: NDArray[np.uint64]
    lo: NDArray[np.uint64]
    length: NDArray[np.uint8]
    step: NDArray[np.uint8]
    lines: NDArray[np.int64] | None = None

    @staticmethod
    def empty(with_lines: bool = False) -> Net6List:
        """No entries."""
        none = np.zeros(0, dtype=np.uint64)
        small = np.zeros(0, dtype=np.uint8)
        lines = np.zeros(0, dtype=np.int64) if with_lines else None
        return Net6List(none, none.copy(), small, small.copy(), lines)

    def __len__(self) -> int:
        return len(self.hi)

    def network(self, i: int) -> int:
        """Entry ``i``'s network address as an int."""
        return (int(self.hi[i]) << 64) | int(self.lo[i])

    def block(self, i: int) -> str:
        """Entry ``i`` written back: ``addr``, ``addr/L`` or the walk ``addr/L-b``."""
        return format_block6(self.network(i), int(self.length[i]), int(self.step[i]))


@dataclass(frozen=True)
class CidrList:
    """Parsed list entries: ``(k, 2)`` uint64 ``[start, end)`` IPv4 rows in input order, the IPv6
    entries (:class:`Net6List`), and origins.

    ``source`` is the flag (or file name) the entries came from; ``lines`` holds each IPv4
    entry's line number when they were read from the file ``source`` (``v6.lines`` the IPv6
    entries').
    """

    rows: NDArray[np.uint64]
    source: str
    lines: NDArray[np.int64] | None = None
    v6: Net6List = field(default_factory=Net6List.empty)

    def origin(self, i: int) -> str:
        """Where IPv4 entry ``i`` came from: ``FILE:LINE`` or the flag."""
        return f"{self.source}:{int(self.lines[i])}" if self.lines is not None else self.source

    def origin6(self, i: int) -> str:
        """Where IPv6 entry ``i`` came from: ``FILE:LINE`` or the flag."""
        lines = self.v6.lines
        return f"{self.source}:{int(lines[i])}" if lines is not None else self.source

    def where(self, origin: str) -> str:
        """``origin`` as an error prefix: ``FILE:LINE: `` or ``flag ``."""
        return f"{origin}: " if self.lines is not None else f"{origin} "

    def block(self, i: int) -> str:
        """IPv4 entry ``i`` written back as an address or CIDR block."""
        start, end = (int(v) for v in self.rows[i])
        return format_block(start, end)

    @property
    def empty(self) -> bool:
        """No entry of either family."""
        return len(self.rows) == 0 and len(self.v6) == 0


def format_block(start: int, end: int) -> str:
    """An aligned power-of-two range as ``a.b.c.d/p`` (``a.b.c.d`` for a single address)."""
    dotted = str(ipaddress.IPv4Address(start))
    size = end - start
    return dotted if size == 1 else f"{dotted}/{33 - size.bit_length()}"


def format_block6(network: int, length: int, step: int = 128) -> str:
    """An IPv6 entry as text: ``addr`` (a /128), ``addr/L``, or the walk ``addr/L-b``."""
    text = str(ipaddress.IPv6Address(network))
    if step < 128:
        return f"{text}/{length}-{step}"
    return text if length == 128 else f"{text}/{length}"


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
    walk = _WALK.fullmatch(value)
    if walk and ":" not in value:
        raise InputError(
            f"{where}: {excerpt(value)}: prefix walking (P/L-b) is for IPv6 targets only; an "
            f"IPv4 target is scanned address by address (write {walk.group(1)}/{walk.group(2)})"
        )
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


def parse_cidr6(text: str, where: str, walks: bool = False) -> tuple[int, int, int]:
    """Parse one IPv6 address, CIDR block or (with ``walks``) walk ``P/L-b``.

    Returns ``(network, length, step)``; ``step`` is 128 for an address or a plain block.
    ``where`` names the source in the error.
    """
    value = text.strip()
    walk = _WALK.fullmatch(value)
    if walk is None:
        network, length = _network6(value, where)
        return network, length, 128
    if not walks:
        raise InputError(
            f"{where}: {excerpt(value)}: a prefix walk (P/L-b) is a target for the command "
            "line, not an entry of a list file"
        )
    network, length = _network6(f"{walk.group(1)}/{walk.group(2)}", where, value)
    step = int(walk.group(3))
    if not length <= step <= 128:
        raise InputError(
            f"{where}: {excerpt(value)}: the step /{step} of a walk must lie between the "
            f"prefix length /{length} and /128"
        )
    return network, length, step


def _network6(value: str, where: str, shown: str | None = None) -> tuple[int, int]:
    """``addr`` or ``addr/L`` (no zone id, no host bits set) as ``(network, length)``."""
    address, slash, length_text = value.partition("/")
    try:
        network: int | None = int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big")
    except (OSError, ValueError):
        network = None
    if network is not None:
        if not slash:
            return network, 128
        if _LENGTH.fullmatch(length_text) and int(length_text) <= 128:
            length = int(length_text)
            if network & ((1 << (128 - length)) - 1) == 0:
                return network, length
    shown = value if shown is None else shown
    if "%" in address:
        raise InputError(f"{where}: {excerpt(shown)}: a zone id (%...) names no global target")
    try:
        net = ipaddress.IPv6Network(value, strict=True)
    except ValueError as exc:
        hint = ""
        with contextlib.suppress(ValueError):
            hint = f"; did you mean {ipaddress.IPv6Network(value, strict=False)}?"
        detail = str(exc).replace(f" in {value!r}", "")
        detail = _LONG_QUOTE.sub("it", detail)
        if len(detail) > 2 * EXCERPT_CHARS:
            detail = detail[:EXCERPT_CHARS] + "…"
        reason = "has host bits set" if hint else f"is not an IPv6 address or CIDR block ({detail})"
        raise InputError(f"{where}: {excerpt(shown)} {reason}{hint}") from None
    return int(net.network_address), net.prefixlen


def _parse_entries6(
    entries: Sequence[str], origin: Callable[[int], str], walks: bool
) -> tuple[NDArray[np.uint64], NDArray[np.uint64], NDArray[np.uint8], NDArray[np.uint8]]:
    """Parse IPv6 entries in bulk: ``(hi, lo, length, step)`` arrays."""
    count = len(entries)
    length = np.full(count, 128, dtype=np.uint8)
    step = np.full(count, 128, dtype=np.uint8)
    pton = socket.inet_pton
    family = socket.AF_INET6
    try:  # the common case, a hitlist: every entry a plain address
        packed = b"".join([pton(family, entry) for entry in entries])
    except (OSError, ValueError):
        parts = []
        for i, entry in enumerate(entries):
            try:
                parts.append(pton(family, entry))
                continue
            except (OSError, ValueError):
                pass
            if any(c.isspace() for c in entry):
                raise InputError(
                    f"{origin(i)}: {excerpt(entry)}: expected one address or CIDR block per line"
                ) from None
            network, length[i], step[i] = parse_cidr6(entry, origin(i), walks)
            parts.append(network.to_bytes(16, "big"))
        packed = b"".join(parts)
    words = np.frombuffer(packed, dtype=">u8").reshape(count, 2)
    return words[:, 0].astype(np.uint64), words[:, 1].astype(np.uint64), length, step


def _parse_entries(
    entries: list[str], origin: Callable[[int], str], walks: bool = False
) -> tuple[NDArray[np.uint64], NDArray[np.bool_] | None, Net6List]:
    """Parse stripped entries in bulk; ``origin(i)`` names entry i's source in errors.

    Returns the IPv4 rows, which entries are IPv6 (None: none), and the IPv6 entries.
    """
    is6 = [":" in entry for entry in entries]
    if not any(is6):
        return _parse_entries4(entries, origin), None, Net6List.empty()
    six = np.array(is6, dtype=np.bool_)
    which4 = np.flatnonzero(~six)
    which6 = np.flatnonzero(six)
    rows = _parse_entries4(
        list(itertools.compress(entries, (not x for x in is6))),
        lambda k: origin(int(which4[k])),
    )
    hi, lo, length, step = _parse_entries6(
        list(itertools.compress(entries, is6)), lambda k: origin(int(which6[k])), walks
    )
    return rows, six, Net6List(hi, lo, length, step)


def _parse_entries4(entries: list[str], origin: Callable[[int], str]) -> NDArray[np.uint64]:
    """Parse IPv4 entries in bulk (the dotted-quad fast path, then :mod:`ipaddress`)."""
    rows, parsed = parse_dotted(entries)
    for i in np.flatnonzero(~parsed).tolist():
        entry = entries[i]
        if any(c.isspace() for c in entry):
            raise InputError(
                f"{origin(i)}: {excerpt(entry)}: expected one address or CIDR block per line"
            )
        rows[i] = _parse_with_ipaddress(entry, origin(i))
    return rows


def parse_cidr_list(texts: Iterable[str], where: str, walks: bool = False) -> CidrList:
    """Parse CIDR strings given on the command line (``where`` names the flag).

    ``walks`` accepts IPv6 prefix walks ``P/L-b`` (the positional targets).
    """
    entries = [text.strip() for text in texts]
    rows, _, v6 = _parse_entries(entries, lambda _: where, walks)
    return CidrList(rows, where, v6=v6)


def parse_cidrs(texts: Iterable[str], where: str) -> Intervals:
    """Parse IPv4 CIDR strings into a normalised interval set (their union).

    An IPv6 entry is an error: the interval set holds IPv4 only.
    """
    parsed = parse_cidr_list(texts, where)
    if len(parsed.v6):
        raise InputError(f"{where}: {parsed.v6.block(0)} is IPv6; only IPv4 is expected here")
    return normalize(parsed.rows)


def _file_chunks(name: str) -> Iterator[tuple[NDArray[np.int64], list[str]]]:
    """(line numbers, entries) of a list file, a chunk of lines at a time, comments removed."""
    check_input_file(name)
    try:
        with open(name, encoding="utf-8") as handle:
            first = 1
            while chunk := list(itertools.islice(handle, CHUNK_LINES)):
                count = len(chunk)
                stripped = [
                    (line.split("#", 1)[0] if "#" in line else line).strip() for line in chunk
                ]
                chunk.clear()
                kept = np.fromiter(map(bool, stripped), dtype=np.bool_, count=count)
                entries = list(filter(None, stripped))
                del stripped
                yield np.flatnonzero(kept) + first, entries
                first += count
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not a UTF-8 text file ({exc.reason})") from None


def _at_line(name: str, numbers: NDArray[np.int64]) -> Callable[[int], str]:
    """Name entry i of a chunk by its ``FILE:LINE``."""
    return lambda i: f"{name}:{int(numbers[i])}"


def read_cidr_list(path: str | os.PathLike[str]) -> CidrList:
    """Read and parse a ZMap-format list file, remembering each entry's line number.

    Read a chunk of lines at a time; what is kept is arrays (about 26 bytes per IPv6 entry, 24
    per IPv4 one), never a Python object per entry.
    """
    name = os.fspath(path)
    rows4: list[NDArray[np.uint64]] = [np.empty((0, 2), dtype=np.uint64)]
    lines4: list[NDArray[np.int64]] = [np.empty(0, dtype=np.int64)]
    parts6: dict[str, list[NDArray[Any]]] = {f: [] for f in _NET6_FIELDS}
    for numbers, entries in _file_chunks(name):
        rows, is6, v6 = _parse_entries(entries, _at_line(name, numbers))
        rows4.append(rows)
        lines4.append(numbers if is6 is None else numbers[~is6])
        if is6 is not None:
            v6 = Net6List(v6.hi, v6.lo, v6.length, v6.step, numbers[is6])
            for f in _NET6_FIELDS:
                parts6[f].append(getattr(v6, f))
    empty6 = Net6List.empty(with_lines=True)
    columns = []
    for f in _NET6_FIELDS:  # one column at a time, dropping its chunks: a low peak of memory
        columns.append(np.concatenate([getattr(empty6, f), *parts6.pop(f)]))
    return CidrList(np.concatenate(rows4), name, np.concatenate(lines4), Net6List(*columns))


_NET6_FIELDS = ("hi", "lo", "length", "step", "lines")


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
