"""The Observation: what every reach reader produces and every detector consumes.

One row says: vantage point ``vp`` saw ``target`` as ``status`` during ``[t0, t1)``.

- ``vp`` string (dictionary): vantage point name (a Trinocular site, an Atlas probe id, a VP of
  the testbed).
- ``target`` string (dictionary): an address (``198.18.0.1``, ``2001:db8::1``), a block
  (``198.18.0.0/24``; IPv6 ``2001:db8:1::/48``, RFC 5952 text of the network address with its
  length, :mod:`liveness.reach.blocks`) or a service (a DNS root letter, ``k.root``).
- ``af`` uint8: 4 or 6, the family of the measurement (a service is measured over either);
  the detectors run per family.
- ``t0``, ``t1`` int64: seconds since the Unix epoch; ``t1`` is exclusive.
- ``status`` string (dictionary): ``up``, ``down`` or ``unknown``.

Rows are intervals of constant status: a reader merges consecutive rounds with the same status
into one row, so a quarter of data costs what its status changes cost.
"""

from __future__ import annotations

import pyarrow as pa

from liveness.output.schema import STRING_DICT

__all__ = ["OBSERVATION_SCHEMA", "STATUSES"]

STATUSES: tuple[str, ...] = ("down", "up", "unknown")  # index = Trinocular status code

_DICT = STRING_DICT

OBSERVATION_SCHEMA = pa.schema(
    [
        pa.field("vp", _DICT, nullable=False),
        pa.field("target", _DICT, nullable=False),
        pa.field("af", pa.uint8(), nullable=False),
        pa.field("t0", pa.int64(), nullable=False),
        pa.field("t1", pa.int64(), nullable=False),
        pa.field("status", _DICT, nullable=False),
    ],
    metadata={"liveness.schema": "observation/1"},
)
