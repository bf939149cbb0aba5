"""Trinocular-style block monitoring from one vantage point (the algorithm, without the network),
of IPv4 /24s and IPv6 prefixes alike.

Public entry points: :class:`Monitor` (rounds over all blocks of one family, vectorised),
:class:`Prober` and :func:`make_prober` (what it probes through), :class:`ModelProber` (an
in-process model), :func:`load_census` / :func:`load_census_families` (E(b) from census files:
:class:`Census` for /24s, :class:`Census6` for IPv6 blocks), :class:`TrinocularParams`, and the
streaming writers :class:`FsdbStream` and :class:`ObservationStream`.
"""

from __future__ import annotations

from liveness.monitor.census import (
    Census,
    Census6,
    census6_from_snapshots,
    census_from_snapshots,
    load_census,
    load_census_families,
)
from liveness.monitor.fsdb import FsdbStream
from liveness.monitor.observations import ObservationStream
from liveness.monitor.params import TrinocularParams
from liveness.monitor.prober import ModelProber, Prober, make_prober
from liveness.monitor.rounds import Monitor, RoundResult

__all__ = [
    "Census",
    "Census6",
    "FsdbStream",
    "ModelProber",
    "Monitor",
    "ObservationStream",
    "Prober",
    "RoundResult",
    "TrinocularParams",
    "census6_from_snapshots",
    "census_from_snapshots",
    "load_census",
    "load_census_families",
    "make_prober",
]
