"""The default blocklist: the IANA IPv4 special-purpose registry plus 224.0.0.0/4 and 240.0.0.0/4.

It ships as ``iana_special_purpose.txt`` next to this module (ZMap's list format); the comment
after each entry is its name, used to say *which* special-purpose range a refused target hits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from liveness.targets.cidr import parse_cidr
from liveness.targets.intervals import Intervals, normalize

__all__ = ["DEFAULT_BLOCKLIST_FILE", "BlocklistEntry", "default_blocklist", "default_intervals"]

DEFAULT_BLOCKLIST_FILE = "iana_special_purpose.txt"


@dataclass(frozen=True)
class BlocklistEntry:
    """One range of the default blocklist: its CIDR, its registry name, its address range."""

    cidr: str
    name: str
    start: int
    end: int


@cache
def default_blocklist() -> tuple[BlocklistEntry, ...]:
    """The entries of the shipped default blocklist, in file order."""
    text = resources.files("liveness.targets").joinpath(DEFAULT_BLOCKLIST_FILE).read_text("utf-8")
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry, _, comment = line.partition("#")
        cidr = entry.strip()
        if cidr:
            start, end = parse_cidr(cidr, f"{DEFAULT_BLOCKLIST_FILE}:{number}")
            entries.append(BlocklistEntry(cidr, comment.strip() or cidr, start, end))
    return tuple(entries)


@cache
def default_intervals() -> Intervals:
    """The default blocklist as a normalised interval set (read-only)."""
    rows = np.array([(e.start, e.end) for e in default_blocklist()], dtype=np.uint64)
    merged = normalize(rows)
    merged.setflags(write=False)
    return merged
