"""Trinocular-style block monitoring from one vantage point (the algorithm, without the network).

Public entry points: :class:`Monitor` (rounds over all blocks, vectorised), :class:`Prober`
and :func:`make_prober` (what it probes through), :class:`ModelProber` (an in-process model),
:func:`load_census` (E(b) from census files), :class:`TrinocularParams`, and the streaming
writers :class:`FsdbStream` and :class:`ObservationStream`.
"""

from __future__ import annotations

from liveness.monitor.census import Census, census_from_snapshots, load_census
from liveness.monitor.fsdb import FsdbStream
from liveness.monitor.observations import ObservationStream
from liveness.monitor.params import TrinocularParams
from liveness.monitor.prober import ModelProber, Prober, make_prober
from liveness.monitor.rounds import Monitor, RoundResult

__all__ = [
    "Census",
    "FsdbStream",
    "ModelProber",
    "Monitor",
    "ObservationStream",
    "Prober",
    "RoundResult",
    "TrinocularParams",
    "census_from_snapshots",
    "load_census",
    "make_prober",
]
