"""The default blocklist: the IANA special-purpose registries, IPv4 and IPv6, plus multicast.

IPv4: the IANA IPv4 special-purpose registry plus 224.0.0.0/4 and 240.0.0.0/4, shipped as
``iana_special_purpose.txt``. IPv6: the IANA IPv6 special-purpose registry plus ff00::/8, shipped
as ``iana_ipv6_special_purpose.txt``. Both sit next to this module in ZMap's list format; the
comment after each entry is its name, used to say *which* special-purpose range a refused
target hits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from liveness.targets import bigintervals as big
from liveness.targets.cidr import parse_cidr, parse_cidr6
from liveness.targets.intervals import Intervals, normalize

__all__ = [
    "DEFAULT_BLOCKLIST6_FILE",
    "DEFAULT_BLOCKLIST_FILE",
    "BlocklistEntry",
    "blocklist6_entry",
    "default_blocklist",
    "default_blocklist6",
    "default_intervals",
    "default_intervals6",
]

DEFAULT_BLOCKLIST_FILE = "iana_special_purpose.txt"
DEFAULT_BLOCKLIST6_FILE = "iana_ipv6_special_purpose.txt"


@dataclass(frozen=True)
class BlocklistEntry:
    """One range of the default blocklist: its CIDR, its registry name, its address range.

    ``start`` and ``end`` are IPv4 addresses (``version`` 4) or IPv6 ones (``version`` 6).
    """

    cidr: str
    name: str
    start: int
    end: int
    version: int = 4


def _entries(file: str) -> list[tuple[str, str, str]]:
    """``(cidr, name, where)`` of each entry of a shipped list file."""
    text = resources.files("liveness.targets").joinpath(file).read_text("utf-8")
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry, _, comment = line.partition("#")
        cidr = entry.strip()
        if cidr:
            entries.append((cidr, comment.strip() or cidr, f"{file}:{number}"))
    return entries


@cache
def default_blocklist() -> tuple[BlocklistEntry, ...]:
    """The IPv4 entries of the shipped default blocklist, in file order."""
    entries = []
    for cidr, name, where in _entries(DEFAULT_BLOCKLIST_FILE):
        start, end = parse_cidr(cidr, where)
        entries.append(BlocklistEntry(cidr, name, start, end))
    return tuple(entries)


@cache
def default_blocklist6() -> tuple[BlocklistEntry, ...]:
    """The IPv6 entries of the shipped default blocklist, in file order."""
    entries = []
    for cidr, name, where in _entries(DEFAULT_BLOCKLIST6_FILE):
        network, length, _ = parse_cidr6(cidr, where)
        entries.append(BlocklistEntry(cidr, name, network, network + (1 << (128 - length)), 6))
    return tuple(entries)


@cache
def default_intervals() -> Intervals:
    """The IPv4 default blocklist as a normalised interval set (read-only)."""
    rows = np.array([(e.start, e.end) for e in default_blocklist()], dtype=np.uint64)
    merged = normalize(rows)
    merged.setflags(write=False)
    return merged


@cache
def default_intervals6() -> big.BigIntervals:
    """The IPv6 default blocklist as a normalised set of ``(start, end)`` Python ints."""
    return big.normalize((e.start, e.end) for e in default_blocklist6())


def blocklist6_entry(address: int) -> BlocklistEntry | None:
    """The most specific IPv6 default-blocklist entry holding ``address`` (None if none)."""
    holding = [e for e in default_blocklist6() if e.start <= address < e.end]
    return min(holding, key=lambda e: e.end - e.start) if holding else None
