"""A VP across the two address families: an island of one family while in the other's core.

The detectors run per family, so a dual-stack VP cut off from the IPv6 Internet while its IPv4
works is an IPv6 island and nothing in IPv4. :func:`cross_family` states, for every island
event, what the same VP was in the other family during it:

- ``island``: the VP was an island of the other family too, at some time in the event;
- ``core``: it measured targets of the other family and reached some, with no island there
  (it stayed connected to that family's core);
- ``down``: it measured targets of the other family and reached none;
- ``unmeasured``: no up or down observation of the other family by that VP in the event.

``reached`` and ``measured`` count the distinct targets of the other family the VP saw up, and
saw up or down, during the event. The work is a boolean mask per island over the rows of that
VP and family (islands are few; the rows are selected once per VP and family).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from liveness.reach.detect import DOWN, UP, CodedObservations, Detection, coded_observations

__all__ = ["CROSS_FAMILY_SCHEMA", "cross_family"]

_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("vp", pa.string()),
    ("af", pa.uint8()),
    ("start", pa.int64()),
    ("end", pa.int64()),
    ("other_af", pa.uint8()),
    ("other", pa.string()),
    ("reached", pa.int64()),
    ("measured", pa.int64()),
]
CROSS_FAMILY_SCHEMA = pa.schema(
    _COLUMNS,
    metadata={"liveness.schema": "cross-family/1"},
)
"""One row per island event: the island (``vp``, ``af``, ``start``, ``end``) and the VP's
state in the other family (``other_af``, ``other``, ``reached``, ``measured``)."""


def cross_family(obs: pa.Table | CodedObservations, found: Detection) -> pa.Table:
    """Per island event of ``found``, the same VP's state in the other family (see above)."""
    events = found.events
    if events.num_rows == 0:
        return CROSS_FAMILY_SCHEMA.empty_table()
    plain = events.select(["kind", "scope", "af", "start", "end"]).to_pylist()
    islands = [e for e in plain if str(e["kind"]) == "island"]
    if not islands:
        return CROSS_FAMILY_SCHEMA.empty_table()
    coded = obs if isinstance(obs, CodedObservations) else coded_observations(obs)
    vp_code = {name: code for code, name in enumerate(coded.vp_names)}
    spans: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for e in islands:
        spans.setdefault((str(e["scope"]), int(e["af"])), []).append((e["start"], e["end"]))
    rows: list[dict[str, Any]] = []
    selected: dict[tuple[int, int], tuple[Any, ...]] = {}
    for e in islands:
        vp, af = str(e["scope"]), int(e["af"])
        other_af = 6 if af == 4 else 4
        start, end = int(e["start"]), int(e["end"])
        code = vp_code.get(vp, -1)
        key = (code, other_af)
        if key not in selected:
            mine = (coded.vp == code) & (coded.af == other_af) & (coded.status != 2)
            rows_of = np.flatnonzero(mine)
            selected[key] = (
                coded.t0[rows_of],
                coded.t1[rows_of],
                coded.target[rows_of],
                coded.status[rows_of],
            )
        t0, t1, target, status = selected[key]
        during = (t0 < end) & (t1 > start)
        measured = np.unique(target[during & ((status == UP) | (status == DOWN))]).size
        reached = np.unique(target[during & (status == UP)]).size
        also_island = any(s < end and e2 > start for s, e2 in spans.get((vp, other_af), []))
        if also_island:
            other = "island"
        elif measured == 0:
            other = "unmeasured"
        else:
            other = "core" if reached > 0 else "down"
        rows.append(
            {
                "vp": vp,
                "af": af,
                "start": start,
                "end": end,
                "other_af": other_af,
                "other": other,
                "reached": int(reached),
                "measured": int(measured),
            }
        )
    rows.sort(key=lambda r: (r["start"], r["vp"], r["af"]))
    return pa.Table.from_pylist(rows, schema=CROSS_FAMILY_SCHEMA)
